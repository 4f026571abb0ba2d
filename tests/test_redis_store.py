"""The Redis store (``plugins/redis-store``): the contract kit, its keys, their expiry, and its settings.

Against the real Redis server (``tests/fixtures/redis.py``), under a key
prefix of each test's own.
"""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from connect_plugin.api import ConfigError, FailureWindow, LocalNotifier, NewResult, NewSession
from connect_plugin.config import load_settings
from connect_plugin.plugins import build_parts, make_manager
from connect_plugin.stores.sql import SqlStore
from connect_plugin.testing import StoreContract
from tests.support import dtmf_of, free_port, write_config

redis_store = pytest.importorskip("connect_plugin_redis_store")


class TestRedisStore(StoreContract):
    """Sessions expire by Redis TTL: the kit reads their expiry with ``PEXPIRETIME``."""

    expires_by_itself = True

    @pytest.fixture
    def store_factory(self, redis_server, redis_prefix):
        return lambda: redis_store.RedisStore(redis_server, prefix=redis_prefix, session_ttl=3600, timeout=5.0)

    @pytest.fixture
    def unreachable_store_factory(self):
        return lambda: redis_store.RedisStore(f"redis://127.0.0.1:{free_port()}/0", prefix="x:", session_ttl=60)

    async def session_expiry(self, store, session):
        return await store.expires_at(session.result_key)


@pytest.fixture
def database_url(redis_server):
    """``plugin_factory`` over Redis (each test passes its key prefix in ``plugins``)."""
    return redis_server


async def keys_and_values(url: str, prefix: str) -> dict[str, object]:
    """Every key under ``prefix`` with its value, read directly."""
    from redis.asyncio import Redis

    client = Redis.from_url(url, decode_responses=True)
    try:
        out: dict[str, object] = {}
        async for key in client.scan_iter(match=f"{prefix}*"):
            kind = await client.type(key)
            out[key] = await (client.hgetall(key) if kind == "hash" else client.get(key))
        return out
    finally:
        await client.aclose()


def parts_for(tmp_path, keyset, **settings):
    config = write_config(tmp_path / "p.toml", keyset, **settings)
    return build_parts(load_settings(config, environ={}), make_manager())


# -- turned on by a redis:// database_url, and only by it

def test_a_redis_url_selects_the_redis_store_and_notifier_under_the_configured_prefix(tmp_path, keyset):
    parts = parts_for(tmp_path, keyset, database_url="redis://127.0.0.1:6379/3",
                      plugins={"redis_store": {"key_prefix": "tenant-a:"}})
    assert isinstance(parts.store, redis_store.RedisStore)
    assert isinstance(parts.notifier, redis_store.RedisNotifier)
    assert parts.store.keys.prefix == "tenant-a:"
    assert parts.notifier.channel == "tenant-a:events"
    assert "6379" not in repr(parts.store)  # a URL may carry a password: never in a repr


def test_without_a_table_the_prefix_is_the_default(tmp_path, keyset):
    parts = parts_for(tmp_path, keyset, database_url="rediss://cache.internal:6380/0")
    assert parts.store.keys.prefix == "connect-plugin:"


def test_other_databases_keep_the_built_in_parts(tmp_path, keyset, sqlite_url):
    parts = parts_for(tmp_path, keyset, database_url=sqlite_url)
    assert isinstance(parts.store, SqlStore)
    assert isinstance(parts.notifier, LocalNotifier)


@pytest.mark.parametrize(("table", "key"), [
    ({"key_prefix": "has space"}, "plugins.redis_store.key_prefix"),
    ({"key_prefix": ""}, "plugins.redis_store.key_prefix"),
    ({"key_prefix": 7}, "plugins.redis_store.key_prefix"),
    ({"prefix": "x:"}, "plugins.redis_store.prefix"),
])
def test_bad_redis_settings_stop_start_up_naming_the_key(tmp_path, keyset, table, key):
    with pytest.raises(ConfigError) as caught:
        parts_for(tmp_path, keyset, database_url="redis://127.0.0.1:6379/0", plugins={"redis_store": table})
    assert caught.value.key == key


def test_a_redis_table_without_a_redis_url_is_a_config_error(tmp_path, keyset, sqlite_url):
    with pytest.raises(ConfigError) as caught:
        parts_for(tmp_path, keyset, database_url=sqlite_url, plugins={"redis_store": {"key_prefix": "a:"}})
    assert caught.value.key == "plugins.redis_store"


# -- what Redis holds, and for how long

@pytest.mark.gen_test(timeout=30)
async def test_redis_holds_no_code_and_no_attribute_in_clear(plugin_factory, redis_server, redis_prefix, mint):
    plugin = await plugin_factory(plugins={"redis_store": {"key_prefix": redis_prefix}})
    started = (await plugin.api.start("report_move")).json
    token = mint(attributes={"email": "jane@example.com", "fullname": "Jane Roe"},
                 session_url="https://auth.example.nl/session/7")
    assert (await plugin.api.post_result(started["attr_url"], token)).status == 200
    contact = "7e57c0de-0000-4000-8000-000000000001"
    dtmf = dtmf_of(started)
    assert (await plugin.api.link(dtmf, contact)).status == 200
    assert (await plugin.api.info(contact)).json["auth_result"]["attributes"]["fullname"] == "Jane Roe"
    held = await keys_and_values(redis_server, redis_prefix)
    text = repr(held)
    result_code = started["attr_url"].rsplit("/", 1)[1]
    for secret in (dtmf, result_code, "jane@example.com", "Jane Roe", "auth.example.nl"):
        assert secret not in text
    session = next(value for key, value in held.items() if key.startswith(f"{redis_prefix}session:"))
    assert session["result"] == token  # the JWE exactly as received
    assert session["purpose"] == "report_move"
    assert session["contact"] == contact


@pytest.mark.gen_test(timeout=30)
async def test_replay_keys_and_failure_counts_expire_when_they_end(redis_server, redis_prefix):
    from redis.asyncio import Redis

    store = redis_store.RedisStore(redis_server, prefix=redis_prefix, session_ttl=600)
    await store.open()
    client = Redis.from_url(redis_server, decode_responses=True)
    try:
        now = time.time()
        result = NewResult("eyJ.jwe", "ab" * 32, now + 420.5, False)
        await store.create(NewSession("c" * 64, "r" * 64, "report_move", result), now)
        assert await client.pexpiretime(store.keys.token(result.replay_key)) == math.ceil((now + 420.5) * 1000)
        assert await store.expires_at("r" * 64) == pytest.approx(now + 600, abs=0.002)
        for name in (store.keys.session("r" * 64), store.keys.code("c" * 64)):
            assert await client.pexpiretime(name) == math.ceil((now + 600) * 1000)
        window_end = int(now) + 60
        await store.count_link_failure(window_end)
        grace = int(redis_store.store.WINDOW_GRACE)
        assert await client.pexpiretime(store.keys.failures(window_end)) == (window_end + grace) * 1000
    finally:
        await client.aclose()
        await store.close()


@pytest.mark.gen_test(timeout=30)
async def test_an_idle_session_is_gone_when_its_ttl_runs_out(redis_server, redis_prefix):
    store = redis_store.RedisStore(redis_server, prefix=redis_prefix, session_ttl=1)
    await store.open()
    try:
        session = NewSession("c" * 64, "r" * 64, "report_move")
        await store.create(session, time.time())
        await store.link(session.code_key, "c0ffee00-0000-4000-8000-0000000000aa", time.time(),
                         FailureWindow(int(time.time()) + 3600, 10))
        assert await store.find_by_contact("c0ffee00-0000-4000-8000-0000000000aa") is not None
        deadline = time.monotonic() + 20
        while await store.awaits_result(session.result_key) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert await store.awaits_result(session.result_key) is False
        assert await store.find_by_contact("c0ffee00-0000-4000-8000-0000000000aa") is None
        assert await keys_and_values(redis_server, redis_prefix) == {}, "the code and contact keys went with it"
        await store.create(session, time.time())  # its code is free again
    finally:
        await store.close()


@pytest.mark.gen_test(timeout=30)
async def test_two_prefixes_on_one_server_never_see_each_other(redis_server, redis_prefix):
    mine = redis_store.RedisStore(redis_server, prefix=redis_prefix + "a:", session_ttl=60)
    theirs = redis_store.RedisStore(redis_server, prefix=redis_prefix + "b:", session_ttl=60)
    for store in (mine, theirs):
        await store.open()
    try:
        now = time.time()
        await mine.create(NewSession("c" * 64, "r" * 64, "mine"), now)
        await theirs.create(NewSession("c" * 64, "r" * 64, "theirs"), now)  # no clash across prefixes
        await theirs.link("c" * 64, "c0ffee00-0000-4000-8000-0000000000bb", now, FailureWindow(int(now) + 60, 1))
        assert await mine.find_by_contact("c0ffee00-0000-4000-8000-0000000000bb") is None
        assert (await theirs.find_by_contact("c0ffee00-0000-4000-8000-0000000000bb")).purpose == "theirs"
    finally:
        for store in (mine, theirs):
            await store.close()


@pytest.mark.gen_test(timeout=60)
async def test_the_whole_flow_and_the_link_budget_over_redis(plugin_factory, redis_prefix, mint):
    plugin = await plugin_factory(plugins={"redis_store": {"key_prefix": redis_prefix}}, link_failure_budget=2)
    api = plugin.api
    started = (await api.start("report_move")).json
    token = mint()
    assert (await api.post_result(started["attr_url"], token)).status == 200
    assert (await api.post_result(started["attr_url"], mint())).status == 404  # once
    other = (await api.start("report_move")).json
    assert "(replayed)" in (await api.post_result(other["attr_url"], token)).json["detail"]
    contact = "c0ffee00-0000-4000-8000-000000000001"
    assert (await api.link(dtmf_of(started), contact)).status == 200
    assert (await api.info(contact)).json["auth_result"]["status"] == "succes"
    right = dtmf_of(other)
    wrong = "".join("1" if c == "0" else "0" for c in right)
    for _ in range(2):
        assert (await api.link(wrong, "c0ffee00-0000-4000-8000-000000000002")).status == 404
    assert (await api.link(right, "c0ffee00-0000-4000-8000-000000000002")).status == 429
    assert (await api.call("GET", "/clean_db")).status == 200
    assert (await api.call("GET", "/health")).json == {"status": "ok", "store": "up"}


def test_migrate_on_a_redis_store_says_there_is_nothing_to_migrate(tmp_path, keyset):
    import subprocess

    from tests.support import cli_command, write_config

    config = write_config(tmp_path / "c.toml", keyset, database_url="redis://127.0.0.1:6379/0")
    done = subprocess.run([*cli_command(), "migrate", "--config", str(config)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "nothing to migrate: a redis: store is a plugin's and keeps no SQL schema"
