"""A test plugin: the SQL store, except that storing a result and linking a call fail unexpectedly.

The error reporting test runs ``connect-plugin serve`` with this folder on
``PYTHONPATH`` and ``[global.plugins.exploding_store] on = true``: the
requests that reach these methods carry a token, a code, a contact id and
(inside the token, and in the flow's variables once it is read) attribute
values, none of which may reach an error report.
"""

from __future__ import annotations

from typing import Any

from connect_plugin.hookspecs import hookimpl
from connect_plugin.stores.sql import SqlStore


class ExplodingStore(SqlStore):
    """Fails where no store should: a bug, as far as the plugin can tell."""

    async def store_result(self, result_key: str, result: Any, now: float) -> str | None:
        token = result.jwe  # a local variable holding the token: it must not be reported
        raise RuntimeError(f"the exploding store will not keep {token}")

    async def link(self, code_key: str, contact_id: str, now: float, window: Any) -> str | None:
        raise LookupError(f"the exploding store cannot link {contact_id}")


@hookimpl
def connect_plugin_session_store(settings: Any) -> ExplodingStore | None:
    """Answer only when ``[global.plugins.exploding_store]`` is set."""
    if not settings.plugins.get("exploding_store"):
        return None
    return ExplodingStore(settings.database_url, pool_size=settings.database_pool_size,
                          timeout=settings.database_timeout)
