"""The PostgreSQL side of the SQL store: an asyncpg pool, statements sent as compiled.

Each statement is one round trip in autocommit; asyncpg prepares it once per
connection and keeps it.  An atomic group is one explicit transaction.  Every
wait is bounded by ``timeout`` (the pool's, the connection's and each
command's): when the server does not answer, the request fails with
``StoreUnavailable`` and the connection that saw the failure is closed rather
than given to the next request.  A connection the server closed while it sat
in the pool is noticed there and replaced before use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import asyncpg

from ..config.database import asyncpg_target
from ..errors import StoreUnavailable
from .compiled import Compiled
from .runner import REVISION_SQL, Duplicate, Missing, Row, Step
from .urls import describe_failure

log = logging.getLogger(__name__)
T = TypeVar("T")
#: A connection lent by the pool (asyncpg's proxy around a ``Connection``).
Pooled = Any
#: Failures of the connection itself (as opposed to an error the server reported on a live connection).
CONNECTION_FAILURES = (asyncpg.InterfaceError, asyncpg.PostgresConnectionError, OSError, TimeoutError)
#: Failures that leave no doubt that nothing reached the server: the connection had died in the pool
#: (the server closed or terminated it while it sat there), so the work is tried again on another one.
DIED_IN_POOL = (asyncpg.InterfaceError, asyncpg.InternalClientError, asyncpg.AdminShutdownError)
#: Seconds a connection may sit unused in the pool before it is closed.
IDLE_LIFETIME = 300.0


class PostgresRunner:
    """A ``Runner`` over a PostgreSQL server, with at most ``pool_size`` connections."""

    def __init__(self, url: str, *, pool_size: int, timeout: float) -> None:
        self._dsn, extra = asyncpg_target(url)
        self._connect_timeout = extra.get("timeout") or timeout
        self._pool_size = pool_size
        self._timeout = timeout
        self._pool: asyncpg.Pool | None = None

    def __repr__(self) -> str:
        return "PostgresRunner()"

    async def open(self) -> None:
        """Make the pool; it connects on first use, so a server that is down now is not an error."""
        self._pool = await asyncpg.create_pool(
            self._dsn, min_size=0, max_size=self._pool_size, timeout=self._connect_timeout,
            command_timeout=self._timeout, max_inactive_connection_lifetime=IDLE_LIFETIME, reset=_nothing_to_reset,
        )

    async def close(self) -> None:
        """Close every connection (waiting at most ``timeout`` for those in use)."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            try:
                await asyncio.wait_for(pool.close(), self._timeout)
            except (TimeoutError, *CONNECTION_FAILURES):
                pool.terminate()

    async def read(self, stmt: Compiled, values: Mapping[str, Any]) -> Row | None:
        """A read; its first row."""
        return await self._run(lambda conn: conn.fetchrow(stmt.sql, *stmt.args(values)))

    async def write(self, stmt: Compiled, values: Mapping[str, Any]) -> Row | None:
        """One write (autocommit); its first row, if it returns rows."""
        return await self._run(lambda conn: conn.fetchrow(stmt.sql, *stmt.args(values)))

    async def count(self, stmt: Compiled, values: Mapping[str, Any]) -> int:
        """One write (autocommit); rows changed, from the command tag (``DELETE 12``)."""
        tag = await self._run(lambda conn: conn.execute(stmt.sql, *stmt.args(values)))
        last = str(tag).rsplit(" ", 1)[-1]
        return int(last) if last.isdigit() else 0

    async def atomically(self, steps: Sequence[Step]) -> list[Row | None]:
        """The steps in one transaction."""

        async def work(conn: Pooled) -> list[Row | None]:
            out: list[Row | None] = []
            async with conn.transaction():
                for index, (stmt, values) in enumerate(steps):
                    try:
                        row = await conn.fetchrow(stmt.sql, *stmt.args(values))
                    except asyncpg.UniqueViolationError:
                        raise Duplicate(index) from None
                    if stmt.returns_rows and row is None:
                        raise Missing(index)
                    out.append(row)
            return out

        return await self._run(work)

    async def revision(self) -> str | None:
        """The Alembic revision the database is at."""

        async def work(conn: Pooled) -> str | None:
            try:
                return await conn.fetchval(REVISION_SQL)
            except asyncpg.UndefinedTableError:
                return None

        return await self._run(work)

    async def _run(self, work: Callable[[Pooled], Awaitable[T]]) -> T:
        if self._pool is None:
            raise StoreUnavailable("the session store is closed")
        # A connection found dead is closed and the next one tried: when the server restarted, or an
        # administrator ended every session, each pooled connection may be dead once.  Nothing was sent on
        # any of them, so trying again is safe; after pool_size of them, a fresh connection answers.
        attempts = self._pool_size + 1
        for attempt in range(1, attempts + 1):
            retry = attempt < attempts
            try:
                conn = await self._pool.acquire(timeout=self._timeout)
            except (asyncpg.PostgresError, *CONNECTION_FAILURES) as error:
                raise _unavailable(error) from None
            try:
                return await work(conn)
            except asyncpg.UniqueViolationError:
                raise Duplicate() from None
            except (Duplicate, Missing):
                raise
            except (asyncpg.PostgresError, *DIED_IN_POOL, *CONNECTION_FAILURES) as error:
                if not isinstance(error, CONNECTION_FAILURES) and not _died_in_pool(error):
                    raise _unavailable(error) from None  # the server refused the statement: the connection is fine
                _close(conn)  # never hand this connection out again
                if not (retry and _died_in_pool(error)):
                    raise _unavailable(error) from None
            finally:
                await self._pool.release(conn)
        raise AssertionError("unreachable")


def _died_in_pool(error: BaseException) -> bool:
    """Whether ``error`` says the connection was dead before the statement reached the server.

    Either asyncpg refused to send on it, or the server had terminated it (an
    administrator's ``pg_terminate_backend``, a restart) while it sat in the pool.
    """
    if isinstance(error, DIED_IN_POOL):
        return True
    return isinstance(error, asyncpg.ConnectionDoesNotExistError) and isinstance(
        error.__cause__, asyncpg.AdminShutdownError)


def _close(conn: Pooled) -> None:
    """Close a pooled connection at once (asyncpg may already have taken it back, closed)."""
    with contextlib.suppress(asyncpg.InterfaceError):
        conn.terminate()


async def _nothing_to_reset(_conn: asyncpg.Connection) -> None:
    """A connection back in the pool keeps its state: the store sets none.

    asyncpg's default sends ``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL`` on every release, a round trip per store operation.  The
    store's connections only ever run its own statements (no locks, cursors,
    ``LISTEN`` or ``SET``); an open transaction is still rolled back by asyncpg.
    """


def _unavailable(error: BaseException) -> StoreUnavailable:
    log.warning("session store error: %s", type(error).__name__)
    return StoreUnavailable("the session store does not answer", reason=describe_failure(error))
