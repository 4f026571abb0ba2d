"""A test plugin: DTMF codes from a small space, so that random codes certainly collide.

Codes are at least 6 digits (the plugin refuses shorter ones) but only the
last ``digits`` vary: ``[global.plugins.few_codes] prefix = "424242", digits = 4``
makes 10,000 possible codes.  Its folder holds a ``.dist-info`` with an entry
point, so a ``connect-plugin serve`` process with this folder on
``PYTHONPATH`` loads it as it loads any installed plugin.
"""

from __future__ import annotations

import secrets
from typing import Any

from connect_plugin.hookspecs import hookimpl


class FewCodes:
    """``prefix`` followed by ``digits`` random digits."""

    def __init__(self, prefix: str, digits: int) -> None:
        self.prefix = prefix
        self.digits = digits

    def generate(self) -> str:
        """A code from the small space."""
        return self.prefix + "".join(secrets.choice("0123456789") for _ in range(self.digits))


@hookimpl
def connect_plugin_code_generator(settings: Any) -> FewCodes | None:
    """Answer only when ``[global.plugins.few_codes]`` is set."""
    options = settings.plugins.get("few_codes")
    if not isinstance(options, dict):
        return None
    return FewCodes(str(options["prefix"]), int(options["digits"]))
