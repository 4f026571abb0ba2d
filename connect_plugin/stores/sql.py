"""The built-in session store: SQLAlchemy (asyncio) on SQLite or PostgreSQL.

Each guarantee of the store contract (``hookspecs.SessionStore``) rests on
what the database makes atomic: unique constraints for codes, contact ids and
used tokens, and conditional ``UPDATE ... RETURNING`` for "one result per
session" and "one contact per code".  The statements are built once
(``statements.py``) and run with parameters.

On PostgreSQL a single statement runs in autocommit (one round trip); storing
a result and its used token is one statement too (a data-modifying ``WITH``).
On SQLite all writes go through a single connection (queued in the event
loop, not fighting over the file lock) and a pair of writes is one
transaction; reads use a small pool beside it, which WAL mode lets run while
a write is in progress.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import exc, text
from sqlalchemy.engine import CursorResult, Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Executable

from ..errors import CodeTaken, ConfigError, NotFound, StoreUnavailable, TokenReused
from ..migrate import current_revision, head_revision
from ..model import FailureWindow, NewResult, NewSession, StoredSession
from . import statements as q
from .engine import DATABASE_FAILURES, describe_failure, is_sqlite, make_engine, require_driver

log = logging.getLogger(__name__)


def _first(result: CursorResult[Any]) -> Row[Any] | None:
    return result.first() if result.returns_rows else None


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
        self._writer: AsyncEngine | None = None
        self._reader: AsyncEngine | None = None
        self._transactional: AsyncEngine | None = None  # PostgreSQL: the engine without autocommit
        self._engines: list[AsyncEngine] = []

    def __repr__(self) -> str:
        return f"SqlStore({'sqlite' if self.sqlite else 'postgresql'})"

    # -- life cycle ----------------------------------------------------------------

    async def open(self) -> None:
        """Create the engines and check that the schema is at head (if the database answers)."""
        if self.sqlite:
            self._writer = make_engine(self.url, pool_size=1, timeout=self.timeout)
            self._reader = make_engine(self.url, pool_size=self._pool_size, timeout=self.timeout)
            self._engines = [self._writer, self._reader]
        else:
            # One statement, one round trip: no BEGIN/COMMIT around it.  Pairs of
            # writes are single statements too (see store_result), or explicit transactions.
            engine = make_engine(self.url, pool_size=self._pool_size, timeout=self.timeout, autocommit=True)
            self._writer = self._reader = engine
            self._transactional = engine.execution_options(isolation_level="READ COMMITTED")
            self._engines = [engine]
        try:
            await self.check_schema()
        except StoreUnavailable:
            # Start anyway: requests answer 503 until the database is back.
            log.warning("session store unreachable at start-up; serving 503 until it answers")

    async def check_schema(self) -> None:
        """Raise ``SchemaNotAtHead`` unless the database is at the shipped head revision."""
        async with self._connect(self._engine(self._reader)) as conn:
            found = await current_revision(conn)
        wanted = head_revision()
        if found != wanted:
            raise SchemaNotAtHead(
                f"database schema is at revision {found or 'none'}, this plugin needs {wanted}: "
                "run `connect-plugin migrate` first"
            )

    async def close(self) -> None:
        """Dispose of the engines."""
        for engine in self._engines:
            await engine.dispose()

    async def ping(self) -> None:
        """Run ``SELECT 1``; raise ``StoreUnavailable`` if that fails."""
        await self._read(text("SELECT 1"), {})

    # -- the contract ------------------------------------------------------------------

    async def create(self, session: NewSession, now: float) -> None:
        """Insert a session; a clash of codes is ``CodeTaken``, a used token ``TokenReused``."""
        values = q.session_values(session, now)
        if session.result is None:
            try:
                await self._write(q.INSERT_SESSION, values)
            except exc.IntegrityError:
                raise CodeTaken() from None
            return
        async with self._transaction() as conn:
            await self._use_token(conn, session.result)
            try:
                await conn.execute(q.INSERT_SESSION, values)
            except exc.IntegrityError:
                raise CodeTaken() from None

    async def awaits_result(self, result_key: str) -> bool:
        """Whether a session with this result key exists and has no result yet (one indexed read)."""
        return await self._read(q.AWAITS_RESULT, q.params(result_key=result_key)) is not None

    async def store_result(self, result_key: str, result: NewResult, now: float) -> str | None:
        """Set the result where none is set yet, and spend its token, in one atomic step."""
        params = q.params(result_key=result_key, jwe=result.jwe, feedback=result.feedback, now=now,
                          replay_key=result.replay_key, replay_expires=result.replay_expires)
        if not self.sqlite:
            try:
                row = await self._write(q.STORE_RESULT_SPENDING_TOKEN, params)
            except exc.IntegrityError:
                raise TokenReused() from None
        else:
            async with self._transaction() as conn:
                row = (await conn.execute(q.STORE_RESULT, params)).first()
                if row is None:
                    raise NotFound()
                await self._use_token(conn, result)
        if row is None:
            raise NotFound()
        return row.contact_id

    async def link(self, code_key: str, contact_id: str, now: float, window: FailureWindow) -> str | None:
        """Link the code to the contact unless linked to another one, or the window's budget is spent."""
        params = q.params(code_key=code_key, contact_id=contact_id, now=now,
                          window_end=window.ends, budget=window.budget)
        try:
            row = await self._write(q.LINK, params)
        except exc.IntegrityError:
            raise NotFound() from None  # this contact id already belongs to another session
        if row is None:
            raise NotFound()
        return row.feedback_result

    async def count_link_failure(self, window_end: int) -> int:
        """Count one failed link in the window ending at ``window_end``; the window's count so far."""
        row = await self._write(q.count_link_failure(self.sqlite), q.params(window_end=window_end, one=1))
        assert row is not None  # an upsert always returns its row
        return int(row.failures)

    async def find_by_contact(self, contact_id: str) -> StoredSession | None:
        """The purpose, stored JWE and feedback flag of the session linked to ``contact_id``."""
        row = await self._read(q.FIND_BY_CONTACT, q.params(contact_id=contact_id))
        if row is None:
            return None
        return StoredSession(purpose=row.purpose, auth_result=row.auth_result, feedback=bool(row.feedback))

    async def delete_idle(self, before: float, limit: int) -> int:
        """Delete at most ``limit`` sessions idle since before ``before``; how many."""
        return await self._delete(q.DELETE_IDLE, q.params(before=before, limit=limit))

    async def delete_expired(self, now: float, limit: int) -> int:
        """Delete at most ``limit`` used tokens past their expiry, and failure windows that ended."""
        windows = await self._delete(q.DELETE_ENDED_WINDOWS, q.params(now=now, limit=limit))
        tokens = await self._delete(q.DELETE_EXPIRED_TOKENS, q.params(now=now, limit=limit - windows))
        return windows + tokens

    # -- plumbing ------------------------------------------------------------------------

    async def _use_token(self, conn: AsyncConnection, result: NewResult) -> None:
        try:
            await conn.execute(q.INSERT_USED_TOKEN, q.params(replay_key=result.replay_key,
                                                             replay_expires=result.replay_expires))
        except exc.IntegrityError:
            raise TokenReused() from None

    async def _read(self, stmt: Executable, params: Mapping[str, Any]) -> Row[Any] | None:
        async with self._connect(self._engine(self._reader)) as conn:
            return (await conn.execute(stmt, params)).first()

    async def _write(self, stmt: Executable, params: Mapping[str, Any]) -> Row[Any] | None:
        """Run one statement atomically; its first row, if it returns rows."""
        if self.sqlite:
            async with self._transaction() as conn:
                return _first(await conn.execute(stmt, params))
        async with self._connect(self._engine(self._writer)) as conn:
            return _first(await conn.execute(stmt, params))

    async def _delete(self, stmt: Executable, params: Mapping[str, Any]) -> int:
        if params["p_limit"] <= 0:
            return 0
        if self.sqlite:
            async with self._transaction() as conn:
                return (await conn.execute(stmt, params)).rowcount
        async with self._connect(self._engine(self._writer)) as conn:
            return (await conn.execute(stmt, params)).rowcount

    @staticmethod
    def _engine(engine: AsyncEngine | None) -> AsyncEngine:
        if engine is None:
            raise RuntimeError("store not opened")
        return engine

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        engine = self._writer if self.sqlite else self._transactional
        async with self._connect(self._engine(engine)) as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def _connect(self, engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
        """A connection whose failures, of any kind that means "database gone", are StoreUnavailable."""
        try:
            async with engine.connect() as conn:
                yield conn
        except exc.IntegrityError:
            raise
        except DATABASE_FAILURES as error:
            log.warning("session store error: %s", type(error).__name__)
            raise StoreUnavailable("the session store does not answer", reason=describe_failure(error)) from None
