"""What a configured database URL says, without importing any database library.

Start-up reads these before anything heavier is loaded: which engine, which
driver it needs, where an SQLite file lives, and one safe line on why a
database did not answer.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..config.database import is_postgres, is_sqlite
from ..errors import ConfigError

__all__ = ["describe_failure", "driver_url", "is_postgres", "is_sqlite", "require_driver", "sqlite_path"]


def driver_url(url: str) -> str:
    """The SQLAlchemy URL with the async driver for a configured URL (migrations and switch-over use it)."""
    if is_postgres(url):
        return "postgresql+asyncpg://"  # asyncpg itself reads the URL: see engine.make_engine
    if is_sqlite(url):
        return "sqlite+aiosqlite:" + url.split(":", 1)[1]
    raise ConfigError("database_url", "must be a sqlite:/// or postgres:// URL")


def require_driver(url: str) -> None:
    """Raise ConfigError unless the driver for ``url`` is installed."""
    driver_url(url)
    if is_postgres(url) and importlib.util.find_spec("asyncpg") is None:
        raise ConfigError("database_url", "PostgreSQL needs the asyncpg driver: pip install 'connect-plugin[postgres]'")


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL (``None`` for an in-memory database)."""
    path = url.split(":///", 1)[1] if ":///" in url else ""
    path = path.split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def describe_failure(error: BaseException) -> str:
    """One safe line on why the database did not answer: the kind of failure and the server's reason.

    PostgreSQL's and the OS's messages name users, hosts and databases, never
    passwords; anything longer than a line is cut.
    """
    cause = error
    for _ in range(5):  # SQLAlchemy wraps the driver's error, which may wrap the server's
        inner = getattr(cause, "orig", None) or cause.__cause__
        if inner is None:
            break
        cause = inner
    reason = getattr(cause, "strerror", None) or str(cause).strip().splitlines()[0:1]
    text = reason if isinstance(reason, str) else (reason[0] if reason else "")
    text = text[:200]
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__
