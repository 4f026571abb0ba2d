"""Several plugin instances on one Redis: what is the Redis store's own (the races that every store
passes run on Redis too, in test_production.py).

Instances are real ``connect-plugin serve`` processes talked to over HTTP
(and, for the notifier, two runtimes in this process); each test has a key
prefix of its own on the shared server.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from connect_plugin.app import Runtime
from connect_plugin.config import load_settings
from tests.sse_client import EventStream
from tests.support import Api, PluginProcess, dtmf_of, two_instances_on, write_config

pytest.importorskip("connect_plugin_redis_store")


@pytest.fixture
def two_instances(tmp_path, keyset, redis_settings) -> Iterator[tuple[Api, Api]]:
    """Two plugin processes on one Redis (the races both stores share are in test_production.py)."""
    with two_instances_on(tmp_path, keyset, redis_settings) as apis:
        yield apis

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
