"""Running concerns: the link token, code exhaustion, idle cleanup, health, storage at rest."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from connect_plugin.hookspecs import hookimpl
from tests.support import count_sessions, dtmf_of, free_port

CONTACT = "7d1e3c5a-2b4f-4a6e-8c0d-9e8f7a6b5c4d"
LINK_TOKEN = "s3cret-shared-with-the-lambda-0123"


@pytest.mark.gen_test
async def test_link_without_bearer_token_is_401_when_one_is_configured(plugin_factory):
    plugin = await plugin_factory(link_phone_token=LINK_TOKEN)
    dtmf = dtmf_of(await plugin.api.start("report_move"))
    response = await plugin.api.link(dtmf, CONTACT)
    assert response.status == 401
    assert response.json["error"] == "Unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert LINK_TOKEN not in response.body.decode()


@pytest.mark.gen_test
async def test_link_with_wrong_bearer_token_is_401_and_links_nothing(plugin_factory):
    plugin = await plugin_factory(link_phone_token=LINK_TOKEN)
    dtmf = dtmf_of(await plugin.api.start("report_move"))
    assert (await plugin.api.link(dtmf, CONTACT, token=LINK_TOKEN[:-1] + "X")).status == 401
    assert (await plugin.api.info(CONTACT)).status == 404


@pytest.mark.gen_test
async def test_link_with_right_bearer_token_is_200(plugin_factory):
    plugin = await plugin_factory(link_phone_token=LINK_TOKEN)
    dtmf = dtmf_of(await plugin.api.start("report_move"))
    assert (await plugin.api.link(dtmf, CONTACT, token=LINK_TOKEN)).status == 200


class SameCodeEveryTime:
    """A code generator plugin that can only ever make one code."""

    @hookimpl
    def connect_plugin_code_generator(self, settings):
        return self

    def generate(self) -> str:
        return "4242424242"


@pytest.mark.gen_test
async def test_exhausted_code_space_is_503_json_not_a_hang(plugin_factory, database_url):
    plugin = await plugin_factory(hook_plugins=[SameCodeEveryTime()], code_attempts=5)
    assert (await plugin.api.start("report_move")).status == 200
    response = await plugin.api.start("report_move")
    assert response.status == 503
    assert response.json["error"] == "CodesExhausted"
    assert "5 attempts" in response.json["detail"]
    assert await count_sessions(database_url) == 1


@pytest.mark.gen_test
async def test_clean_db_deletes_idle_sessions_only(plugin_factory, database_url):
    plugin = await plugin_factory(session_ttl=3600)
    service = plugin.runtime.service
    real = service.clock
    service.clock = lambda: real() - 7200  # two hours ago
    old = dtmf_of(await plugin.api.start("report_move"))
    service.clock = real
    fresh = dtmf_of(await plugin.api.start("report_move"))
    response = await plugin.api.call("GET", "/clean_db")
    assert response.status == 200
    assert await count_sessions(database_url) == 1
    assert (await plugin.api.link(old, CONTACT)).status == 404
    assert (await plugin.api.link(fresh, CONTACT)).status == 200


@pytest.mark.gen_test
async def test_linking_counts_as_activity(plugin_factory, database_url):
    plugin = await plugin_factory(session_ttl=3600)
    service = plugin.runtime.service
    real = service.clock
    service.clock = lambda: real() - 7200
    dtmf = dtmf_of(await plugin.api.start("report_move"))
    service.clock = real
    await plugin.api.link(dtmf, CONTACT)  # activity now
    await plugin.api.call("GET", "/clean_db")
    assert (await plugin.api.info(CONTACT)).status == 200


@pytest.mark.gen_test(timeout=20)
async def test_periodic_cleanup_runs_inside_the_server(plugin_factory, database_url):
    plugin = await plugin_factory(session_ttl=1, cleanup_interval=1)
    await plugin.api.start("report_move")
    assert await count_sessions(database_url) == 1
    for _ in range(60):
        await asyncio.sleep(0.1)
        if await count_sessions(database_url) == 0:
            break
    assert await count_sessions(database_url) == 0


@pytest.mark.gen_test
async def test_health_is_200_when_the_store_answers(api):
    response = await api.call("GET", "/health")
    assert response.status == 200
    assert response.json == {"status": "ok", "store": "up"}


@pytest.mark.gen_test
async def test_store_that_does_not_answer_gives_503_json_quickly(io_loop, tmp_path, keyset):
    from connect_plugin.app import Runtime
    from connect_plugin.config import load_settings
    from tests.support import Api, write_config

    nothing_there = f"postgresql://postgres@127.0.0.1:{free_port()}/test"
    config = write_config(tmp_path / "down.toml", keyset, database_url=nothing_there, port=0)
    runtime = Runtime(load_settings(config, environ={}))
    await runtime.start()  # starts anyway, serving 503 until the database answers
    try:
        api = Api(f"http://127.0.0.1:{runtime.port}")
        loop = asyncio.get_running_loop()
        began = loop.time()
        health = await api.call("GET", "/health")
        started = await api.start("report_move")
        elapsed = loop.time() - began
        assert health.status == 503
        assert health.json["store"] == "down"
        assert started.status == 503
        assert started.json["error"] == "StoreUnavailable"
        assert elapsed < 8, "a down store must be reported quickly, not hang (expected: well under 1 s)"
    finally:
        await runtime.stop()


@pytest.mark.gen_test
async def test_sqlite_files_hold_no_attribute_value_in_clear(plugin_factory, sqlite_url, mint):
    plugin = await plugin_factory(database_url=sqlite_url)
    secret_value = "Zeldzame-Achternaam-8431"
    started = (await plugin.api.start("report_move")).json
    await plugin.api.post_result(started["attr_url"], mint(attributes={"fullname": secret_value}))
    await plugin.api.link(dtmf_of(started), CONTACT)
    assert (await plugin.api.info(CONTACT)).json["auth_result"]["attributes"]["fullname"] == secret_value
    db = Path(sqlite_url.split(":///", 1)[1])
    files = [p for p in db.parent.iterdir() if p.name.startswith(db.name)]
    assert any(p.name.endswith("-wal") for p in files)
    for path in files:
        data = path.read_bytes()
        assert secret_value.encode() not in data, path.name
        assert started["attr_url"].rsplit("/", 1)[1].encode() not in data, "result codes are stored hashed"


@pytest.mark.gen_test
async def test_postgres_rows_hold_the_jwe_as_received_not_attributes(plugin_factory, postgres_url, mint):
    import asyncpg

    plugin = await plugin_factory(database_url=postgres_url)
    secret_value = "Zeldzame-Achternaam-8431"
    token = mint(attributes={"fullname": secret_value})
    started = (await plugin.api.start("report_move")).json
    await plugin.api.post_result(started["attr_url"], token)
    conn = await asyncpg.connect(postgres_url.replace("postgresql://", "postgres://"))
    try:
        rows = await conn.fetch("SELECT * FROM comm_session")
    finally:
        await conn.close()
    assert len(rows) == 1
    assert rows[0]["auth_result"] == token
    assert all(secret_value not in str(value) for value in rows[0].values())
