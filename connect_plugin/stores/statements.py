"""The SQL store's statements, built once with named parameters and run with values.

Each is the one statement behind a step of the store contract.  SQLAlchemy
builds them and compiles each once per database (:func:`compiled_for`); the
store then hands the SQL text straight to the driver (``sqlite3``, asyncpg),
which costs a fraction of going through SQLAlchemy's execution layer on every
request.  Parameters are named ``p_<name>`` (an ``UPDATE`` may not name one
after a column it sets) and filled in by ``sql.SqlStore`` through :func:`params`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

from sqlalchemy import Double, String, bindparam, case, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.sql import Executable

from ..model import NewSession
from .schema import link_failure_table as f
from .schema import session_table as t
from .schema import used_token_table as u

INSERT_SESSION = insert(t)

INSERT_USED_TOKEN = insert(u).values(replay_key=bindparam("p_replay_key"), expires_at=bindparam("p_replay_expires"))

AWAITS_RESULT = select(t.c.id).where(t.c.result_key == bindparam("p_result_key"), t.c.auth_result.is_(None))

_SET_RESULT = (
    update(t)
    .where(t.c.result_key == bindparam("p_result_key"), t.c.auth_result.is_(None))
    .values(auth_result=bindparam("p_jwe"), feedback=bindparam("p_feedback"), last_activity=bindparam("p_now"))
    .returning(t.c.contact_id)
)

#: SQLite: the result alone (``INSERT_USED_TOKEN`` follows in the same transaction).
STORE_RESULT = _SET_RESULT

#: PostgreSQL: the result and its used token in one statement.  The token's row
#: is inserted only when the result was set; a used token is a unique violation
#: that undoes the whole statement, so nothing is stored.
_stored = _SET_RESULT.cte("stored")
_spent = insert(u).from_select(
    ["replay_key", "expires_at"],
    select(bindparam("p_replay_key", type_=String), bindparam("p_replay_expires", type_=Double)).select_from(_stored),
).cte("spent")
STORE_RESULT_SPENDING_TOKEN = select(_stored.c.contact_id).add_cte(_spent)

#: Link unless the code is another contact's, or the failure window's budget is spent.
_failures_so_far = func.coalesce(
    select(f.c.failures).where(f.c.window_end == bindparam("p_window_end")).scalar_subquery(), 0
)
LINK = (
    update(t)
    .where(
        t.c.code_key == bindparam("p_code_key"),
        or_(t.c.contact_id.is_(None), t.c.contact_id == bindparam("p_contact_id")),
        _failures_so_far < bindparam("p_budget"),
    )
    .values(contact_id=bindparam("p_contact_id"), last_activity=bindparam("p_now"))
    .returning(case((t.c.feedback, t.c.auth_result), else_=None).label("feedback_result"))
)

FIND_BY_CONTACT = select(t.c.purpose, t.c.auth_result, t.c.feedback).where(t.c.contact_id == bindparam("p_contact_id"))


def _count_link_failure(dialect: Any) -> Executable:
    stmt = dialect.insert(f).values(window_end=bindparam("p_window_end"), failures=bindparam("p_one"))
    return stmt.on_conflict_do_update(
        index_elements=[f.c.window_end], set_={"failures": f.c.failures + 1}
    ).returning(f.c.failures)


_COUNT_LINK_FAILURE = {True: _count_link_failure(sqlite), False: _count_link_failure(postgresql)}


def count_link_failure(on_sqlite: bool) -> Executable:
    """Add one failure to a window's count, creating its row; returns the new count."""
    return _COUNT_LINK_FAILURE[on_sqlite]


def _bounded_delete(table: Any, key: Any, condition: Any) -> Executable:
    """``DELETE`` at most ``:limit`` rows matching ``condition`` (both databases take ``IN (... LIMIT)``)."""
    return delete(table).where(key.in_(select(key).where(condition).limit(bindparam("p_limit"))))


DELETE_IDLE = _bounded_delete(t, t.c.id, t.c.last_activity < bindparam("p_before"))
DELETE_EXPIRED_TOKENS = _bounded_delete(u, u.c.replay_key, u.c.expires_at <= bindparam("p_now"))
DELETE_ENDED_WINDOWS = _bounded_delete(f, f.c.window_end, f.c.window_end <= bindparam("p_now"))


def params(**values: Any) -> dict[str, Any]:
    """Values for a statement's parameters: ``params(now=1.0)`` fills ``:p_now``."""
    return {f"p_{name}": value for name, value in values.items()}


def session_values(session: NewSession, now: float) -> dict[str, Any]:
    """The row of a new session."""
    result = session.result
    return {
        "code_key": session.code_key,
        "result_key": session.result_key,
        "purpose": session.purpose,
        "auth_result": result.jwe if result is not None else None,
        "feedback": result.feedback if result is not None else False,
        "contact_id": None,
        "created_at": now,
        "last_activity": now,
    }



Database = Literal["sqlite", "postgresql"]

#: The columns of a new session row (``session_values``), in the order ``INSERT_SESSION`` names them.
SESSION_COLUMNS = ("code_key", "result_key", "purpose", "auth_result", "feedback", "contact_id", "created_at",
                   "last_activity")


@dataclass(frozen=True)
class Compiled:
    """One statement as a driver runs it: its SQL text and how its parameters are passed.

    SQLite takes named parameters (``:p_now``), so ``named`` gives the values
    as a mapping; asyncpg takes ``$1, $2, ...``, so ``args`` orders them by
    ``names``.  ``defaults`` are the values of parameters SQLAlchemy made up
    itself (the ``0`` of a ``coalesce``, say).  ``returns_rows``: the statement
    has a ``RETURNING`` or is a ``SELECT``.
    """

    sql: str
    names: tuple[str, ...]
    defaults: Mapping[str, Any]
    returns_rows: bool

    def named(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters for a named-style driver (sqlite3)."""
        return {**self.defaults, **values} if self.defaults else dict(values)

    def args(self, values: Mapping[str, Any]) -> list[Any]:
        """The parameters for a numbered-style driver (asyncpg), in order."""
        defaults = self.defaults
        return [values[name] if name in values else defaults[name] for name in self.names]


def compile_statement(stmt: Executable, database: Database, column_keys: list[str] | None = None) -> Compiled:
    """Compile ``stmt`` once for ``database``."""
    dialect = sqlite.dialect(paramstyle="named") if database == "sqlite" else asyncpg_dialect.dialect()
    compiled: Any = stmt.compile(dialect=dialect, column_keys=column_keys)
    defaults = {name: bind.value for bind, name in compiled.bind_names.items()
                if not bind.required and bind.value is not None}
    returns = bool(getattr(stmt, "is_select", False)) or bool(getattr(compiled, "returning", None))
    return Compiled(str(compiled), tuple(compiled.positiontup or ()), defaults, returns)


@dataclass(frozen=True)
class CompiledStatements:
    """Every statement of the store, compiled for one database."""

    insert_session: Compiled
    insert_used_token: Compiled
    awaits_result: Compiled
    store_result: Compiled
    store_result_spending_token: Compiled | None  # PostgreSQL only: SQLite has no data-modifying WITH
    link: Compiled
    count_link_failure: Compiled
    find_by_contact: Compiled
    delete_idle: Compiled
    delete_expired_tokens: Compiled
    delete_ended_windows: Compiled
    ping: Compiled


@cache
def compiled_for(database: Database) -> CompiledStatements:
    """The store's statements for ``database``, compiled on first use."""
    def c(stmt: Executable) -> Compiled:
        return compile_statement(stmt, database)

    return CompiledStatements(
        insert_session=compile_statement(INSERT_SESSION, database, list(SESSION_COLUMNS)),
        insert_used_token=c(INSERT_USED_TOKEN),
        awaits_result=c(AWAITS_RESULT),
        store_result=c(STORE_RESULT),
        store_result_spending_token=None if database == "sqlite" else c(STORE_RESULT_SPENDING_TOKEN),
        link=c(LINK),
        count_link_failure=c(count_link_failure(database == "sqlite")),
        find_by_contact=c(FIND_BY_CONTACT),
        delete_idle=c(DELETE_IDLE),
        delete_expired_tokens=c(DELETE_EXPIRED_TOKENS),
        delete_ended_windows=c(DELETE_ENDED_WINDOWS),
        ping=Compiled("SELECT 1", (), {}, True),
    )


__all__ = ["AWAITS_RESULT", "DELETE_ENDED_WINDOWS", "DELETE_EXPIRED_TOKENS", "DELETE_IDLE", "FIND_BY_CONTACT",
           "INSERT_SESSION", "INSERT_USED_TOKEN", "LINK", "STORE_RESULT", "STORE_RESULT_SPENDING_TOKEN",
           "Compiled", "CompiledStatements", "compile_statement", "compiled_for", "count_link_failure", "params",
           "session_values"]
