"""``GET /openapi.json``: the plugin's OpenAPI 3.1 description, as this configuration serves it.

The description is written once, in ``openapi.json`` beside this module (shipped
in the package).  Path items and security schemes that exist only under some
setting carry an ``x-when`` condition (``{"setting": "agent_auth", "equals":
"oidc"}`` or ``{"setting": "link_phone_token", "set": true}``).  A running
plugin serves a copy that keeps only what its settings make true, with
``servers`` set from ``internal_url`` (and ``external_url``) and the installed
version: what a client reads is what this plugin answers.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from . import handlers as h
from .config import OPEN, Settings

DESCRIPTION_FILE = Path(__file__).with_name("openapi.json")
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@cache
def packaged() -> dict[str, Any]:
    """The description as shipped (read once; callers must not change it)."""
    return json.loads(DESCRIPTION_FILE.read_text(encoding="utf-8"))


def holds(condition: Mapping[str, Any] | list[Mapping[str, Any]] | None, settings: Settings) -> bool:
    """Whether an ``x-when`` condition is true for ``settings`` (no condition: always).

    ``equals`` compares the setting with a value; ``set: true`` asks for a
    value other than unset, empty or ``"none"``.  A setting this version does
    not have counts as unset.  A list of conditions holds when each does.
    """
    if not condition:
        return True
    if isinstance(condition, list):
        return all(holds(part, settings) for part in condition)
    value = getattr(settings, condition["setting"], None)
    if "equals" in condition:
        return value == condition["equals"]
    is_set = value not in (None, "", False) and value != OPEN
    return is_set == bool(condition.get("set", True))


def operations(path_item: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The operation objects of a path item."""
    for method in HTTP_METHODS:
        if method in path_item:
            yield path_item[method]


def for_settings(settings: Settings) -> dict[str, Any]:
    """The description of a plugin running with ``settings``: its routes, its security, its URLs."""
    doc = copy.deepcopy(packaged())
    doc["info"]["version"] = _version(doc["info"]["version"])
    doc["servers"] = servers(settings)
    doc["paths"] = {path: item for path, item in doc["paths"].items() if holds(item.get("x-when"), settings)}
    components = doc.setdefault("components", {})
    schemes = components.get("securitySchemes", {})
    gone = {name for name, scheme in schemes.items() if not holds(scheme.get("x-when"), settings)}
    for name in gone:
        del schemes[name]
    items = [*doc["paths"].values(), *components.get("pathItems", {}).values()]
    for item in items:
        for operation in operations(item):
            if "security" in operation:
                # A requirement naming a scheme this plugin does not use is dropped; none left: open.
                operation["security"] = [req for req in operation["security"] if not gone.intersection(req)]
    return doc


def servers(settings: Settings) -> list[dict[str, str]]:
    """``internal_url`` for the core, plugins and the Lambda; ``external_url`` too when browsers use another."""
    out = [{"url": settings.internal_url, "description": "internal_url: the core, authentication plugins, "
                                                          "the Lambda"}]
    if settings.external_url and settings.external_url != settings.internal_url:
        out.append({"url": settings.external_url, "description": "external_url: agents' browsers"})
    return out


def _version(fallback: str) -> str:
    try:
        return version("connect-plugin")
    except PackageNotFoundError:
        return fallback


class OpenApiHandler(h.BaseHandler):
    """``GET /openapi.json``: :func:`for_settings` of this plugin's settings."""

    def get(self) -> None:
        self.send_json(for_settings(self.app.config))
