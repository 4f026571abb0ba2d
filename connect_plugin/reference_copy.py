"""Writing the reference's live sessions into ``comm_session``: each copied, brought up to date, or counted.

A candidate is a reference session already in this plugin's form (code keys,
epoch seconds; see ``reference``).  It is copied when no session here has its
code, its result code or its call; a session copied by an earlier run (same
code key and result key) takes the result or the link that reached the old
plugin since, where it has none; anything else is counted by kind, never shown.
The plugin may be serving while this runs: an insert that meets a session it
has just created is not an error (``ON CONFLICT DO NOTHING``), and an update
never overwrites what the running plugin stored.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import exc, exists, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from .stores.schema import session_table as t

# What happened to each reference session (the report's categories, in the report's order).
COPIED, UPDATED, UNCHANGED = "copied", "updated", "unchanged"
IDLE, CODE_CLASH, RESULT_CLASH, CONTACT_CLASH, UNUSABLE = "idle", "code", "result", "contact", "unusable"
#: The instance part of the change events this copy sends (see ``stores.pg_notify``): not any plugin's.
ORIGIN = "reference-copy"
#: Candidates looked up at once (three lists of keys: within SQLite's oldest limit of 999 parameters).
CHUNK = 300


@dataclass(frozen=True)
class Candidate:
    """A live reference session, as this plugin stores it."""

    code_key: str
    result_key: str
    purpose: str
    contact_id: str | None
    jwe: str | None
    last_activity: float

    def __repr__(self) -> str:
        return f"Candidate(linked={self.contact_id is not None}, result={self.jwe is not None})"


class Placement:
    """Places candidates into ``comm_session`` over one connection, in the caller's transaction; counts each."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.results_copied = 0
        self.changed_calls: set[str] = set()

    async def place_all(self, conn: AsyncConnection, candidates: list[Candidate]) -> None:
        """Place every candidate: insert, bring a copy up to date, or count why not."""
        for chunk in _chunks(candidates, CHUNK):
            mine = await _Mine.load(conn, chunk)
            for candidate in chunk:
                self.counts[await self._place(conn, candidate, mine)] += 1

    async def announce(self, conn: AsyncConnection) -> None:
        """Tell the agents' displays of calls whose session changed, as the plugin does (PostgreSQL, at commit).

        A plugin instance on an SQLite file hears only of its own changes: there,
        a display open during the copy shows the change when it reconnects or reloads.
        """
        if conn.dialect.name != "postgresql":
            return
        from .stores.pg_notify import CHANNEL  # needs asyncpg, as PostgreSQL does anyway

        for contact_id in sorted(self.changed_calls):
            await conn.execute(text("SELECT pg_notify(:channel, :payload)"),
                               {"channel": CHANNEL, "payload": f"{ORIGIN}:{contact_id}"})

    async def _place(self, conn: AsyncConnection, c: Candidate, mine: _Mine, retry: bool = True) -> str:
        """Copy one candidate, or bring its earlier copy up to date; its category."""
        ours = mine.by_code.get(c.code_key)
        if ours is not None:
            if ours.result_key != c.result_key:
                return CODE_CLASH
            return await self._update(conn, c, ours, mine)
        if c.result_key in mine.by_result:
            return RESULT_CLASH
        if c.contact_id is not None and c.contact_id in mine.by_contact:
            return CONTACT_CLASH
        values = {"code_key": c.code_key, "result_key": c.result_key, "purpose": c.purpose,
                  "contact_id": c.contact_id, "auth_result": c.jwe, "feedback": c.jwe is not None,
                  "created_at": c.last_activity, "last_activity": c.last_activity}
        dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
        stmt = dialect.insert(t).values(values).on_conflict_do_nothing().returning(t.c.id)
        row = (await conn.execute(stmt)).first()
        if row is None:  # a session of the running plugin took the code, result code or call just now
            if retry:
                return await self._place(conn, c, await _Mine.load(conn, [c]), retry=False)
            return CODE_CLASH
        mine.add(_Row(row.id, c.code_key, c.result_key, c.contact_id, c.jwe, c.last_activity))
        self.results_copied += c.jwe is not None
        if c.contact_id is not None:
            self.changed_calls.add(c.contact_id)
        return COPIED

    async def _update(self, conn: AsyncConnection, c: Candidate, ours: _Row, mine: _Mine) -> str:
        """A session copied before: take a result or a link that reached the old plugin since, where ours has none."""
        values: dict[str, Any] = {}
        guards = [t.c.id == ours.id]
        if c.jwe is not None and ours.auth_result is None:
            values.update(auth_result=c.jwe, feedback=True)
            guards.append(t.c.auth_result.is_(None))
        link_clash = c.contact_id is not None and c.contact_id != ours.contact_id and (
            ours.contact_id is not None or c.contact_id in mine.by_contact)
        if c.contact_id is not None and ours.contact_id is None and not link_clash:
            values["contact_id"] = c.contact_id
            guards.append(t.c.contact_id.is_(None))
        if not values:
            return CONTACT_CLASH if link_clash else UNCHANGED
        values["last_activity"] = max(ours.last_activity, c.last_activity)
        if "contact_id" in values:  # not if the running plugin linked that call to a session just now
            guards.append(~exists().where(t.c.contact_id == c.contact_id))
        stmt = update(t).where(*guards).values(values)
        try:
            if conn.dialect.name == "sqlite":  # one writer at a time: nobody links in between
                changed = (await conn.execute(stmt)).rowcount
            else:  # a link committed during this statement is a unique violation: undo this statement only
                async with conn.begin_nested():
                    changed = (await conn.execute(stmt)).rowcount
        except exc.IntegrityError:
            return CONTACT_CLASH
        if not changed:  # the running plugin got a result or a link for it just now: ours stays
            return UNCHANGED
        if "contact_id" in values:
            mine.by_contact.add(c.contact_id)  # type: ignore[arg-type]
        self.results_copied += "auth_result" in values
        if ours.contact_id or "contact_id" in values:
            self.changed_calls.add(ours.contact_id or c.contact_id)  # type: ignore[arg-type]
        return CONTACT_CLASH if link_clash else UPDATED


@dataclass(frozen=True)
class _Row:
    """What the copy needs to know of a session of this plugin."""

    id: int
    code_key: str
    result_key: str
    contact_id: str | None
    auth_result: str | None
    last_activity: float


@dataclass
class _Mine:
    """This plugin's sessions that share a code, a result code or a call with some candidates."""

    by_code: dict[str, _Row] = field(default_factory=dict)
    by_result: set[str] = field(default_factory=set)
    by_contact: set[str] = field(default_factory=set)

    @classmethod
    async def load(cls, conn: AsyncConnection, candidates: list[Candidate]) -> _Mine:
        """Read this plugin's sessions that share a code key, result key or contact id with ``candidates``."""
        contacts = [c.contact_id for c in candidates if c.contact_id is not None]
        query = select(t.c.id, t.c.code_key, t.c.result_key, t.c.contact_id, t.c.auth_result,
                       t.c.last_activity).where(or_(t.c.code_key.in_([c.code_key for c in candidates]),
                                                    t.c.result_key.in_([c.result_key for c in candidates]),
                                                    t.c.contact_id.in_(contacts)))
        mine = cls()
        for row in (await conn.execute(query)).all():
            mine.add(_Row(*row))
        return mine

    def add(self, row: _Row) -> None:
        """Know of one more session (one just copied)."""
        self.by_code[row.code_key] = row
        self.by_result.add(row.result_key)
        if row.contact_id is not None:
            self.by_contact.add(row.contact_id)


def _chunks(items: list[Candidate], size: int) -> Iterable[list[Candidate]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
