"""The SQL store's statements, built once with named parameters and run with values.

Each is the one statement behind a step of the store contract; SQLAlchemy
compiles each once per dialect and caches it.  ``:name`` parameters are
filled in by ``sql.SqlStore``.
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

INSERT_USED_TOKEN = insert(u).values(replay_key=bindparam("replay_key"), expires_at=bindparam("replay_expires"))

AWAITS_RESULT = select(t.c.id).where(t.c.result_key == bindparam("result_key"), t.c.auth_result.is_(None))

_SET_RESULT = (
    update(t)
    .where(t.c.result_key == bindparam("result_key"), t.c.auth_result.is_(None))
    .values(auth_result=bindparam("jwe"), feedback=bindparam("feedback"), last_activity=bindparam("now"))
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
    select(bindparam("replay_key", type_=String), bindparam("replay_expires", type_=Double)).select_from(_stored),
).cte("spent")
STORE_RESULT_SPENDING_TOKEN = select(_stored.c.contact_id).add_cte(_spent)

#: Link unless the code is another contact's, or the failure window's budget is spent.
_failures_so_far = func.coalesce(
    select(f.c.failures).where(f.c.window_end == bindparam("window_end")).scalar_subquery(), 0
)
LINK = (
    update(t)
    .where(
        t.c.code_key == bindparam("code_key"),
        or_(t.c.contact_id.is_(None), t.c.contact_id == bindparam("contact_id")),
        _failures_so_far < bindparam("budget"),
    )
    .values(contact_id=bindparam("contact_id"), last_activity=bindparam("now"))
    .returning(case((t.c.feedback, t.c.auth_result), else_=None).label("feedback_result"))
)

FIND_BY_CONTACT = select(t.c.purpose, t.c.auth_result, t.c.feedback).where(t.c.contact_id == bindparam("contact_id"))


def _count_link_failure(dialect: Any) -> Executable:
    stmt = dialect.insert(f).values(window_end=bindparam("window_end"), failures=1)
    return stmt.on_conflict_do_update(
        index_elements=[f.c.window_end], set_={"failures": f.c.failures + 1}
    ).returning(f.c.failures)


_COUNT_LINK_FAILURE = {True: _count_link_failure(sqlite), False: _count_link_failure(postgresql)}


def count_link_failure(on_sqlite: bool) -> Executable:
    """Add one failure to a window's count, creating its row; returns the new count."""
    return _COUNT_LINK_FAILURE[on_sqlite]


def _bounded_delete(table: Any, key: Any, condition: Any) -> Executable:
    """``DELETE`` at most ``:limit`` rows matching ``condition`` (both databases take ``IN (... LIMIT)``)."""
    return delete(table).where(key.in_(select(key).where(condition).limit(bindparam("limit"))))


DELETE_IDLE = _bounded_delete(t, t.c.id, t.c.last_activity < bindparam("before"))
DELETE_EXPIRED_TOKENS = _bounded_delete(u, u.c.replay_key, u.c.expires_at <= bindparam("now"))
DELETE_ENDED_WINDOWS = _bounded_delete(f, f.c.window_end, f.c.window_end <= bindparam("now"))


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
           "count_link_failure", "session_values"]
