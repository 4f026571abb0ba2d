"""Bulk-loading stored sessions straight into the session table (for the 1e6-session figures).

Going through HTTP would take hours for a million sessions; the benchmark
writes rows with SQLAlchemy Core (SQLite) or ``COPY`` (PostgreSQL) instead.
What one row holds is decided in ONE place, :func:`session_row`, and checked
against ``connect_plugin.stores.schema.session_table``: when the schema
changes (a column renamed, one added), adapt that function and nothing else.

The rows are idle sessions without a result: ``last_activity`` far in the
past, so that ``GET /clean_db`` deletes them, and ``auth_result`` NULL, so a
million rows stay a few hundred MB rather than gigabytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from sqlalchemy import create_engine, event, func, insert, select

from connect_plugin import codes
from connect_plugin.stores.engine import is_sqlite, sqlite_path
from connect_plugin.stores.schema import session_table

CHUNK = 20_000
IDLE_AGE = 30 * 24 * 3600  # seconds: older than any session_ttl (at most 7 days)


def code(i: int) -> str:
    """The DTMF code of bulk session number ``i`` (ten digits, as in the sample configuration).

    Codes are distinct from one another; the table holds their keys under
    :data:`BULK_SECRET`.
    """
    return f"{i:010d}"


#: The key of the bulk rows' codes.  Not the server's code secret: the rows only fill the table, and no
#: caller of the server can link one (so a server's random code never clashes with one either).
BULK_SECRET = b"bulk-loaded sessions of the benchmark"


def code_key(i: int) -> str:
    """What the store holds for the code of bulk session number ``i``."""
    return codes.code_key(BULK_SECRET, code(i))


def session_row(i: int, now: float) -> dict[str, Any]:
    """The column values of bulk session number ``i``: an idle, linked session without a result."""
    return {
        "code_key": code_key(i),
        "result_key": codes.result_key(f"bulk{i:010d}"),
        "purpose": "report_move",
        "contact_id": f"bulk-{i}",
        "auth_result": None,
        "created_at": now - IDLE_AGE,
        "last_activity": now - IDLE_AGE,
    }


def row_columns(now: float) -> list[str]:
    """The columns :func:`session_row` fills, checked against the schema.

    Every name must be a column of ``session_table``, and every NOT NULL
    column without a default must be among them: a schema change that
    :func:`session_row` has not followed fails here, with the column named.
    """
    names = list(session_row(0, now))
    unknown = [name for name in names if name not in session_table.c]
    if unknown:
        raise RuntimeError(f"bench.bulk.session_row fills {unknown}, which session_table does not have")
    missing = [
        column.name for column in session_table.columns
        if column.name not in names and not column.nullable and not column.primary_key
        and column.default is None and column.server_default is None
    ]
    if missing:
        raise RuntimeError(f"bench.bulk.session_row must fill the NOT NULL column(s) {missing}")
    return names


def rows(start: int, stop: int, now: float) -> Iterator[dict[str, Any]]:
    """Bulk sessions ``start`` to ``stop - 1``."""
    for i in range(start, stop):
        yield session_row(i, now)


def load(url: str, start: int, stop: int, now: float) -> None:
    """Insert bulk sessions ``start`` to ``stop - 1`` into the database at ``url`` (migrated), and settle them.

    Settled: the load's writes are on disk (an SQLite checkpoint, a PostgreSQL
    ``CHECKPOINT``) before this returns, so that a checkpoint the load set off
    does not land in the timed phases that follow (a million rows are about
    500 MB of PostgreSQL WAL: its checkpoint's fsyncs would stall the commits
    of the cleanup's figures for the load's sake, not the cleanup's).
    """
    if is_sqlite(url):
        _load_sqlite(url, start, stop, now)
    else:
        asyncio.run(_load_postgres(url, start, stop, now))


def count(url: str) -> int:
    """How many sessions the table holds."""
    if is_sqlite(url):
        engine = create_engine(f"sqlite:///{sqlite_path(url)}")
        try:
            with engine.connect() as conn:
                return int(conn.execute(select(func.count()).select_from(session_table)).scalar_one())
        finally:
            engine.dispose()
    return asyncio.run(_pg_fetchval(url, f"SELECT count(*) FROM {session_table.name}"))  # noqa: S608 - a constant


def _load_sqlite(url: str, start: int, stop: int, now: float) -> None:
    row_columns(now)
    engine = create_engine(f"sqlite:///{sqlite_path(url)}")

    @event.listens_for(engine, "connect")
    def _fast(dbapi_connection: Any, _record: Any) -> None:
        # A benchmark's bulk rows need no durability; the server's own connections keep theirs.
        dbapi_connection.execute("PRAGMA synchronous=OFF")
        dbapi_connection.execute("PRAGMA busy_timeout=30000")

    try:
        for first in range(start, stop, CHUNK):
            with engine.begin() as conn:
                conn.execute(insert(session_table), list(rows(first, min(first + CHUNK, stop), now)))
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA synchronous=FULL")  # this checkpoint fsyncs what the load wrote
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        engine.dispose()


async def _load_postgres(url: str, start: int, stop: int, now: float) -> None:
    import asyncpg

    columns = row_columns(now)
    conn = await asyncpg.connect(_asyncpg_dsn(url), timeout=10)
    try:
        for first in range(start, stop, CHUNK):
            records = [tuple(row[c] for c in columns) for row in rows(first, min(first + CHUNK, stop), now)]
            await conn.copy_records_to_table(session_table.name, records=records, columns=columns)
        await conn.execute(f"ANALYZE {session_table.name}")
        await conn.execute("CHECKPOINT")  # the benchmark's PostgreSQL user is a superuser on 127.0.0.1
    finally:
        await conn.close()


async def _pg_fetchval(url: str, sql: str) -> Any:
    import asyncpg

    conn = await asyncpg.connect(_asyncpg_dsn(url), timeout=10)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def _asyncpg_dsn(url: str) -> str:
    """asyncpg takes ``postgresql://``; the plugin also accepts ``postgres://``."""
    return "postgresql://" + url.split("://", 1)[1]
