"""Redis going away and coming back: quick 503s, recovery without a restart, nothing lost that Redis kept.

Each test starts a Redis server of its own on a free port (never the shared
one on 6379), with an append-only file synced on every write, so that a
stopped and restarted server still has what it had: ``restart`` stops it for
real and starts it again; ``freeze`` stops the process (``SIGSTOP``), the
harder case where only timeouts help, then lets it go on.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from connect_plugin.app import Runtime
from connect_plugin.config import load_settings
from tests.support import Api, dtmf_of, free_port, write_config

pytest.importorskip("connect_plugin_redis_store")


class OwnRedis:
    """``redis-server`` on 127.0.0.1:<free port>, keeping its data in an append-only file in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--dir", str(self.folder), "--logfile", str(self.folder / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ping = subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True, check=False)
            if ping.stdout.strip() == b"PONG":
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server on port {self.port} did not answer")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)  # a frozen server must hear the SIGTERM
            self.proc.terminate()
            self.proc.wait(20)

    def freeze(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)


@pytest.fixture
def own_redis(tmp_path) -> Iterator[OwnRedis]:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is required in CI (apt-get install redis-server)")
        pytest.skip("redis-server not installed")
    folder = tmp_path / "redis"
    folder.mkdir()
    server = OwnRedis(folder)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def start_runtime(tmp_path, keyset, url: str) -> Runtime:
    config = write_config(tmp_path / "p.toml", keyset, database_url=url, port=0, database_timeout=1.0)
    runtime = Runtime(load_settings(config, environ={}))
    await runtime.start()
    return runtime


async def wait_until(predicate, timeout: float) -> float:
    """Poll an async predicate; the seconds it took to become true."""
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if await predicate():
            return time.monotonic() - began
        await asyncio.sleep(0.1)
    raise AssertionError(f"not true within {timeout}s")


@pytest.mark.gen_test(timeout=120)
@pytest.mark.parametrize("fault", ["restart", "freeze"])
async def test_redis_outage_gives_503s_and_service_resumes_without_restart_losing_nothing(
    tmp_path, keyset, own_redis, mint, fault
):
    runtime = await start_runtime(tmp_path, keyset, own_redis.url)
    api = Api(f"http://127.0.0.1:{runtime.port}")
    try:
        kept = "01d5e551-0000-4000-8000-000000000001"
        before = (await api.start("report_move")).json
        assert (await api.post_result(before["attr_url"], mint(attributes={"email": "kept@example.nl"}))).status == 200
        assert (await api.link(dtmf_of(before), kept)).status == 200
        waiting = (await api.start("request_permit")).json

        if fault == "restart":
            own_redis.stop()
        else:
            own_redis.freeze()
        began = time.monotonic()
        refused = await api.start("report_move")  # a hang would be a ConnectionError from the client's timeout
        print(f"\n{fault}: start_communication answered {refused.status} in {time.monotonic() - began:.2f}s")
        assert refused.status == 503
        assert refused.json["error"] == "StoreUnavailable"
        health = await api.call("GET", "/health")
        assert (health.status, health.json["store"]) == (503, "down")

        if fault == "restart":
            own_redis.start()
        else:
            own_redis.thaw()

        async def healthy() -> bool:
            return (await api.call("GET", "/health")).status == 200

        print(f"{fault}: healthy again {await wait_until(healthy, 30):.2f}s after Redis returned")
        shown = await api.info(kept)  # what Redis kept is all there
        assert shown.json["auth_result"]["attributes"]["email"] == "kept@example.nl"
        assert (await api.link(dtmf_of(waiting), "01d5e551-0000-4000-8000-000000000002")).status == 200
        after = await api.start("report_move")
        assert after.status == 200
        assert (await api.link(dtmf_of(after), "01d5e551-0000-4000-8000-000000000003")).status == 200
    finally:
        await runtime.stop()


@pytest.mark.gen_test(timeout=60)
async def test_displays_are_woken_to_read_again_when_the_subscription_comes_back(tmp_path, keyset, own_redis):
    runtime = await start_runtime(tmp_path, keyset, own_redis.url)
    try:
        notifier = runtime.parts.notifier
        await asyncio.wait_for(notifier.connected.wait(), 10)
        subscription = notifier.listen("c0c0c0c0-0000-4000-8000-000000000001")
        try:
            own_redis.stop()
            own_redis.start()
            assert await subscription.wait(20), "events may have been missed: displays must read again"
        finally:
            subscription.close()
    finally:
        await runtime.stop()


@pytest.mark.gen_test(timeout=30)
async def test_a_plugin_started_before_redis_serves_503_until_redis_answers(tmp_path, keyset, own_redis):
    own_redis.stop()
    runtime = await start_runtime(tmp_path, keyset, own_redis.url)  # starts anyway
    api = Api(f"http://127.0.0.1:{runtime.port}")
    try:
        assert (await api.start("report_move")).status == 503
        own_redis.start()

        async def started() -> bool:
            return (await api.start("report_move")).status == 200

        await wait_until(started, 20)
    finally:
        await runtime.stop()


@pytest.mark.gen_test(timeout=60)
async def test_a_silent_subscription_is_noticed_by_its_heartbeat_and_replaced(own_redis):
    from connect_plugin_redis_store import RedisNotifier

    notifier = RedisNotifier(own_redis.url, channel="cp-test:events", timeout=0.5, heartbeat=0.5)
    await notifier.start()
    try:
        await asyncio.wait_for(notifier.connected.wait(), 10)
        subscription = notifier.listen("c0c0c0c0-0000-4000-8000-000000000002")
        try:
            own_redis.freeze()  # the connection stays open, and nothing answers on it

            async def noticed() -> bool:
                return not notifier.connected.is_set()

            await wait_until(noticed, 20)
            own_redis.thaw()
            assert await subscription.wait(20), "after a silent spell displays must read again"
            await asyncio.wait_for(notifier.connected.wait(), 10)
        finally:
            subscription.close()
    finally:
        own_redis.thaw()
        await notifier.close()
