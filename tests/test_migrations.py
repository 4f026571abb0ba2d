"""The schema belongs to Alembic: migrations go up and down on both databases and match the code's table."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from connect_plugin import migrate
from connect_plugin.schema_head import shipped_head
from connect_plugin.stores import statements
from connect_plugin.stores.compiled import statements_for
from connect_plugin.stores.engine import make_engine
from connect_plugin.stores.schema import metadata
from tests.support import run_private


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request, tmp_path) -> str:
    """A database with no tables at all."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    return request.getfixturevalue("empty_postgres")


def inspect_database(url: str, func):
    async def run():
        engine = make_engine(url, pool_size=1, timeout=10)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(func)
        finally:
            await engine.dispose()

    return run_private(run())


def tables(url: str) -> set[str]:
    return inspect_database(url, lambda conn: set(inspect(conn).get_table_names()))


def test_migrations_go_from_empty_to_head_and_back_down(empty_database):
    assert tables(empty_database) == set()
    migrate.upgrade(empty_database)
    assert {"comm_session", "alembic_version"} <= tables(empty_database)
    migrate.downgrade(empty_database, "base")
    assert "comm_session" not in tables(empty_database)
    migrate.upgrade(empty_database)
    assert "comm_session" in tables(empty_database)


def test_schema_at_head_matches_the_table_the_code_queries(empty_database):
    migrate.upgrade(empty_database)

    def differences(conn):
        return compare_metadata(MigrationContext.configure(conn), metadata)

    assert inspect_database(empty_database, differences) == []


def test_head_revision_is_the_newest_script():
    assert migrate.head_revision() == "0002"


def test_start_up_reads_the_same_head_as_alembic_without_loading_it():
    assert shipped_head() == migrate.head_revision()


def test_shipped_sql_is_what_sqlalchemy_compiles_from_the_statements_now():
    # After changing a statement: python -m connect_plugin.stores.statements
    assert statements.GENERATED.read_text() == statements.render_module()
    for database in ("sqlite", "postgresql"):
        assert statements_for(database) == statements.compile_all(database)
