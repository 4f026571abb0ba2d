"""Revision 0002 on a database with live sessions: stored codes become keys, and their callers still link."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import subprocess
import time

import pytest
from sqlalchemy import insert, text

from connect_plugin import codes, migrate
from connect_plugin.config import load_settings
from connect_plugin.stores.engine import make_engine
from tests.support import Api, PluginProcess, cli_command, run_private, write_config

WAITING, WITH_RESULT = "4815162342", "2718281828"
RESULT_KEY = hashlib.sha256(b"result-code").hexdigest()


@pytest.fixture(params=["sqlite", "postgres"])
def old_database(request, tmp_path, mint) -> str:
    """A database at revision 0001 holding two live sessions, as the previous version stored them."""
    url = (f"sqlite:///{tmp_path / 'old.sqlite3'}" if request.param == "sqlite"
           else request.getfixturevalue("empty_postgres"))
    migrate.upgrade(url, "0001")
    old = sa_old_table()
    now = time.time()
    rows = [
        {"dtmf": WAITING, "result_key": RESULT_KEY, "purpose": "report_move", "auth_result": None},
        {"dtmf": WITH_RESULT, "result_key": hashlib.sha256(b"other").hexdigest(), "purpose": "request_permit",
         "auth_result": mint(attributes={"fullname": "Jan Jansen"})},
    ]

    async def fill() -> None:
        engine = make_engine(url, pool_size=1, timeout=5)
        try:
            async with engine.begin() as conn:
                await conn.execute(insert(old), [{**r, "created_at": now, "last_activity": now} for r in rows])
        finally:
            await engine.dispose()

    run_private(fill())
    return url


def sa_old_table():
    from sqlalchemy import Column, Double, Integer, MetaData, String, Table, Text

    return Table("comm_session", MetaData(), Column("id", Integer, primary_key=True), Column("dtmf", String(64)),
                 Column("result_key", String(64)), Column("purpose", Text), Column("contact_id", String(256)),
                 Column("auth_result", Text), Column("created_at", Double), Column("last_activity", Double))


async def aread(url: str, sql: str) -> list[tuple]:
    engine = make_engine(url, pool_size=1, timeout=5)
    try:
        async with engine.connect() as conn:
            return [tuple(r) for r in (await conn.execute(text(sql))).all()]
    finally:
        await engine.dispose()


def read(url: str, sql: str) -> list[tuple]:
    return run_private(aread(url, sql))


def revision(url: str) -> str:
    return read(url, "SELECT version_num FROM alembic_version")[0][0]


def test_plain_alembic_refuses_to_turn_codes_into_keys_without_the_secret(old_database):
    with pytest.raises(RuntimeError, match="connect-plugin migrate"):
        migrate.upgrade(old_database)  # as `alembic upgrade head` does it: no code secret
    assert revision(old_database) == "0001"
    assert {row[0] for row in read(old_database, "SELECT dtmf FROM comm_session")} == {WAITING, WITH_RESULT}


@pytest.mark.gen_test(timeout=120)
async def test_callers_who_got_a_code_before_connect_plugin_migrate_still_link_after_it(
        old_database, tmp_path, keyset):
    config = write_config(tmp_path / "c.toml", keyset, database_url=old_database)
    migrated = await asyncio.to_thread(subprocess.run, [*cli_command(), "migrate", "--config", str(config)],
                                       capture_output=True, text=True, timeout=120, check=False)
    assert migrated.returncode == 0, migrated.stderr
    assert await aread(old_database, "SELECT version_num FROM alembic_version") == [(migrate.head_revision(),)]
    secret = codes.code_secret_for(load_settings(config, environ={}))
    stored = await aread(old_database, "SELECT code_key, feedback FROM comm_session ORDER BY id")
    assert [row[0] for row in stored] == [hmac.new(secret, c.encode(), hashlib.sha256).hexdigest()
                                          for c in (WAITING, WITH_RESULT)]
    assert [bool(row[1]) for row in stored] == [False, True]  # a stored result may want feedback: decrypt to see

    server = PluginProcess(config, log_dir=tmp_path).start()
    try:
        api = Api(server.base_url)
        assert (await api.link(WAITING, "m1gra7ed-0000-4000-8000-000000000001")).status == 200
        assert (await api.link(WITH_RESULT, "m1gra7ed-0000-4000-8000-000000000002")).status == 200
        info = (await api.info("m1gra7ed-0000-4000-8000-000000000002")).json
        assert info["auth_result"]["attributes"] == {"fullname": "Jan Jansen"}
    finally:
        server.terminate()


@pytest.mark.gen_test(timeout=120)
async def test_serve_on_an_old_sqlite_file_upgrades_it_and_the_old_code_links(tmp_path, keyset):
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    await asyncio.to_thread(migrate.upgrade, url, "0001")
    now = time.time()

    async def fill() -> None:
        engine = make_engine(url, pool_size=1, timeout=5)
        try:
            async with engine.begin() as conn:
                await conn.execute(insert(sa_old_table()), [{"dtmf": WAITING, "result_key": RESULT_KEY,
                                                             "purpose": "report_move", "created_at": now,
                                                             "last_activity": now}])
        finally:
            await engine.dispose()

    await fill()
    server = PluginProcess(write_config(tmp_path / "c.toml", keyset, database_url=url), log_dir=tmp_path).start()
    try:
        assert (await Api(server.base_url).link(WAITING, "m1gra7ed-0000-4000-8000-000000000003")).status == 200
    finally:
        server.terminate()
    assert not [row for row in await aread(url, "SELECT * FROM comm_session") if WAITING in map(str, row)]


def test_going_down_from_0002_forgets_sessions_whose_codes_cannot_be_restored(old_database):
    migrate.upgrade(old_database, code_secret=b"s" * 32)
    migrate.downgrade(old_database, "0001")
    assert revision(old_database) == "0001"
    assert read(old_database, "SELECT count(*) FROM comm_session") == [(0,)]
    assert read(old_database, "SELECT dtmf FROM comm_session") == []
