"""Alembic, driven from Python: upgrade to head, and ask where a database stands.

The migration scripts ship inside the distribution as ``connect_plugin.migrations``
(the top-level ``migrations/`` folder of the repository).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncConnection

from .errors import StoreUnavailable
from .stores.engine import DATABASE_FAILURES, describe_failure


def alembic_config(url: str, code_secret: bytes | None = None) -> Config:
    """An Alembic configuration for ``url`` pointing at the shipped migrations.

    ``code_secret`` (``codes.code_secret``) is what revision 0002 turns stored
    DTMF codes into keys with; it travels in the config's attributes, never in
    a file or on a command line.
    """
    cfg = Config()
    scripts = importlib.import_module(f"{__package__}.migrations")  # the top-level migrations/, as installed
    cfg.set_main_option("script_location", str(Path(scripts.__file__ or "").parent))
    cfg.attributes["url"] = url
    if code_secret is not None:
        cfg.attributes["code_secret"] = code_secret
    return cfg


def head_revision() -> str:
    """The newest revision the shipped migrations know."""
    heads = ScriptDirectory.from_config(alembic_config("")).get_heads()
    return heads[0]


def upgrade(url: str, revision: str = "head", *, code_secret: bytes | None = None) -> None:
    """Bring the database at ``url`` to ``revision`` (blocking; run outside the event loop).

    ``code_secret`` is needed when stored sessions' DTMF codes must become keys
    (revision 0002).  A database that cannot be reached, or refuses us, is
    ``StoreUnavailable`` with a one-line reason.
    """
    try:
        command.upgrade(alembic_config(url, code_secret), revision)
    except DATABASE_FAILURES as error:
        raise StoreUnavailable("cannot migrate the database", reason=describe_failure(error)) from None


def downgrade(url: str, revision: str) -> None:
    """Take the database at ``url`` back to ``revision`` (``base`` empties it)."""
    command.downgrade(alembic_config(url), revision)


async def current_revision(connection: AsyncConnection) -> str | None:
    """The revision a database is at (``None`` when it has never been migrated)."""

    def _read(sync_connection: object) -> str | None:
        return MigrationContext.configure(sync_connection).get_current_revision()  # type: ignore[arg-type]

    return await connection.run_sync(_read)


def _upgrade_from_stdin() -> int:
    """``python -m connect_plugin.migrate``: the server's first-start migration, in a process of its own.

    Reads ``{"url": ..., "code_secret": hex}`` from stdin; on a store failure,
    prints ``{"detail": ..., "reason": ...}`` and exits with 1.
    """
    import json
    import sys

    request = json.loads(sys.stdin.read())
    try:
        upgrade(request["url"], code_secret=bytes.fromhex(request["code_secret"]))
    except StoreUnavailable as error:
        print(json.dumps({"detail": error.detail, "reason": error.reason}))
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(_upgrade_from_stdin())
