"""A store plugin: sessions in this process's memory.

Turned on by ``database_url = "memory:"``.  Everything is lost when the
process stops and nothing is shared between instances, so this is for demos
and tests only; it is here as a readable example of the store contract
(``connect_plugin.hookspecs.SessionStore``).  Each method does its checks and
its changes with no ``await`` in between, which is what makes it atomic on one
event loop: a store over a database gets the same from a single statement or
a transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice

from connect_plugin.config import Settings
from connect_plugin.errors import CodeTaken, NotFound, TokenReused
from connect_plugin.hookspecs import hookimpl
from connect_plugin.model import FailureWindow, NewResult, NewSession, StoredSession


@dataclass
class _Row:
    code_key: str
    result_key: str
    purpose: str
    auth_result: str | None
    feedback: bool
    last_activity: float
    contact_id: str | None = None


class MemoryStore:
    """The store contract over a few dictionaries."""

    def __init__(self) -> None:
        self._by_code: dict[str, _Row] = {}
        self._by_result: dict[str, _Row] = {}
        self._by_contact: dict[str, _Row] = {}
        self._used_tokens: dict[str, float] = {}  # replay key -> when it may be forgotten
        self._failures: dict[int, int] = {}  # window end -> failed links in it

    async def open(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        """Forget everything."""
        for table in (self._by_code, self._by_result, self._by_contact, self._used_tokens, self._failures):
            table.clear()

    async def ping(self) -> None:
        """Always answers."""

    async def create(self, session: NewSession, now: float) -> None:
        """Unique codes (else CodeTaken), an unused token (else TokenReused); either way nothing stored."""
        if session.code_key in self._by_code or session.result_key in self._by_result:
            raise CodeTaken()
        result = session.result
        if result is not None:
            self._spend(result)
        row = _Row(session.code_key, session.result_key, session.purpose,
                   result.jwe if result else None, result.feedback if result else False, now)
        self._by_code[row.code_key] = row
        self._by_result[row.result_key] = row

    async def awaits_result(self, result_key: str) -> bool:
        """A session with this result key and no result yet."""
        row = self._by_result.get(result_key)
        return row is not None and row.auth_result is None

    async def store_result(self, result_key: str, result: NewResult, now: float) -> str | None:
        """One result per session, one session per token."""
        row = self._by_result.get(result_key)
        if row is None or row.auth_result is not None:
            raise NotFound()
        self._spend(result)
        row.auth_result = result.jwe
        row.feedback = result.feedback
        row.last_activity = now
        return row.contact_id

    async def link(self, code_key: str, contact_id: str, now: float, window: FailureWindow) -> str | None:
        """One contact per code and one session per contact; the same pair again is fine; not past the budget."""
        if self._failures.get(window.ends, 0) >= window.budget:
            raise NotFound()
        row = self._by_code.get(code_key)
        if row is None or row.contact_id not in (None, contact_id):
            raise NotFound()
        holder = self._by_contact.get(contact_id)
        if holder is not None and holder is not row:
            raise NotFound()
        row.contact_id = contact_id
        row.last_activity = now
        self._by_contact[contact_id] = row
        return row.auth_result if row.feedback else None

    async def count_link_failure(self, window_end: int) -> int:
        """One more failure in this window."""
        self._failures[window_end] = self._failures.get(window_end, 0) + 1
        return self._failures[window_end]

    async def find_by_contact(self, contact_id: str) -> StoredSession | None:
        """Purpose, stored token and feedback flag of the linked session."""
        row = self._by_contact.get(contact_id)
        return None if row is None else StoredSession(row.purpose, row.auth_result, row.feedback)

    async def delete_idle(self, before: float, limit: int) -> int:
        """Forget at most ``limit`` sessions idle since before ``before``."""
        idle = list(islice((row for row in self._by_code.values() if row.last_activity < before), limit))
        for row in idle:
            del self._by_code[row.code_key]
            del self._by_result[row.result_key]
            if row.contact_id is not None:
                self._by_contact.pop(row.contact_id, None)
        return len(idle)

    async def delete_expired(self, now: float, limit: int) -> int:
        """Forget at most ``limit`` used tokens and failure windows that ended by ``now``."""
        ended = list(islice((end for end in self._failures if end <= now), limit))
        for end in ended:
            del self._failures[end]
        expired = list(islice((key for key, until in self._used_tokens.items() if until <= now), limit - len(ended)))
        for key in expired:
            del self._used_tokens[key]
        return len(ended) + len(expired)

    def _spend(self, result: NewResult) -> None:
        if result.replay_key in self._used_tokens:
            raise TokenReused()
        self._used_tokens[result.replay_key] = result.replay_expires


@hookimpl
def connect_plugin_session_store(settings: Settings) -> MemoryStore | None:
    """Answer only for ``database_url = "memory:"``."""
    return MemoryStore() if settings.database_url == "memory:" else None
