"""A store plugin: sessions in this process's memory, for demos and tests (``database_url = "memory:"``).

Nothing is shared between instances and everything is lost on exit.  No
method awaits between its checks and its writes: on one event loop, that is
what makes each one atomic (a database store gets the same from a statement
or a transaction, Redis from a script).
"""

from __future__ import annotations

from dataclasses import dataclass

from connect_plugin.api import (
    CodeTaken,
    FailureWindow,
    NewResult,
    NewSession,
    NotFound,
    Settings,
    StoredSession,
    TokenReused,
    hookimpl,
)


@dataclass
class Row:
    """One session, with what happened to it."""

    session: NewSession
    last_activity: float
    result: NewResult | None = None
    contact_id: str | None = None


class MemoryStore:
    """The store contract (``connect_plugin.api.SessionStore``) over a few dictionaries."""

    def __init__(self) -> None:
        self.by_code: dict[str, Row] = {}
        self.by_result: dict[str, Row] = {}
        self.by_contact: dict[str, Row] = {}
        self.spent: dict[str, float] = {}  # replay key -> when it may be forgotten
        self.failures: dict[int, int] = {}  # window end -> failed links in that window

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None: ...

    async def create(self, session: NewSession, now: float) -> None:
        if session.code_key in self.by_code or session.result_key in self.by_result:
            raise CodeTaken()
        if session.result is not None:
            self._spend(session.result)
        row = Row(session, now, session.result)
        self.by_code[session.code_key] = self.by_result[session.result_key] = row

    async def awaits_result(self, result_key: str) -> bool:
        row = self.by_result.get(result_key)
        return row is not None and row.result is None

    async def store_result(self, result_key: str, result: NewResult, now: float) -> str | None:
        row = self.by_result.get(result_key)
        if row is None or row.result is not None:
            raise NotFound()
        self._spend(result)
        row.result, row.last_activity = result, now
        return row.contact_id

    async def link(self, code_key: str, contact_id: str, now: float, window: FailureWindow) -> str | None:
        row = self.by_code.get(code_key)
        spent = self.failures.get(window.ends, 0) >= window.budget
        if spent or row is None or row.contact_id not in (None, contact_id) or \
                self.by_contact.get(contact_id, row) is not row:
            raise NotFound()
        row.contact_id, row.last_activity = contact_id, now
        self.by_contact[contact_id] = row
        return row.result.jwe if row.result is not None and row.result.feedback else None

    async def count_link_failure(self, window_end: int) -> int:
        self.failures[window_end] = self.failures.get(window_end, 0) + 1
        return self.failures[window_end]

    async def find_by_contact(self, contact_id: str) -> StoredSession | None:
        row = self.by_contact.get(contact_id)
        if row is None:
            return None
        result = row.result
        return StoredSession(row.session.purpose, result.jwe if result else None, bool(result and result.feedback))

    async def delete_idle(self, before: float, limit: int) -> int:
        idle = [row for row in self.by_code.values() if row.last_activity < before][:limit]
        for row in idle:
            del self.by_code[row.session.code_key], self.by_result[row.session.result_key]
            if row.contact_id is not None:
                del self.by_contact[row.contact_id]
        return len(idle)

    async def delete_expired(self, now: float, limit: int) -> int:
        ended = [end for end in self.failures if end <= now][:limit]
        expired = [key for key, until in self.spent.items() if until <= now][:limit - len(ended)]
        for end in ended:
            del self.failures[end]
        for key in expired:
            del self.spent[key]
        return len(ended) + len(expired)

    def _spend(self, result: NewResult) -> None:
        if result.replay_key in self.spent:
            raise TokenReused()
        self.spent[result.replay_key] = result.replay_expires


@hookimpl
def connect_plugin_session_store(settings: Settings) -> MemoryStore | None:
    """Answer only for ``database_url = "memory:"``: installed, this plugin changes nothing else."""
    return MemoryStore() if settings.database_url == "memory:" else None
