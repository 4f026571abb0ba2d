"""The built-in session store: SQLAlchemy (asyncio) on SQLite or PostgreSQL.

The same statements run on both.  Each guarantee of the store contract
(``hookspecs.SessionStore``) rests on one statement that the database makes
atomic: unique constraints for codes and contact ids, and conditional
``UPDATE``s for "one result per session" and "one contact per code".

On SQLite all writes go through a single connection (queued in the event
loop, not fighting over the file lock); reads use a small pool beside it,
which WAL mode lets run while a write is in progress.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import delete, exc, insert, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..errors import CodeTaken, ConfigError, NotFound, StoreUnavailable
from ..migrate import current_revision, head_revision
from ..model import NewSession, StoredSession
from .engine import DATABASE_FAILURES, describe_failure, is_sqlite, make_engine, require_driver
from .schema import session_table as t

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
        self._writer: AsyncEngine | None = None
        self._reader: AsyncEngine | None = None

    def __repr__(self) -> str:
        return f"SqlStore({'sqlite' if self.sqlite else 'postgresql'})"

    # -- life cycle ----------------------------------------------------------------

    async def open(self) -> None:
        """Create the engines and check that the schema is at head (if the database answers)."""
        if self.sqlite:
            self._writer = make_engine(self.url, pool_size=1, timeout=self.timeout)
            self._reader = make_engine(self.url, pool_size=self._pool_size, timeout=self.timeout)
        else:
            self._writer = self._reader = make_engine(self.url, pool_size=self._pool_size, timeout=self.timeout)
        try:
            await self.check_schema()
        except StoreUnavailable:
            # Start anyway: requests answer 503 until the database is back.
            log.warning("session store unreachable at start-up; serving 503 until it answers")

    async def check_schema(self) -> None:
        """Raise ``SchemaNotAtHead`` unless the database is at the shipped head revision."""
        async with self._connect(self._reader_engine) as conn:
            found = await current_revision(conn)
        wanted = head_revision()
        if found != wanted:
            raise SchemaNotAtHead(
                f"database schema is at revision {found or 'none'}, this plugin needs {wanted}: "
                "run `connect-plugin migrate` first"
            )

    async def close(self) -> None:
        """Dispose of the engines."""
        for engine in {self._writer, self._reader}:
            if engine is not None:
                await engine.dispose()

    async def ping(self) -> None:
        """Run ``SELECT 1``; raise ``StoreUnavailable`` if that fails."""
        async with self._connect(self._reader_engine) as conn:
            await conn.execute(text("SELECT 1"))

    # -- the contract ------------------------------------------------------------------

    async def create(self, session: NewSession, now: float) -> None:
        """Insert a session; a unique-constraint clash is ``CodeTaken``."""
        stmt = insert(t).values(
            dtmf=session.dtmf, result_key=session.result_key, purpose=session.purpose,
            auth_result=session.auth_result, created_at=now, last_activity=now,
        )
        try:
            async with self._transaction() as conn:
                await conn.execute(stmt)
        except exc.IntegrityError:
            raise CodeTaken() from None

    async def store_result(self, result_key: str, auth_result: str, now: float) -> str | None:
        """Set the result where none is set yet; ``NotFound`` otherwise."""
        stmt = (
            update(t)
            .where(t.c.result_key == result_key, t.c.auth_result.is_(None))
            .values(auth_result=auth_result, last_activity=now)
            .returning(t.c.contact_id)
        )
        async with self._transaction() as conn:
            row = (await conn.execute(stmt)).first()
        if row is None:
            raise NotFound()
        return row.contact_id

    async def link(self, dtmf: str, contact_id: str, now: float) -> None:
        """Link the code to the contact unless it is linked to another one."""
        stmt = (
            update(t)
            .where(t.c.dtmf == dtmf, or_(t.c.contact_id.is_(None), t.c.contact_id == contact_id))
            .values(contact_id=contact_id, last_activity=now)
        )
        try:
            async with self._transaction() as conn:
                result = await conn.execute(stmt)
        except exc.IntegrityError:
            # This contact id already belongs to another session.
            raise NotFound() from None
        if result.rowcount != 1:
            raise NotFound()

    async def find_by_contact(self, contact_id: str) -> StoredSession | None:
        """The purpose and stored JWE of the session linked to ``contact_id``."""
        stmt = select(t.c.purpose, t.c.auth_result).where(t.c.contact_id == contact_id)
        async with self._connect(self._reader_engine) as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else StoredSession(purpose=row.purpose, auth_result=row.auth_result)

    async def delete_idle(self, before: float) -> int:
        """Delete every session idle since before ``before``."""
        async with self._transaction() as conn:
            result = await conn.execute(delete(t).where(t.c.last_activity < before))
        return result.rowcount

    # -- plumbing ------------------------------------------------------------------------

    @property
    def _reader_engine(self) -> AsyncEngine:
        if self._reader is None:
            raise RuntimeError("store not opened")
        return self._reader

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        if self._writer is None:
            raise RuntimeError("store not opened")
        async with self._connect(self._writer) as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def _connect(self, engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
        """A connection whose failures, of any kind that means "database gone", are StoreUnavailable."""
        try:
            async with engine.connect() as conn:
                yield conn
        except (exc.IntegrityError, NotFound):
            raise
        except DATABASE_FAILURES as error:
            log.warning("session store error: %s", type(error).__name__)
            raise StoreUnavailable("the session store does not answer", reason=describe_failure(error)) from None
