"""A store plugin: sessions in this process's memory.

Turned on by ``database_url = "memory:"``.  Everything is lost when the
process stops and nothing is shared between instances, so this is for demos
and tests only; it is here as a readable example of the store contract
(``connect_plugin.hookspecs.SessionStore``).  Each method does its check and
its change with no ``await`` in between, which is what makes it atomic on one
event loop: a store over a database gets the same from a single statement.
"""

from __future__ import annotations

from dataclasses import dataclass

from connect_plugin.config import Settings
from connect_plugin.errors import CodeTaken, NotFound
from connect_plugin.hookspecs import hookimpl
from connect_plugin.model import NewSession, StoredSession


@dataclass
class _Row:
    dtmf: str
    result_key: str
    purpose: str
    auth_result: str | None
    last_activity: float
    contact_id: str | None = None


class MemoryStore:
    """The store contract over three dictionaries."""

    def __init__(self) -> None:
        self._by_dtmf: dict[str, _Row] = {}
        self._by_result: dict[str, _Row] = {}
        self._by_contact: dict[str, _Row] = {}

    async def open(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        """Forget everything."""
        self._by_dtmf.clear()
        self._by_result.clear()
        self._by_contact.clear()

    async def ping(self) -> None:
        """Always answers."""

    async def create(self, session: NewSession, now: float) -> None:
        """Unique codes: a clash stores nothing and raises CodeTaken."""
        if session.dtmf in self._by_dtmf or session.result_key in self._by_result:
            raise CodeTaken()
        row = _Row(session.dtmf, session.result_key, session.purpose, session.auth_result, now)
        self._by_dtmf[row.dtmf] = row
        self._by_result[row.result_key] = row

    async def store_result(self, result_key: str, auth_result: str, now: float) -> str | None:
        """One result per session."""
        row = self._by_result.get(result_key)
        if row is None or row.auth_result is not None:
            raise NotFound()
        row.auth_result = auth_result
        row.last_activity = now
        return row.contact_id

    async def link(self, dtmf: str, contact_id: str, now: float) -> None:
        """One contact per code and one session per contact; the same pair again is fine."""
        row = self._by_dtmf.get(dtmf)
        if row is None or row.contact_id not in (None, contact_id):
            raise NotFound()
        holder = self._by_contact.get(contact_id)
        if holder is not None and holder is not row:
            raise NotFound()
        row.contact_id = contact_id
        row.last_activity = now
        self._by_contact[contact_id] = row

    async def find_by_contact(self, contact_id: str) -> StoredSession | None:
        """Purpose and stored token of the linked session."""
        row = self._by_contact.get(contact_id)
        return None if row is None else StoredSession(row.purpose, row.auth_result)

    async def delete_idle(self, before: float) -> int:
        """Forget sessions idle since before ``before``."""
        idle = [row for row in self._by_dtmf.values() if row.last_activity < before]
        for row in idle:
            del self._by_dtmf[row.dtmf]
            del self._by_result[row.result_key]
            if row.contact_id is not None:
                self._by_contact.pop(row.contact_id, None)
        return len(idle)


@hookimpl
def connect_plugin_session_store(settings: Settings) -> MemoryStore | None:
    """Answer only for ``database_url = "memory:"``."""
    return MemoryStore() if settings.database_url == "memory:" else None
