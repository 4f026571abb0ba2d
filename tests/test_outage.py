"""PostgreSQL going away and coming back, and change events crossing instances through it.

The database connection runs through ``tests.faults.TcpProxy``, which cuts it
for real (refused connections, or a silent network); nothing is mocked.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from connect_plugin.app import Runtime
from connect_plugin.config import load_settings
from tests.faults import TcpProxy
from tests.support import Api, dtmf_of, write_config


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[TcpProxy]:
    """A cuttable TCP path to the test database."""
    parts = urlsplit(postgres_url)
    with TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as p:
        yield p


def through(proxy: TcpProxy, url: str) -> str:
    """``url`` with its host and port replaced by the proxy's."""
    parts = urlsplit(url)
    netloc = f"{parts.username}@127.0.0.1:{proxy.port}" if parts.username else f"127.0.0.1:{proxy.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


async def start_runtime(tmp_path, keyset, database_url: str, name: str = "p") -> Runtime:
    config = write_config(tmp_path / f"{name}.toml", keyset, database_url=database_url, port=0)
    runtime = Runtime(load_settings(config, environ={}))
    await runtime.start()
    return runtime


@contextlib.asynccontextmanager
async def two_instances(tmp_path, keyset, database_url: str) -> AsyncIterator[tuple[Runtime, Runtime, Api]]:
    """Instances A and B on one database, B listening; yields both and a client for A."""
    a = await start_runtime(tmp_path, keyset, database_url, "a")
    b = await start_runtime(tmp_path, keyset, database_url, "b")
    try:
        await asyncio.wait_for(b.parts.notifier.connected.wait(), 10)
        yield a, b, Api(f"http://127.0.0.1:{a.port}")
    finally:
        await a.stop()
        await b.stop()


async def linked_session(api: Api, contact: str) -> dict:
    """Start a session and link it to ``contact``; the start answer."""
    started = (await api.start("report_move")).json
    await api.link(dtmf_of(started), contact)
    return started


async def wait_until(predicate, timeout: float) -> float:
    """Poll an async predicate; return the seconds it took to become true."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    while loop.time() - began < timeout:
        if await predicate():
            return loop.time() - began
        await asyncio.sleep(0.1)
    raise AssertionError(f"not true within {timeout}s")


async def timed(coro) -> tuple[float, object]:
    loop = asyncio.get_running_loop()
    began = loop.time()
    result = await coro
    return loop.time() - began, result


@pytest.mark.gen_test(timeout=90)
@pytest.mark.parametrize("fault", ["refuse", "blackhole"])
async def test_database_outage_gives_quick_503s_and_service_resumes_without_restart(
    tmp_path, keyset, postgres_url, proxy, fault
):
    runtime = await start_runtime(tmp_path, keyset, through(proxy, postgres_url))
    api = Api(f"http://127.0.0.1:{runtime.port}")
    try:
        assert (await api.start("report_move")).status == 200
        getattr(proxy, fault)()

        took, started = await timed(api.start("report_move"))
        print(f"\n{fault}: start_communication answered {started.status} in {took:.2f}s")
        assert started.status == 503
        assert started.json["error"] == "StoreUnavailable"
        # Expected: instant when refused, 2 x database_timeout when silent; a hang would be 20 s+.
        assert took < 8, "a request must not hang while the database is away"
        took, health = await timed(api.call("GET", "/health"))
        assert health.status == 503
        assert health.json["store"] == "down"
        assert took < 8

        proxy.restore()

        async def healthy() -> bool:
            return (await api.call("GET", "/health")).status == 200

        print(f"{fault}: healthy again {await wait_until(healthy, 20):.2f}s after the database returned")
        started = await api.start("report_move")
        assert started.status == 200
        assert (await api.link(dtmf_of(started), "b0b0b0b0-0000-4000-8000-000000000001")).status == 200
    finally:
        await runtime.stop()


@pytest.mark.gen_test(timeout=60)
async def test_connections_killed_by_the_server_are_replaced_before_use(tmp_path, keyset, postgres_url):
    import asyncpg

    runtime = await start_runtime(tmp_path, keyset, postgres_url)
    api = Api(f"http://127.0.0.1:{runtime.port}")
    try:
        # Several requests at once, so that the pool holds several connections for the server to end.
        assert {r.status for r in await asyncio.gather(*(api.start("report_move") for _ in range(8)))} == {200}
        admin = await asyncpg.connect(postgres_url.replace("postgresql://", "postgres://"))
        try:
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        assert killed >= 1
        assert (await api.start("report_move")).status == 200  # pre-ping found the dead connection
    finally:
        await runtime.stop()


@pytest.mark.gen_test(timeout=60)
async def test_result_posted_to_one_instance_wakes_a_display_waiting_on_another(tmp_path, keyset, postgres_url, mint):
    async with two_instances(tmp_path, keyset, postgres_url) as (_a, b, api_a):
        contact = "d15b1a70-0000-4000-8000-000000000001"
        started = await linked_session(api_a, contact)
        subscription = b.parts.notifier.listen(contact)
        try:
            await api_a.post_result(started["attr_url"], mint())
            took, woke = await timed(subscription.wait(5))
        finally:
            subscription.close()
        print(f"\ninstance B woke {took * 1000:.0f} ms after instance A stored the result")
        assert woke, "instance B never heard of the change"
        info = await Api(f"http://127.0.0.1:{b.port}").info(contact)
        assert info.json["auth_result"]["status"] == "succes"


@pytest.mark.gen_test(timeout=60)
async def test_display_is_woken_to_re_read_when_the_listen_connection_comes_back(
    tmp_path, keyset, postgres_url, proxy
):
    runtime = await start_runtime(tmp_path, keyset, through(proxy, postgres_url))
    try:
        notifier = runtime.parts.notifier
        await asyncio.wait_for(notifier.connected.wait(), 10)
        subscription = notifier.listen("c0c0c0c0-0000-4000-8000-000000000001")
        try:
            proxy.refuse()
            await asyncio.sleep(0.5)
            proxy.restore()
            assert await subscription.wait(15), "events may have been missed: displays must re-read"
        finally:
            subscription.close()
    finally:
        await runtime.stop()


@pytest.mark.gen_test(timeout=60)
async def test_many_results_at_once_on_one_instance_all_reach_displays_on_another(tmp_path, keyset, postgres_url, mint):
    async with two_instances(tmp_path, keyset, postgres_url) as (_a, b, api_a):
        sessions = []
        for i in range(30):
            contact = f"d15b1a70-0000-4000-8000-{i:012d}"
            sessions.append((contact, (await linked_session(api_a, contact))["attr_url"]))
        subscriptions = [b.parts.notifier.listen(contact) for contact, _ in sessions]
        try:
            # One citizen each: identical tokens would be one signed result, refused as replayed.
            posted = await asyncio.gather(*(api_a.post_result(url, mint(attributes={"email": f"c{i}@example.nl"}))
                                            for i, (_, url) in enumerate(sessions)))
            assert all(p.status == 200 for p in posted)
            woke = await asyncio.gather(*(s.wait(5) for s in subscriptions))
        finally:
            for s in subscriptions:
                s.close()
        assert all(woke), f"{woke.count(False)} of 30 displays on instance B never heard of their result"


@pytest.mark.gen_test(timeout=60)
async def test_display_streaming_from_one_instance_shows_a_result_posted_to_another(
    tmp_path, keyset, postgres_url, mint
):
    from tests.sse_client import EventStream

    async with two_instances(tmp_path, keyset, postgres_url) as (_a, b, api_a):
        contact = "5e55e5e5-0000-4000-8000-0000000000b1"
        started = await linked_session(api_a, contact)
        stream = await EventStream.open(f"http://127.0.0.1:{b.port}", f"/session_events/{contact}")
        try:
            assert (await stream.next_event("session")).json["state"] == "waiting"
            loop = asyncio.get_running_loop()
            began = loop.time()
            await api_a.post_result(started["attr_url"], mint(attributes={"email": "jane@example.com"}))
            shown = (await stream.next_event("session", timeout=5)).json
            took = 1000 * (loop.time() - began)
            print(f"\ndisplay on instance B showed the result {took:.0f} ms after the POST to A")
        finally:
            stream.close()
        assert shown["state"] == "verified"
        assert shown["attributes"][0]["value"] == "jane@example.com"
