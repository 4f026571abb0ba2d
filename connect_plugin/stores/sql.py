"""The built-in session store: SQLite or PostgreSQL, with the statements SQLAlchemy builds.

Each guarantee of the store contract (``hookspecs.SessionStore``) rests on
what the database makes atomic: unique constraints for codes, contact ids and
used tokens, and conditional ``UPDATE ... RETURNING`` for "one result per
session" and "one contact per code".  The statements are built and compiled
once (``statements.py``) and run by a driver-level ``Runner``
(``sqlite_runner``, ``postgres_runner``) with parameters.

On PostgreSQL a single statement runs in autocommit (one round trip); storing
a result and its used token is one statement too (a data-modifying ``WITH``).
On SQLite, writes go through one connection on a thread of its own and reads
through another beside it (WAL mode); a pair of writes is one transaction.
"""

from __future__ import annotations

import logging
from typing import Any

from ..config.database import is_sqlite
from ..errors import CodeTaken, ConfigError, NotFound, StoreUnavailable, TokenReused
from ..model import FailureWindow, NewResult, NewSession, StoredSession
from ..schema_head import shipped_head
from . import params as q
from .compiled import Compiled, statements_for
from .runner import Duplicate, Missing, Runner
from .urls import require_driver, sqlite_path

log = logging.getLogger(__name__)


class SchemaNotAtHead(ConfigError):
    """The database's schema is not the one this version of the plugin needs."""

    def __init__(self, problem: str) -> None:
        super().__init__("database_url", problem)


class SqlStore:
    """A ``SessionStore`` over one SQL database (see the module docstring)."""

    def __init__(self, url: str, *, pool_size: int = 5, timeout: float = 1.0) -> None:
        require_driver(url)  # an unsupported URL is a ConfigError now, not at the first request
        self.url = url
        self.timeout = timeout
        self.sqlite = is_sqlite(url)
        self._pool_size = pool_size
        self._sql = statements_for("sqlite" if self.sqlite else "postgresql")
        self._db: Runner | None = None

    def __repr__(self) -> str:
        return f"SqlStore({'sqlite' if self.sqlite else 'postgresql'})"

    # -- life cycle ----------------------------------------------------------------

    async def open(self) -> None:
        """Make the runner and check that the schema is at head (if the database answers)."""
        self._db = self._runner()
        await self._db.open()
        try:
            await self.check_schema()
        except StoreUnavailable:
            # Start anyway: requests answer 503 until the database is back.
            log.warning("session store unreachable at start-up; serving 503 until it answers")

    def _runner(self) -> Runner:
        if self.sqlite:
            from .sqlite_runner import SqliteRunner

            return SqliteRunner(sqlite_path(self.url))
        from .postgres_runner import PostgresRunner  # needs asyncpg: the postgres extra

        return PostgresRunner(self.url, pool_size=self._pool_size, timeout=self.timeout)

    async def check_schema(self) -> None:
        """Raise ``SchemaNotAtHead`` unless the database is at the shipped head revision."""
        found = await self.db.revision()
        wanted = shipped_head()
        if found != wanted:
            raise SchemaNotAtHead(
                f"database schema is at revision {found or 'none'}, this plugin needs {wanted}: "
                "run `connect-plugin migrate` first"
            )

    async def close(self) -> None:
        """Close every connection."""
        if self._db is not None:
            await self._db.close()

    async def ping(self) -> None:
        """Run ``SELECT 1``; raise ``StoreUnavailable`` if that fails."""
        await self.db.read(self._sql.ping, {})

    @property
    def db(self) -> Runner:
        """The runner (``RuntimeError`` before ``open``)."""
        if self._db is None:
            raise RuntimeError("store not opened")
        return self._db

    # -- the contract ------------------------------------------------------------------

    async def create(self, session: NewSession, now: float) -> None:
        """Insert a session; a clash of codes is ``CodeTaken``, a used token ``TokenReused``."""
        values = q.session_values(session, now)
        if session.result is None:
            try:
                await self.db.write(self._sql.insert_session, values)
            except Duplicate:
                raise CodeTaken() from None
            return
        try:
            await self.db.atomically([(self._sql.insert_used_token, _token_values(session.result)),
                                      (self._sql.insert_session, values)])
        except Duplicate as clash:
            raise (TokenReused() if clash.step == 0 else CodeTaken()) from None

    async def awaits_result(self, result_key: str) -> bool:
        """Whether a session with this result key exists and has no result yet (one indexed read)."""
        return await self.db.read(self._sql.awaits_result, q.params(result_key=result_key)) is not None

    async def store_result(self, result_key: str, result: NewResult, now: float) -> str | None:
        """Set the result where none is set yet, and spend its token, in one atomic step."""
        values = q.params(result_key=result_key, jwe=result.jwe, feedback=result.feedback, now=now,
                          replay_key=result.replay_key, replay_expires=result.replay_expires)
        spending = self._sql.store_result_spending_token
        try:
            if spending is not None:
                row = await self.db.write(spending, values)
            else:
                row = (await self.db.atomically([(self._sql.store_result, values),
                                                 (self._sql.insert_used_token, values)]))[0]
        except Duplicate:
            raise TokenReused() from None
        except Missing:
            raise NotFound() from None
        if row is None:
            raise NotFound()
        return _text(row["contact_id"])

    async def link(self, code_key: str, contact_id: str, now: float, window: FailureWindow) -> str | None:
        """Link the code to the contact unless linked to another one, or the window's budget is spent."""
        values = q.params(code_key=code_key, contact_id=contact_id, now=now,
                          window_end=window.ends, budget=window.budget)
        try:
            row = await self.db.write(self._sql.link, values)
        except Duplicate:
            raise NotFound() from None  # this contact id already belongs to another session
        if row is None:
            raise NotFound()
        return _text(row["feedback_result"])

    async def count_link_failure(self, window_end: int) -> int:
        """Count one failed link in the window ending at ``window_end``; the window's count so far."""
        row = await self.db.write(self._sql.count_link_failure, q.params(window_end=window_end, one=1))
        assert row is not None  # an upsert always returns its row
        return int(row["failures"])

    async def find_by_contact(self, contact_id: str) -> StoredSession | None:
        """The purpose, stored JWE and feedback flag of the session linked to ``contact_id``."""
        row = await self.db.read(self._sql.find_by_contact, q.params(contact_id=contact_id))
        if row is None:
            return None
        return StoredSession(purpose=row["purpose"], auth_result=row["auth_result"], feedback=bool(row["feedback"]))

    async def delete_idle(self, before: float, limit: int) -> int:
        """Delete at most ``limit`` sessions idle since before ``before``; how many."""
        return await self._delete(self._sql.delete_idle, q.params(before=before, limit=limit))

    async def delete_expired(self, now: float, limit: int) -> int:
        """Delete at most ``limit`` used tokens past their expiry, and failure windows that ended."""
        windows = await self._delete(self._sql.delete_ended_windows, q.params(now=now, limit=limit))
        tokens = await self._delete(self._sql.delete_expired_tokens, q.params(now=now, limit=limit - windows))
        return windows + tokens

    async def _delete(self, stmt: Compiled, values: dict[str, Any]) -> int:
        if values["p_limit"] <= 0:
            return 0
        return await self.db.count(stmt, values)


def _token_values(result: NewResult) -> dict[str, Any]:
    return q.params(replay_key=result.replay_key, replay_expires=result.replay_expires)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
