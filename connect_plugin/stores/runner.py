"""What the SQL store asks of a database driver: run compiled statements, atomically where asked.

``SqlStore`` speaks to one ``Runner``: ``sqlite_runner.SqliteRunner`` (the
standard library's ``sqlite3`` on threads of its own) or
``postgres_runner.PostgresRunner`` (an asyncpg pool).  A runner turns every
failure that means "the database is away" into ``StoreUnavailable`` and a
unique violation into ``Duplicate``; the store turns those into the errors of
the store contract.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from .compiled import Compiled

#: Where Alembic keeps the revision a database is at.
REVISION_SQL = "SELECT version_num FROM alembic_version"
#: A row as the drivers return it (``sqlite3.Row`` or ``asyncpg.Record``): read it by column name.
Row = Any
#: One statement of an atomic group, with its parameter values.
Step = tuple[Compiled, Mapping[str, Any]]


class Duplicate(Exception):
    """Step ``step`` of a write broke a unique constraint; nothing of the write was kept."""

    def __init__(self, step: int = 0) -> None:
        super().__init__(f"unique constraint broken at step {step}")
        self.step = step


class Missing(Exception):
    """Step ``step`` of an atomic group returned no row, so the whole group was undone."""

    def __init__(self, step: int) -> None:
        super().__init__(f"no row at step {step}")
        self.step = step


class Runner(Protocol):
    """Runs the store's compiled statements on one database."""

    async def open(self) -> None:
        """Get ready (no connection needs to succeed yet)."""

    async def close(self) -> None:
        """Close every connection."""

    async def read(self, stmt: Compiled, values: Mapping[str, Any]) -> Row | None:
        """Run a read; its first row."""

    async def write(self, stmt: Compiled, values: Mapping[str, Any]) -> Row | None:
        """Run one write, committed on its own; its first row (if it returns rows)."""

    async def count(self, stmt: Compiled, values: Mapping[str, Any]) -> int:
        """Run one write, committed on its own; how many rows it changed."""

    async def atomically(self, steps: Sequence[Step]) -> list[Row | None]:
        """Run the steps in one transaction: all kept, or none (``Duplicate``, ``Missing``)."""

    async def revision(self) -> str | None:
        """The Alembic revision of the database (``None`` if never migrated)."""
