"""Shared fixtures: keys, databases (a real SQLite file, the real PostgreSQL server), running plugins.

PostgreSQL: tests use a fresh database on ``$CONNECT_PLUGIN_TEST_POSTGRES``
(default ``postgresql://postgres@127.0.0.1:5432/test``'s server).  Where no
server answers, PostgreSQL tests skip, unless ``CI`` or
``CONNECT_PLUGIN_REQUIRE_POSTGRES`` is set: then they fail.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from tornado.ioloop import IOLoop
from tornado.netutil import bind_sockets

from connect_plugin import migrate, tokens
from connect_plugin.app import Runtime
from connect_plugin.config import load_settings
from connect_plugin.model import AuthResult
from connect_plugin.plugins import make_manager
from tests.support import POSTGRES_URL, Api, KeySet, rsa_keyset, write_config

REQUIRE_POSTGRES = bool(os.environ.get("CI") or os.environ.get("CONNECT_PLUGIN_REQUIRE_POSTGRES"))


@pytest.fixture(scope="session")
def keyset() -> KeySet:
    """The plugin's and an authentication plugin's RSA keys."""
    return rsa_keyset()


@pytest.fixture
def mint(keyset: KeySet) -> Callable[..., str]:
    """Make an auth-result token the way an authentication plugin does."""

    def make(status: str = "succes", attributes: dict[str, str] | None = None, session_url: str | None = None,
             now: float | None = None, lifetime: int = 300, keys: KeySet | None = None) -> str:
        ks = keys or keyset
        if attributes is None and status == "succes":
            attributes = {"email": "jane@example.com"}
        result = AuthResult(status=status, attributes=attributes, session_url=session_url)
        return tokens.make_auth_result(result, ks.encrypt, ks.sign, now=now, lifetime=lifetime)

    return make


# --------------------------------------------------------------------------- databases


def _postgres_admin(url: str, sql: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url, timeout=3)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    run_private(run())


def run_private(coro: Any) -> Any:
    """Run a coroutine on a private loop, leaving the current event loop alone."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """URL of a fresh, migrated database on the real PostgreSQL server (dropped afterwards)."""
    name = f"cp_test_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        _postgres_admin(POSTGRES_URL, f'CREATE DATABASE "{name}"')
    except (OSError, ImportError, Exception) as error:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL required (CI) but not reachable at {POSTGRES_URL}: {error!r}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}")
    parts = urlsplit(POSTGRES_URL)
    url = urlunsplit((parts.scheme, parts.netloc, "/" + name, "", ""))
    migrate.upgrade(url)
    yield url
    _postgres_admin(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def empty_postgres(postgres_server: str) -> Iterator[str]:
    """URL of a brand-new, unmigrated database on the real PostgreSQL server."""
    name = f"cp_empty_{os.getpid()}_{secrets.token_hex(3)}"
    _postgres_admin(POSTGRES_URL, f'CREATE DATABASE "{name}"')
    parts = urlsplit(POSTGRES_URL)
    yield urlunsplit((parts.scheme, parts.netloc, "/" + name, "", ""))
    _postgres_admin(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated to head once; tests get copies."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    """A fresh, migrated SQLite file for one test."""
    path = tmp_path / "sessions.sqlite3"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """The test database on the real PostgreSQL server, emptied for this test."""
    _postgres_admin(postgres_server, "DELETE FROM comm_session")
    return postgres_server


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test that uses this runs once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_url")


# --------------------------------------------------------------------------- event loop


@pytest.fixture
def io_loop() -> Iterator[IOLoop]:
    """pytest-tornado's loop, kept current for asyncio across fixtures that run it."""
    loop = IOLoop(make_current=False)
    asyncio.set_event_loop(loop.asyncio_loop)
    yield loop
    asyncio.set_event_loop(None)
    loop.close(all_fds=True)


def run_sync(io_loop: IOLoop, func: Callable[[], Any]) -> Any:
    """``io_loop.run_sync`` for fixtures; leaves the loop current for the test that follows."""
    try:
        return io_loop.run_sync(func, timeout=60)
    finally:
        asyncio.set_event_loop(io_loop.asyncio_loop)


# --------------------------------------------------------------------------- running plugins


@dataclass
class Plugin:
    """A plugin running in the test's event loop."""

    runtime: Runtime
    api: Api
    base_url: str
    config: Path


@pytest.fixture
def plugin_factory(io_loop: IOLoop, tmp_path: Path, keyset: KeySet, database_url: str) -> Iterator[Callable[..., Any]]:
    """``await start(**settings)`` starts a plugin in this loop on a free port, over ``database_url``.

    ``keys=`` replaces the key set; ``hook_plugins=[...]`` registers extra plugin objects.
    """
    started: list[Plugin] = []

    async def start(**settings: Any) -> Plugin:
        keys = settings.pop("keys", keyset)
        extra_plugins = settings.pop("hook_plugins", ())
        sockets = bind_sockets(0, "127.0.0.1")
        port = sockets[0].getsockname()[1]
        base_url = f"http://127.0.0.1:{port}"
        values = {"internal_url": base_url, "database_url": database_url, **settings}
        config = write_config(tmp_path / f"plugin{len(started)}.toml", keys, **values)
        pm = make_manager()
        for extra in extra_plugins:
            pm.register(extra)
        runtime = Runtime(load_settings(config, environ={}), pm)
        await runtime.start(sockets)
        plugin = Plugin(runtime, Api(base_url), base_url, config)
        started.append(plugin)
        return plugin

    yield start
    for plugin in reversed(started):
        run_sync(io_loop, plugin.runtime.stop)


@pytest.fixture
def plugin(io_loop: IOLoop, plugin_factory: Callable[..., Any]) -> Plugin:
    """A plugin with the default test settings."""
    return run_sync(io_loop, plugin_factory)


async def count_sessions(url: str) -> int:
    """How many sessions the database at ``url`` holds, read directly."""
    from sqlalchemy import func, select

    from connect_plugin.stores.engine import make_engine
    from connect_plugin.stores.schema import session_table

    engine = make_engine(url, pool_size=1, timeout=5)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(select(func.count()).select_from(session_table))).scalar_one()
    finally:
        await engine.dispose()


@pytest.fixture
def api(plugin: Plugin) -> Api:
    """A client for ``plugin``."""
    return plugin.api
