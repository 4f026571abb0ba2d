"""Turning a configured database URL into an async SQLAlchemy engine.

Takes the database URL as the settings normalised it (``config/database.py``)
and picks the async drivers (asyncpg, aiosqlite).  Migrations, the switch-over
from the reference and the tests use these engines; the session store itself
runs its compiled statements on the drivers directly (``sql.py``).  SQLite
files run in WAL mode so that readers never wait for the writer.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ..config.database import asyncpg_target, is_postgres, is_sqlite
from .sqlite_runner import configure
from .urls import describe_failure, driver_url, require_driver, sqlite_path

__all__ = ["DATABASE_FAILURES", "describe_failure", "driver_url", "is_postgres", "is_sqlite", "make_engine",
           "require_driver", "sqlite_path"]


def _failures() -> tuple[type[BaseException], ...]:
    kinds: list[type[BaseException]] = [exc.DBAPIError, exc.TimeoutError, OSError, TimeoutError]
    if importlib.util.find_spec("asyncpg") is not None:
        import asyncpg  # the postgres extra: its errors reach us unwrapped from a connect

        kinds += [asyncpg.PostgresError, asyncpg.InterfaceError]
    return tuple(kinds)


#: Exceptions that mean "the database did not answer, or refused us" (not a bug of ours).
DATABASE_FAILURES = _failures()


def make_engine(url: str, *, pool_size: int, timeout: float, autocommit: bool = False) -> AsyncEngine:
    """An engine for ``url`` whose every wait (connect, pool, statement) is bounded by ``timeout``.

    ``autocommit`` (PostgreSQL): each statement commits by itself, with no
    ``BEGIN``/``COMMIT`` round trips, and the pool's liveness check is one
    round trip instead of three; ask for a transaction with
    ``engine.execution_options(isolation_level="READ COMMITTED")``.
    """
    if is_sqlite(url):
        path = sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            driver_url(url), pool_size=pool_size, max_overflow=0, pool_timeout=max(timeout, 30.0),
            connect_args={"timeout": max(timeout, 5.0)},
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(
        driver_url(url),
        async_creator=postgres_connector(url, timeout),
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=timeout,
        pool_pre_ping=True,
        pool_recycle=1800,
        **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}),
    )


def postgres_connector(url: str, timeout: float) -> Callable[[], Awaitable[Any]]:
    """Opens asyncpg connections for ``url``: the driver reads libpq's URL parameters itself.

    Handing asyncpg the URL (rather than letting SQLAlchemy turn its query into
    keyword arguments) is what makes ``?application_name=...``, ``sslmode`` and the
    other libpq parameters work; ``connect_timeout`` becomes the connect timeout.
    """
    dsn, extra = asyncpg_target(url)
    connect_timeout = extra.get("timeout") or timeout

    async def connect() -> Any:
        import asyncpg

        return await asyncpg.connect(dsn, timeout=connect_timeout, command_timeout=timeout)

    return connect


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    configure(cursor)  # the store's own settings (sqlite_runner.PRAGMAS)
    cursor.close()

