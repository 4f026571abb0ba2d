"""Turning a configured database URL into an async SQLAlchemy engine.

Accepts the reference's ``postgres://`` form and plain ``sqlite:///path``, and
picks the async drivers (asyncpg, aiosqlite).  SQLite files run in WAL mode so
that readers never wait for the writer.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ..errors import ConfigError

POSTGRES_SCHEMES = {"postgres", "postgresql", "postgresql+asyncpg"}
SQLITE_SCHEMES = {"sqlite", "sqlite+aiosqlite"}


def driver_url(url: str) -> str:
    """The SQLAlchemy URL with the async driver for a configured URL."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in POSTGRES_SCHEMES:
        # libpq's sslmode is asyncpg's ssl.
        query = [("ssl", v) if k == "sslmode" else (k, v) for k, v in parse_qsl(parts.query)]
        return urlunsplit(("postgresql+asyncpg", parts.netloc, parts.path, urlencode(query), parts.fragment))
    if scheme in SQLITE_SCHEMES:
        return "sqlite+aiosqlite:" + url.split(":", 1)[1]
    raise ConfigError("database_url", "must be a sqlite:/// or postgres:// URL")


def require_driver(url: str) -> None:
    """Raise ConfigError unless the async driver for ``url`` is installed."""
    driver_url(url)
    if is_postgres(url) and importlib.util.find_spec("asyncpg") is None:
        raise ConfigError("database_url", "PostgreSQL needs the asyncpg driver: pip install 'connect-plugin[postgres]'")


def is_postgres(url: str) -> bool:
    """True for a PostgreSQL URL."""
    return urlsplit(url).scheme.lower() in POSTGRES_SCHEMES


def is_sqlite(url: str) -> bool:
    """True for an SQLite URL."""
    return urlsplit(url).scheme.lower() in SQLITE_SCHEMES


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL (``None`` for an in-memory database)."""
    path = url.split(":///", 1)[1] if ":///" in url else ""
    path = path.split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def make_engine(url: str, *, pool_size: int, timeout: float) -> AsyncEngine:
    """An engine for ``url`` whose every wait (connect, pool, statement) is bounded by ``timeout``."""
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
    connect_args: dict[str, Any] = {"timeout": timeout, "command_timeout": timeout}
    return create_async_engine(
        driver_url(url),
        pool_size=pool_size,
        max_overflow=0,
        pool_timeout=timeout,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args=connect_args,
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers do not block the writer nor it them.  synchronous=FULL: a
    # commit that answered is on disk, even if the machine loses power.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
