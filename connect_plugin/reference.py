"""``connect-plugin migrate --from-reference``: take over the live sessions of the Rust reference plugin.

The reference keeps its sessions in one PostgreSQL table, ``session`` (see
protocol.md, "The reference's database"): the DTMF code and the result code in
clear, the ContactId once linked, the purpose, the JWE as received, and
``lastactivity``, which it sets to the database's ``now()`` in a ``timestamp
without time zone`` column: local time in the ``TimeZone`` of its connection.
Its own cleanup reads the column back in that same time zone, and so does this
module (``--reference-timezone`` names another where the reference's
connections used one of their own).

Each run copies the sessions still live (active within ``session_ttl``) into
``comm_session`` as this plugin stores them: the DTMF code as
``codes.code_key`` under the secret the running plugin uses, the result code as
``codes.result_key`` (so an ``attr_url`` the old plugin handed out works here),
the JWE as it is, the contact link, the purpose and the last activity.  A
result that came in at the reference has no replay record here (its token was
never seen by this plugin), and is marked ``feedback`` so that a link decrypts
it to find out whether it asks for session feedback, as revision 0002 does for
results stored before it.

Running again is safe: a session copied before is recognised by its code and
result code and only brought up to date (a result or a link that reached the old
plugin since); nothing is copied twice.  On PostgreSQL the agents' displays of
the calls concerned hear of the change at once, as they do from the plugin.  Sessions that clash with one of this
plugin's (the same code, result code or call) are skipped and counted, never
shown: no code, contact id or token is ever printed.  The old table is left as
it is unless ``--drop-reference-table`` is given; then it is locked against
the old plugin's writes before it is read, and dropped once the copy is in: in
the same transaction when both tables are in one database.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from . import codes
from .config import Settings
from .errors import ConfigError, StoreUnavailable
from .reference_copy import (
    CODE_CLASH,
    CONTACT_CLASH,
    COPIED,
    IDLE,
    RESULT_CLASH,
    UNCHANGED,
    UNUSABLE,
    UPDATED,
    Candidate,
    Placement,
)
from .reference_options import TABLE, source_url
from .stores.engine import DATABASE_FAILURES, describe_failure, make_engine

#: The reference's columns this copy reads, and the types its ``schema.sql`` gives them.
TEXT_TYPES = ("text", "character varying")
COLUMNS = {"dtmfcode": TEXT_TYPES, "resultcode": TEXT_TYPES, "sessionid": TEXT_TYPES, "purpose": TEXT_TYPES,
           "attr_jwt": TEXT_TYPES, "lastactivity": ("timestamp without time zone",)}
#: How many sessions the table holds, and how many of them were idle for longer than ``:ttl`` seconds;
#: the reference's local times are read in ``:zone``, as its own cleanup reads them (``now()`` is ours).
COUNT_SESSIONS = text(
    "SELECT count(*), count(*) FILTER (WHERE (lastactivity AT TIME ZONE :zone) < now() - make_interval(secs => :ttl)) "
    "FROM session")
#: The sessions active within ``:ttl`` seconds, with the seconds since their last activity by the database's clock.
READ_LIVE_SESSIONS = text(
    "SELECT dtmfcode, resultcode, sessionid, purpose, attr_jwt, "
    "EXTRACT(EPOCH FROM now() - (lastactivity AT TIME ZONE :zone))::float8 AS idle FROM session "
    "WHERE (lastactivity AT TIME ZONE :zone) >= now() - make_interval(secs => :ttl) ORDER BY lastactivity")
#: Before a drop: keep the old plugin from writing between our read and the drop (waiting at most 10 s for it).
LOCK_FOR_DROP = (text("SET LOCAL lock_timeout = '10s'"), text("LOCK TABLE session IN EXCLUSIVE MODE"))
DROP = text("DROP TABLE session")
#: Seconds every database wait may take here (a copy is not a request with a caller waiting).
TIMEOUT = 30.0
#: A last activity further ahead than this is "in the future": the time zone is likely not the reference's.
FUTURE_SLACK = 120.0
#: Exit status when the reference's database has no usable ``session`` table.
EXIT_NOT_THE_REFERENCE = 2
MAX_CODE = 64
MAX_CONTACT_ID = 256

DESCRIPTIONS = {
    COPIED: "copied",
    UPDATED: "copied before, brought up to date (a result or a link that reached the old plugin since)",
    UNCHANGED: "copied before, nothing new",
    IDLE: "skipped: idle for longer than session_ttl ({ttl} s)",
    CODE_CLASH: "skipped: a session of this plugin has the same DTMF code",
    RESULT_CLASH: "skipped: a session of this plugin has the same result code "
                  "(was an earlier copy made under another code_secret?)",
    CONTACT_CLASH: "skipped, or left unlinked: its call is linked to another session of this plugin",
    UNUSABLE: "skipped: incomplete (no purpose, or a code or contact id this plugin cannot take)",
}


class ReferenceTableError(Exception):
    """The reference's database has no usable ``session`` table; the message says what is wrong."""


@dataclass
class Report:
    """How many reference sessions went which way; nothing in it identifies a session."""

    found: int = 0
    timezone: str = ""
    counts: Counter[str] = field(default_factory=Counter)
    results_copied: int = 0
    in_future: int = 0
    dropped: bool = False

    def lines(self, ttl: int) -> list[str]:
        """The report as printed."""
        out = [f"reference sessions in table {TABLE}: {self.found} "
               f"(last activity read as local time in {self.timezone})"]
        for kind, text_ in DESCRIPTIONS.items():
            if self.counts[kind] or kind == COPIED:
                out.append(f"  {self.counts[kind]:>6}  {text_.format(ttl=ttl)}")
        if self.in_future:
            out.append(f"note: {self.in_future} session(s) had their last activity in the future, taken as now: "
                       "did the reference's connections use another time zone? (--reference-timezone)")
        if self.results_copied:
            out.append("note: results copied from the reference carry no replay record: their tokens could be "
                       "posted once more, to a session of this plugin, until they expire (minutes)")
        out.append(f"table {TABLE} dropped" if self.dropped
                   else f"table {TABLE} left as it is (--drop-reference-table drops it once the old plugin is stopped)")
        return out


# -- the command line -----------------------------------------------------------------------------


def run(settings: Settings, args: argparse.Namespace) -> int:
    """``migrate --from-reference``, once the schema is at head: copy, print the report; the exit status."""
    try:
        report = copy_sessions(settings, args.reference_url, drop=args.drop_reference_table,
                               timezone=args.reference_timezone)
    except ReferenceTableError as error:
        print(f"connect-plugin: migrate --from-reference: {error}", file=sys.stderr)
        return EXIT_NOT_THE_REFERENCE
    for line in report.lines(settings.session_ttl):
        print(line)
    return 0


# -- the copy -----------------------------------------------------------------------------------------


def copy_sessions(settings: Settings, given_url: str | None, *, drop: bool = False,
                  timezone: str | None = None, now: float | None = None) -> Report:
    """Copy the reference's live sessions into this plugin's database (at head already); what happened."""
    source = source_url(settings, given_url)
    secret = codes.code_secret_for(settings)
    copier = _Copier(settings, secret, time.time() if now is None else now)
    loop = asyncio.new_event_loop()  # a private loop, as migrate's Alembic run has
    try:
        return loop.run_until_complete(copier.run(source, drop=drop, timezone=timezone))
    finally:
        loop.close()


@asynccontextmanager
async def _database(url: str, what: str) -> AsyncIterator[AsyncConnection]:
    """A connection to ``url``; its failures are one-line ``StoreUnavailable`` errors naming ``what``."""
    engine: AsyncEngine = make_engine(url, pool_size=1, timeout=TIMEOUT)
    try:
        try:
            conn = await engine.connect()
        except DATABASE_FAILURES as error:
            raise StoreUnavailable(f"cannot reach {what}", reason=describe_failure(error)) from None
        try:
            yield conn
        except DATABASE_FAILURES as error:
            raise StoreUnavailable(f"{what} failed during the copy: nothing was copied",
                                   reason=describe_failure(error)) from None
        finally:
            await conn.close()
    finally:
        await engine.dispose()


class _Copier:
    """One run of the copy: reads the reference's table, writes ``comm_session``."""

    def __init__(self, settings: Settings, secret: bytes, now: float) -> None:
        self.settings = settings
        self.secret = secret
        self.now = now
        self.report = Report()
        self.placement = Placement()

    async def run(self, source: str, *, drop: bool, timezone: str | None) -> Report:
        target = self.settings.database_url
        copied_elsewhere = False
        async with _database(source, "the reference's database") as src:
            try:
                async with src.begin():
                    rows = await self._take(src, drop=drop, timezone=timezone)
                    if source == target:
                        await self._place(src, rows)
                    else:
                        async with _database(target, "this plugin's database") as dst, dst.begin():
                            await self._place(dst, rows)
                        copied_elsewhere = True
                    if drop:
                        await src.execute(DROP)
            except DATABASE_FAILURES as error:
                if copied_elsewhere:
                    raise StoreUnavailable("the sessions were copied, but the reference's table was not dropped",
                                           reason=describe_failure(error)) from None
                raise
        self.report.counts.update(self.placement.counts)
        self.report.results_copied = self.placement.results_copied
        self.report.dropped = drop
        return self.report

    async def _place(self, conn: AsyncConnection, rows: list[Candidate]) -> None:
        await self.placement.place_all(conn, rows)
        await self.placement.announce(conn)

    async def _take(self, conn: AsyncConnection, *, drop: bool, timezone: str | None) -> list[Candidate]:
        """Check the reference's table and read its live sessions; with ``drop``, lock it against writes first."""
        await self._check_table(conn)
        zone = await self._zone(conn, timezone)
        if drop:  # the old plugin's writes wait from here on, and find no table once we commit
            for statement in LOCK_FOR_DROP:
                await conn.execute(statement)
        return await self._read(conn, zone)

    # -- reading ------------------------------------------------------------------------------

    async def _check_table(self, conn: AsyncConnection) -> None:
        """Raise ``ReferenceTableError`` unless ``session`` has the reference's shape."""
        kind = (await conn.execute(text("SELECT c.relkind::text FROM pg_class c WHERE c.oid = to_regclass(:t)"),
                                   {"t": TABLE})).scalar()
        if kind is None:
            raise ReferenceTableError(f"the reference's database has no table {TABLE!r} "
                                      "(is --from the database of the reference plugin?)")
        if kind not in ("r", "p"):
            raise ReferenceTableError(f"{TABLE!r} in the reference's database is not a table")
        found: dict[str, str] = dict((await conn.execute(text(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
            "WHERE a.attrelid = to_regclass(:t) AND a.attnum > 0 AND NOT a.attisdropped"), {"t": TABLE})).all())
        for column, types in COLUMNS.items():
            if column not in found:
                raise ReferenceTableError(f"the table {TABLE!r} has no column {column}: it is not the reference's "
                                          "table (see its schema.sql)")
            if not found[column].startswith(types):
                raise ReferenceTableError(f"the table {TABLE!r} has column {column} of type {found[column]}, "
                                          f"the reference's is {types[0]}")

    async def _zone(self, conn: AsyncConnection, given: str | None) -> str:
        """The time zone the reference's times are read in: ``given``, else the connection's ``TimeZone``."""
        if given is None:
            zone = (await conn.execute(text("SELECT current_setting('TimeZone')"))).scalar_one()
        else:
            known = (await conn.execute(text("SELECT count(*) FROM pg_timezone_names WHERE name = :z "
                                             "UNION ALL SELECT count(*) FROM pg_timezone_abbrevs WHERE abbrev = :z"),
                                        {"z": given})).scalars().all()
            if not any(known):
                raise ConfigError("--reference-timezone", "is not a time zone PostgreSQL knows")
            zone = given
        self.report.timezone = zone
        return zone

    async def _read(self, conn: AsyncConnection, zone: str) -> list[Candidate]:
        """Count the reference's sessions, and read those active within ``session_ttl`` (idle seconds by its clock)."""
        params = {"zone": zone, "ttl": float(self.settings.session_ttl)}
        self.report.found, self.report.counts[IDLE] = (await conn.execute(COUNT_SESSIONS, params)).one()
        rows = (await conn.execute(READ_LIVE_SESSIONS, params)).all()
        return [c for c in (self._candidate(row) for row in rows) if c is not None]

    def _candidate(self, row: Any) -> Candidate | None:
        """A reference row as this plugin stores it, or ``None`` (counted) when it cannot take it."""
        dtmf, result_code, contact_id, purpose = row.dtmfcode, row.resultcode, row.sessionid, row.purpose
        usable = (dtmf and len(dtmf) <= MAX_CODE and dtmf.isascii() and dtmf.isdigit() and result_code
                  and purpose is not None and (contact_id is None or 0 < len(contact_id) <= MAX_CONTACT_ID))
        if not usable:
            self.report.counts[UNUSABLE] += 1
            return None
        idle = row.idle
        if idle < -FUTURE_SLACK:
            self.report.in_future += 1
        return Candidate(codes.code_key(self.secret, dtmf), codes.result_key(result_code), purpose, contact_id,
                         row.attr_jwt or None, self.now - max(idle, 0.0))
