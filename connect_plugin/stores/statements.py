"""The SQL store's statements, built once with named parameters and run with values.

Each is the one statement behind a step of the store contract.  SQLAlchemy
builds them and compiles each per database (:func:`compile_all`); the store
hands the SQL text straight to the driver (``sqlite3``, asyncpg),
which costs a fraction of going through SQLAlchemy's execution layer on every
request.  Parameters are named ``p_<name>`` (an ``UPDATE`` may not name one
after a column it sets) and filled in by ``sql.SqlStore`` through :func:`params`.

After changing a statement, run ``python -m connect_plugin.stores.statements``
to write ``_compiled_sql.py`` again (``compiled.py`` says why it exists).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from sqlalchemy import Double, String, bindparam, case, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.sql import Executable

from .compiled import STATEMENT_NAMES, Compiled, CompiledStatements, Database
from .params import SESSION_COLUMNS
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


def compile_statement(stmt: Executable, database: Database, column_keys: list[str] | None = None) -> Compiled:
    """Compile ``stmt`` once for ``database``."""
    dialect = sqlite.dialect(paramstyle="named") if database == "sqlite" else asyncpg_dialect.dialect()
    compiled: Any = cast(Any, stmt).compile(dialect=dialect, column_keys=column_keys)
    defaults = {name: bind.value for bind, name in compiled.bind_names.items()
                if not bind.required and bind.value is not None}
    returns = bool(getattr(stmt, "is_select", False)) or bool(getattr(compiled, "returning", None))
    return Compiled(str(compiled), tuple(compiled.positiontup or ()), defaults, returns)


def compile_all(database: Database) -> CompiledStatements:
    """Every statement of the store, compiled by SQLAlchemy for ``database`` (what ``_compiled_sql`` keeps)."""
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


def render_module() -> str:
    """The text of ``_compiled_sql.py`` for the statements as they are now."""
    out = ["# ruff: noqa: E501",
           '"""Generated by ``python -m connect_plugin.stores.statements``: do not edit (see ``compiled.py``)."""',
           "", "from typing import Any", ""]
    for database, variable in (("sqlite", "SQLITE"), ("postgresql", "POSTGRESQL")):
        compiled = compile_all(database)  # type: ignore[arg-type]
        out.append(f"{variable}: dict[str, Any] = {{")
        for name in STATEMENT_NAMES:
            stmt = getattr(compiled, name)
            if stmt is None:
                out.append(f"    {name!r}: None,")
                continue
            out.append(f"    {name!r}: {{")
            out.append(f"        'sql': {stmt.sql!r},")
            out.append(f"        'names': {list(stmt.names)!r},")
            out.append(f"        'defaults': {dict(stmt.defaults)!r},")
            out.append(f"        'returns_rows': {stmt.returns_rows!r},")
            out.append("    },")
        out.append("}")
        out.append("")
    return "\n".join(out)


GENERATED = Path(__file__).with_name("_compiled_sql.py")


__all__ = ["AWAITS_RESULT", "DELETE_ENDED_WINDOWS", "DELETE_EXPIRED_TOKENS", "DELETE_IDLE", "FIND_BY_CONTACT",
           "INSERT_SESSION", "INSERT_USED_TOKEN", "LINK", "STORE_RESULT", "STORE_RESULT_SPENDING_TOKEN",
           "compile_all", "compile_statement", "count_link_failure", "render_module"]


if __name__ == "__main__":
    GENERATED.write_text(render_module())
    print(f"wrote {GENERATED}")
