"""Test data for switching over: the reference plugin's ``session`` table, filled as the reference fills it.

The table is made from the DDL the reference's ``schema.sql`` describes (see
``../shared/docs/protocol.md``, "The reference's database"), and rows are
written the way the reference writes them: ``lastActivity`` from the
database's ``now()`` in the connection's time zone.  The test databases get a
time zone far from UTC (``Pacific/Chatham``, UTC+12:45 or +13:45), so that
reading those times as UTC would be off by half a day.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from sqlalchemy import text

from connect_plugin.stores.engine import make_engine
from tests.support import cli_command, run_private

#: The reference's table, as its schema.sql creates it (``lastActivity`` unquoted: PostgreSQL folds it).
REFERENCE_DDL = """
CREATE TABLE session (
    id SERIAL NOT NULL,
    dtmfcode text NOT NULL,
    resultcode text NOT NULL,
    lastActivity timestamp NOT NULL,
    sessionid text,
    purpose text,
    attr_jwt text,
    PRIMARY KEY (id)
);
CREATE UNIQUE INDEX ON session (dtmfcode);
CREATE UNIQUE INDEX ON session (sessionid);
CREATE INDEX ON session (lastActivity);
"""
#: The time zone of the reference's database in these tests.
REFERENCE_TIMEZONE = "Pacific/Chatham"


def postgres(url: str, sql: str, *args: Any, timezone: str | None = None) -> list[tuple]:
    """Run one statement (or a script, without ``args``) on PostgreSQL with asyncpg, as the reference's driver does.

    ``timezone``: the connection's ``TimeZone``, where it is not the database's.
    """
    import asyncpg

    async def run() -> list[tuple]:
        settings = {"TimeZone": timezone} if timezone else None
        conn = await asyncpg.connect(url, timeout=10, server_settings=settings)
        try:
            if not args and not sql.lstrip().upper().startswith("SELECT"):
                await conn.execute(sql)
                return []
            return [tuple(r) for r in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    return run_private(run())


def make_reference_table(url: str) -> None:
    """Give the database at ``url`` the reference's table and time zone."""
    name = url.rsplit("/", 1)[1]
    postgres(url, f"ALTER DATABASE \"{name}\" SET timezone = '{REFERENCE_TIMEZONE}'")
    postgres(url, REFERENCE_DDL)


def add_reference_session(url: str, dtmf: str, resultcode: str, purpose: str | None = "report_move", *,
                          ago: float = 0, contact: str | None = None, jwe: str | None = None,
                          timezone: str | None = None) -> None:
    """A session as the reference stores it, last active ``ago`` seconds ago by the database's clock."""
    postgres(url, "INSERT INTO session (dtmfcode, resultcode, purpose, lastActivity, sessionid, attr_jwt) "
                  "VALUES ($1, $2, $3, now() - make_interval(secs => $4), $5, $6)",
             dtmf, resultcode, purpose, float(ago), contact, jwe, timezone=timezone)


def reference_rows(url: str) -> list[tuple]:
    """The reference's table, whole, in a stable order."""
    return postgres(url, "SELECT * FROM session ORDER BY id")


def has_reference_table(url: str) -> bool:
    """Whether the database at ``url`` still has the reference's table."""
    return postgres(url, "SELECT to_regclass('session') IS NOT NULL")[0][0]


def our_sessions(url: str) -> list[Any]:
    """This plugin's ``comm_session`` rows (SQLite or PostgreSQL), in insertion order."""

    async def read() -> list[Any]:
        engine = make_engine(url, pool_size=1, timeout=10)
        try:
            async with engine.connect() as conn:
                return list((await conn.execute(text("SELECT * FROM comm_session ORDER BY id"))).all())
        finally:
            await engine.dispose()

    return run_private(read())


def migrate_from_reference(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``connect-plugin migrate --config <config> --from-reference <args>``, as a deployer runs it."""
    return subprocess.run([*cli_command(), "migrate", "--config", str(config), "--from-reference", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def counts(stdout: str) -> dict[str, int]:
    """The report's counts by the first words of each line's description (``copied``, ``skipped: idle``, ...)."""
    found: dict[str, int] = {}
    for line in stdout.splitlines():
        parts = line.split(None, 1)
        if line.startswith("  ") and len(parts) == 2 and parts[0].isdigit():
            found[_category(parts[1])] = int(parts[0])
    return found


def _category(description: str) -> str:
    for word, category in (("idle", "idle"), ("DTMF code", "code clash"), ("result code", "result clash"),
                           ("linked", "contact clash"), ("incomplete", "unusable"), ("up to date", "updated"),
                           ("nothing new", "unchanged"), ("copied", "copied")):
        if word in description:
            return category
    raise AssertionError(f"unknown report line: {description}")
