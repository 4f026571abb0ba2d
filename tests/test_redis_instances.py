"""Several plugin instances on one Redis: the hand-offs and races that PostgreSQL passes, on the Redis store.

Instances are real ``connect-plugin serve`` processes talked to over HTTP
(and, for the notifier, two runtimes in this process); each test has a key
prefix of its own on the shared server.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import pytest

from connect_plugin.app import Runtime
from connect_plugin.config import load_settings
from tests.sse_client import EventStream
from tests.support import FEW_CODES_PATH, Api, PluginProcess, dtmf_of, few_codes, write_config

pytest.importorskip("connect_plugin_redis_store")


async def count_keys(url: str, pattern: str) -> int:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        return len([key async for key in client.scan_iter(match=pattern, count=1000)])
    finally:
        await client.aclose()


@pytest.fixture
def two_instances(tmp_path, keyset, redis_server, redis_prefix) -> Iterator[tuple[Api, Api]]:
    """Two plugin processes on one Redis, codes from a space of 10,000 (the few-codes test plugin)."""
    plugins = {**few_codes(digits=4), "redis_store": {"key_prefix": redis_prefix}}
    config = write_config(tmp_path / "shared.toml", keyset, database_url=redis_server, plugins=plugins,
                          link_failure_budget=1000, database_timeout=5.0)
    env = {"PYTHONPATH": str(FEW_CODES_PATH)}
    a = PluginProcess(config, log_dir=tmp_path, env=env).start()
    b = PluginProcess(config, log_dir=tmp_path, env=env).start()
    try:
        yield Api(a.base_url), Api(b.base_url)
    finally:
        for proc in (a, b):
            proc.terminate()


@pytest.mark.gen_test(timeout=60)
async def test_session_started_on_one_instance_is_finished_on_the_other(two_instances, mint):
    a, b = two_instances
    started = (await a.start("request_permit")).json
    assert (await b.post_result(started["attr_url"], mint())).status == 200
    assert (await a.post_result(started["attr_url"], mint())).status == 404  # once, whichever instance
    contact = "a1b2c3d4-0000-4000-8000-00000000000a"
    assert (await a.link(dtmf_of(started), contact)).status == 200
    info = await b.info(contact)
    assert info.json["purpose"] == "request_permit"
    assert info.json["auth_result"]["status"] == "succes"


@pytest.mark.gen_test(timeout=120)
async def test_codes_handed_out_by_two_instances_never_collide(two_instances, redis_server, redis_prefix):
    a, b = two_instances

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
    assert all(code.startswith("424242") for code in codes)
    assert len(set(codes)) == 600  # ~18 collisions expected among 10,000 codes: the scripts kept them apart
    assert await count_keys(redis_server, f"{redis_prefix}session:*") == 600
    assert await count_keys(redis_server, f"{redis_prefix}code:*") == 600


@pytest.mark.gen_test(timeout=120)
async def test_hundred_concurrent_links_of_one_code_over_two_instances_link_exactly_one(two_instances):
    a, b = two_instances
    dtmf = dtmf_of(await a.start("report_move"))
    contacts = [f"00000000-0000-4000-8000-{i:012d}" for i in range(100)]
    responses = await asyncio.gather(*((a if i % 2 else b).link(dtmf, c) for i, c in enumerate(contacts)))
    assert Counter(r.status for r in responses) == Counter({200: 1, 404: 99})
    winner = contacts[next(i for i, r in enumerate(responses) if r.status == 200)]
    assert [c for c in contacts if (await a.info(c)).status == 200] == [winner]


@pytest.mark.gen_test(timeout=120)
async def test_fifty_concurrent_result_posts_for_one_session_store_exactly_one(two_instances, mint):
    a, b = two_instances
    started = (await a.start("report_move")).json
    tokens = [mint(attributes={"email": f"poster{i}@example.com"}) for i in range(50)]
    responses = await asyncio.gather(
        *((a if i % 2 else b).post_result(started["attr_url"], t) for i, t in enumerate(tokens))
    )
    assert Counter(r.status for r in responses) == Counter({200: 1, 404: 49})
    winner = next(i for i, r in enumerate(responses) if r.status == 200)
    contact = "5e5e5e5e-0000-4000-8000-000000000050"
    await a.link(dtmf_of(started), contact)
    assert (await b.info(contact)).json["auth_result"]["attributes"]["email"] == f"poster{winner}@example.com"


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


@pytest.mark.gen_test(timeout=120)
async def test_instances_on_one_redis_share_one_link_failure_budget(tmp_path, keyset, redis_server, redis_prefix):
    config = write_config(tmp_path / "budget.toml", keyset, database_url=redis_server, link_failure_budget=6,
                          plugins={"redis_store": {"key_prefix": redis_prefix}})
    a = PluginProcess(config, log_dir=tmp_path).start()
    b = PluginProcess(config, log_dir=tmp_path).start()
    try:
        api_a, api_b = Api(a.base_url), Api(b.base_url)
        contact = "b0d9e7c1-0000-4000-8000-000000000001"
        # The processes' clocks are real: begin early in a minute, so the 6 failures share one window.
        if time.time() % 60 > 40:
            await asyncio.sleep(61 - time.time() % 60)
        right = dtmf_of(await api_a.start("report_move"))
        wrong = "".join("1" if c == "0" else "0" for c in right)
        for i in range(6):
            assert (await (api_a if i % 2 else api_b).link(wrong, contact)).status == 404
        # Three failures on each: neither instance alone is over its budget, together they are.
        assert (await api_a.link(right, contact)).status == 429
        assert (await api_b.link(right, contact)).status == 429
        assert (await api_a.info(contact)).status == 404
    finally:
        a.terminate()
        b.terminate()


@pytest.mark.gen_test(timeout=60)
async def test_a_display_on_instance_b_shows_a_result_posted_to_instance_a(two_instances, mint):
    a, b = two_instances
    contact = "5e55e5e5-0000-4000-8000-0000000000b1"
    started = (await a.start("report_move")).json
    assert (await a.link(dtmf_of(started), contact)).status == 200
    stream = await EventStream.open(b.base_url, f"/session_events/{contact}")
    try:
        assert (await stream.next_event("session")).json["state"] == "waiting"
        assert (await a.post_result(started["attr_url"], mint(attributes={"email": "jane@example.com"}))).status == 200
        shown = (await stream.next_event("session", timeout=10)).json
    finally:
        stream.close()
    assert shown["state"] == "verified"
    assert shown["attributes"][0]["value"] == "jane@example.com"


# -- the notifier, in two runtimes of this process


@contextlib.asynccontextmanager
async def two_runtimes(tmp_path, keyset, redis_server, redis_prefix) -> AsyncIterator[tuple[Runtime, Runtime, Api]]:
    """Runtimes A and B on one Redis, B subscribed; both, and a client for A."""
    runtimes = []
    for name in ("a", "b"):
        config = write_config(tmp_path / f"{name}.toml", keyset, database_url=redis_server, port=0,
                              plugins={"redis_store": {"key_prefix": redis_prefix}})
        runtime = Runtime(load_settings(config, environ={}))
        await runtime.start()
        runtimes.append(runtime)
    a, b = runtimes
    try:
        await asyncio.wait_for(b.parts.notifier.connected.wait(), 10)
        yield a, b, Api(f"http://127.0.0.1:{a.port}")
    finally:
        await a.stop()
        await b.stop()


async def linked_session(api: Api, contact: str) -> dict:
    started = (await api.start("report_move")).json
    assert (await api.link(dtmf_of(started), contact)).status == 200
    return started


@pytest.mark.gen_test(timeout=60)
async def test_result_posted_to_one_instance_wakes_a_display_waiting_on_another(
    tmp_path, keyset, redis_server, redis_prefix, mint
):
    async with two_runtimes(tmp_path, keyset, redis_server, redis_prefix) as (_a, b, api_a):
        contact = "d15b1a70-0000-4000-8000-000000000001"
        started = await linked_session(api_a, contact)
        subscription = b.parts.notifier.listen(contact)
        try:
            await api_a.post_result(started["attr_url"], mint())
            woke = await subscription.wait(10)
        finally:
            subscription.close()
        assert woke, "instance B never heard of the change"
        assert (await Api(f"http://127.0.0.1:{b.port}").info(contact)).json["auth_result"]["status"] == "succes"


@pytest.mark.gen_test(timeout=60)
async def test_many_results_at_once_on_one_instance_all_reach_displays_on_another(
    tmp_path, keyset, redis_server, redis_prefix, mint
):
    async with two_runtimes(tmp_path, keyset, redis_server, redis_prefix) as (_a, b, api_a):
        sessions = []
        for i in range(30):
            contact = f"d15b1a70-0000-4000-8000-{i:012d}"
            sessions.append((contact, (await linked_session(api_a, contact))["attr_url"]))
        subscriptions = [b.parts.notifier.listen(contact) for contact, _ in sessions]
        try:
            posted = await asyncio.gather(*(api_a.post_result(url, mint(attributes={"email": f"c{i}@example.nl"}))
                                            for i, (_, url) in enumerate(sessions)))
            assert all(p.status == 200 for p in posted)
            woke = await asyncio.gather(*(s.wait(10) for s in subscriptions))
        finally:
            for s in subscriptions:
                s.close()
        assert all(woke), f"{woke.count(False)} of 30 displays on instance B never heard of their result"
