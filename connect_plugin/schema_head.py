"""The schema revision this version of the plugin needs, read without starting Alembic.

Every start checks the database against it; loading Alembic and its script
directory for that would cost more than the rest of start-up.  The shipped
migration scripts (``connect_plugin.migrations.versions``) each declare
``revision`` and ``down_revision`` on lines of their own; the head is the one
revision no other script names as its parent.  A test checks that this agrees
with Alembic's own answer (``migrate.head_revision``).
"""

from __future__ import annotations

import importlib.util
import re
from functools import cache
from pathlib import Path

_DECLARATION = re.compile(r'^(revision|down_revision)\s*(?::[^=]*)?=\s*(?:"([^"]*)"|\'([^\']*)\'|None)\s*$', re.M)


def _versions_folder() -> Path:
    spec = importlib.util.find_spec(f"{__package__}.migrations.versions")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the migration scripts are not installed")
    return Path(next(iter(spec.submodule_search_locations)))


@cache
def shipped_head() -> str:
    """The newest revision of the shipped migration scripts."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in sorted(_versions_folder().glob("*.py")):
        found = {name: (double or single) for name, double, single in _DECLARATION.findall(script.read_text())}
        if found.get("revision"):
            revisions.add(found["revision"])
            if found.get("down_revision"):
                parents.add(found["down_revision"])
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"the migration scripts have {len(heads)} heads, not one")
    return heads.pop()
