"""The SQL store's statements, built once with named parameters and run with values.

Each is the one statement behind a step of the store contract; SQLAlchemy
compiles each once per dialect and caches it.  Parameters are named
``p_<name>`` (an ``UPDATE`` may not name one after a column it sets) and
filled in by ``sql.SqlStore`` through :func:`params`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Double, String, bindparam, case, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
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


__all__ = ["AWAITS_RESULT", "DELETE_ENDED_WINDOWS", "DELETE_EXPIRED_TOKENS", "DELETE_IDLE", "FIND_BY_CONTACT",
           "INSERT_SESSION", "INSERT_USED_TOKEN", "LINK", "STORE_RESULT", "STORE_RESULT_SPENDING_TOKEN",
           "count_link_failure", "params", "session_values"]
