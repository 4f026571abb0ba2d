"""Alembic environment: runs migrations over the plugin's async engine.

Invoked through ``connect-plugin migrate`` (see ``connect_plugin.migrate``),
which passes the database URL in ``config.attributes["url"]``; ``alembic``
on the command line works too with ``-x url=...``.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from connect_plugin.stores.engine import make_engine
from connect_plugin.stores.schema import metadata

config = context.config


def _url() -> str:
    url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("no database URL: use connect-plugin migrate, or alembic -x url=...")
    return url


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = make_engine(_url(), pool_size=1, timeout=30.0)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def run() -> None:
    """Run the migrations online (offline SQL generation is not supported)."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        # A private loop: callers may have an event loop of their own set as current.
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(_run_async())
        finally:
            loop.close()


run()
