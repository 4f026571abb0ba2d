"""Several plugin instances on one store: hand-offs, races, outages, crashes.

Instances are real ``connect-plugin serve`` processes on one PostgreSQL
database, one SQLite file or one Redis server (the redis-store plugin),
talked to over HTTP: the Redis store passes every race the built-in one does.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import (
    Api,
    PluginProcess,
    count_sessions,
    dtmf_of,
    two_instances_on,
    write_config,
)


@pytest.fixture(params=["sqlite", "postgres", "redis"])
def shared_store(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The settings of a store several instances share: SQLite, PostgreSQL, Redis."""
    if request.param == "redis":
        pytest.importorskip("connect_plugin_redis_store")
        return request.getfixturevalue("redis_settings")
    return {"database_url": request.getfixturevalue(f"{request.param}_url")}


@pytest.fixture
def two_instances(tmp_path, keyset, shared_store) -> Iterator[tuple[Api, Api]]:
    """Two plugin processes on the same store."""
    with two_instances_on(tmp_path, keyset, shared_store) as apis:
        yield apis


def on_redis(settings: dict[str, Any]) -> bool:
    return "redis_store" in settings.get("plugins", {})


async def redis_keys(settings: dict[str, Any], pattern: str) -> int:
    """How many keys under the test's prefix match ``pattern``."""
    from redis.asyncio import Redis

    client = Redis.from_url(settings["database_url"])
    prefix = settings["plugins"]["redis_store"]["key_prefix"]
    try:
        return len([key async for key in client.scan_iter(match=f"{prefix}{pattern}", count=1000)])
    finally:
        await client.aclose()


async def stored_sessions(settings: dict[str, Any]) -> int:
    """How many sessions the store holds (rows, or Redis keys)."""
    if on_redis(settings):
        return await redis_keys(settings, "session:*")
    return await count_sessions(settings["database_url"])


@pytest.mark.gen_test(timeout=60)
async def test_session_started_on_one_instance_is_finished_on_the_other(two_instances, mint):
    a, b = two_instances
    started = (await a.start("request_permit")).json
    assert (await b.post_result(started["attr_url"], mint())).status == 200
    assert (await b.post_result(started["attr_url"], mint())).status == 404  # once, whichever instance
    contact = "a1b2c3d4-0000-4000-8000-00000000000a"
    assert (await a.link(dtmf_of(started), contact)).status == 200
    info = await b.info(contact)
    assert info.json["purpose"] == "request_permit"
    assert info.json["auth_result"]["status"] == "succes"


@pytest.mark.gen_test(timeout=120)
async def test_codes_handed_out_by_two_instances_never_collide(two_instances, shared_store):
    a, b = two_instances
    # 10 000 possible codes; 600 sessions make collisions between the
    # instances certain (about 18 expected), so the unique constraint and the
    # retry are what keep the codes distinct.
    async def burst(api: Api, n: int) -> list[str]:
        out = []
        for _ in range(n):
            response = await api.start("report_move")
            assert response.status == 200, response.body
            out.append(dtmf_of(response))
        return out

    results = await asyncio.gather(*(burst(api, 60) for api in (a, b) for _ in range(5)))
    codes = [code for batch in results for code in batch]
    assert len(codes) == 600
    assert all(code.startswith("424242") for code in codes)  # the few-codes plugin made them
    assert len(set(codes)) == 600
    assert await stored_sessions(shared_store) == 600
    if on_redis(shared_store):
        assert await redis_keys(shared_store, "code:*") == 600  # one code key per session, none left over


@pytest.mark.gen_test(timeout=120)
async def test_hundred_concurrent_links_of_one_code_over_two_instances_link_exactly_one(two_instances):
    a, b = two_instances
    dtmf = dtmf_of(await a.start("report_move"))
    contacts = [f"00000000-0000-4000-8000-{i:012d}" for i in range(100)]
    responses = await asyncio.gather(*((a if i % 2 else b).link(dtmf, c) for i, c in enumerate(contacts)))
    statuses = Counter(r.status for r in responses)
    assert statuses == Counter({200: 1, 404: 99})
    winner = contacts[next(i for i, r in enumerate(responses) if r.status == 200)]
    found = [c for c in contacts if (await a.info(c)).status == 200]
    assert found == [winner]


@pytest.mark.gen_test(timeout=120)
async def test_fifty_concurrent_result_posts_for_one_session_store_exactly_one(two_instances, mint):
    a, b = two_instances
    started = (await a.start("report_move")).json
    tokens = [mint(attributes={"email": f"poster{i}@example.com"}) for i in range(50)]
    responses = await asyncio.gather(
        *((a if i % 2 else b).post_result(started["attr_url"], t) for i, t in enumerate(tokens))
    )
    statuses = Counter(r.status for r in responses)
    assert statuses == Counter({200: 1, 404: 49})
    winner = next(i for i, r in enumerate(responses) if r.status == 200)
    contact = "5e5e5e5e-0000-4000-8000-000000000050"
    await a.link(dtmf_of(started), contact)
    shown = (await b.info(contact)).json["auth_result"]["attributes"]["email"]
    assert shown == f"poster{winner}@example.com"


@pytest.mark.gen_test(timeout=180)
async def test_sigkill_under_load_loses_no_session_that_was_answered(tmp_path, keyset, database_url):
    config = write_config(tmp_path / "kill.toml", keyset, database_url=database_url, database_timeout=5.0)
    server = PluginProcess(config, log_dir=tmp_path).start()
    api = Api(server.base_url)
    answered: list[str] = []

    async def client() -> None:
        while True:
            try:
                response = await api.start("report_move")
            except ConnectionError:
                return  # the process is gone
            if response.status == 200:
                answered.append(dtmf_of(response))

    clients = [asyncio.ensure_future(client()) for _ in range(8)]
    while len(answered) < 150:
        await asyncio.sleep(0.01)
    os.kill(server.proc.pid, signal.SIGKILL)
    await asyncio.gather(*clients)
    server.proc.wait()
    assert len(answered) >= 150

    restarted = PluginProcess(config, log_dir=tmp_path).start()
    try:
        again = Api(restarted.base_url)
        missing = []
        for i, code in enumerate(answered):
            if (await again.link(code, f"00000000-0000-4000-9000-{i:012d}")).status != 200:
                missing.append(code)
        assert missing == []
    finally:
        restarted.terminate()


@pytest.mark.gen_test(timeout=120)
async def test_one_token_posted_to_twenty_sessions_over_two_instances_is_accepted_once(two_instances, mint):
    a, b = two_instances
    sessions = [(await a.start("report_move")).json for _ in range(20)]
    token = mint(attributes={"fullname": "Piet Pietersen"})
    responses = await asyncio.gather(
        *((a if i % 2 else b).post_result(s["attr_url"], token) for i, s in enumerate(sessions))
    )
    assert Counter(r.status for r in responses) == Counter({200: 1, 400: 19})
    assert all("(replayed)" in r.json["detail"] for r in responses if r.status == 400)
