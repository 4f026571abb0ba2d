"""The store's statements as the drivers run them: SQL text and parameter order, no SQLAlchemy.

``statements.py`` builds the statements with SQLAlchemy and compiles them for
each database; the result is kept in ``_compiled_sql.py`` (generated: run
``python -m connect_plugin.stores.statements`` after changing a statement; a
test fails while the two disagree).  So a start of ``connect-plugin serve``
loads neither SQLAlchemy nor Alembic, which would cost more than the rest of
start-up together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cache
from typing import Any, Literal

Database = Literal["sqlite", "postgresql"]


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


STATEMENT_NAMES = tuple(field.name for field in fields(CompiledStatements))


@cache
def statements_for(database: Database) -> CompiledStatements:
    """The store's statements for ``database``, as shipped in ``_compiled_sql``."""
    from . import _compiled_sql

    table = _compiled_sql.SQLITE if database == "sqlite" else _compiled_sql.POSTGRESQL
    found: dict[str, Any] = {
        name: None if table.get(name) is None else Compiled(table[name]["sql"], tuple(table[name]["names"]),
                                                            table[name]["defaults"], table[name]["returns_rows"])
        for name in STATEMENT_NAMES
    }
    return CompiledStatements(**found)
