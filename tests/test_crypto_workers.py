"""Tokens read in crypto worker processes: the same answers as in the plugin, and nothing lost when one dies.

Real worker processes (``python -m connect_plugin.crypto_worker``) over their
socket pairs, with real keys and real tokens; the plugin runs in the test's
event loop with ``crypto_workers`` set.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from connect_plugin import crypto_pool, jwe, tokens
from connect_plugin.crypto_pool import CryptoPool
from connect_plugin.errors import InvalidToken
from connect_plugin.model import AuthResult
from tests.support import KeySet, PluginProcess, dtmf_of, write_config
from tests.token_support import assert_clean_refusal, flip_bit

POLICY = tokens.TokenPolicy()
CONTACT = "c0ffee00-0000-4000-8000-00000000c0de"


async def ready(pool: CryptoPool, workers: int | None = None, timeout: float = 30.0) -> None:
    """Wait until ``workers`` (default: all) of the pool's workers are ready."""
    wanted = len(pool.workers) if workers is None else workers
    deadline = time.monotonic() + timeout
    while sum(worker.ready for worker in pool.workers) < wanted:
        assert time.monotonic() < deadline, f"{pool!r} not ready within {timeout} s"
        await asyncio.sleep(0.02)


def pids(pool: CryptoPool) -> list[int]:
    return [worker.proc.pid for worker in pool.workers if worker.proc is not None]


def proc_file(pid: int, name: str) -> bytes:
    return Path(f"/proc/{pid}/{name}").read_bytes()


def token(keyset: KeySet, attributes: dict[str, str] | None = None, **options) -> str:
    result = AuthResult("succes", attributes or {"email": "jane@example.com"}, options.pop("session_url", None))
    return tokens.make_auth_result(result, keyset.encrypt, keyset.sign, **options)


@pytest.fixture
def pool_of(io_loop):
    """``pool_of(keyset, count)``: a started pool, stopped after the test."""
    pools: list[CryptoPool] = []

    async def start(keyset: KeySet, count: int = 2) -> CryptoPool:
        pool = CryptoPool(count, keyset.decrypt, keyset.verify, POLICY)
        pools.append(pool)
        await pool.start()
        await ready(pool)
        return pool

    yield start
    for pool in pools:
        io_loop.run_sync(pool.close)


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("keys", ["rsa_keys", "ec_keys"])
async def test_workers_read_tokens_exactly_as_the_plugin_does(request, pool_of, keys):
    keyset: KeySet = request.getfixturevalue(keys)
    pool = await pool_of(keyset)
    good = token(keyset, {"email": "jane@example.com", "name": "Jänë"}, session_url="https://auth.example/s/1")
    now = time.time()

    here = tokens.read_verified(good, keyset.decrypt, keyset.verify, POLICY, now=now)
    there = await pool.receive(good, now)
    assert there == here
    assert await pool.reread(good) == tokens.read_auth_result(good, keyset.decrypt, keyset.verify,
                                                              check_expiry=False)

    for bad, when in ((flip_bit(good, 3, 5), now), (good, now + 7200), ("not.a.token.at.all", now)):
        with pytest.raises(InvalidToken) as in_process:
            tokens.read_verified(bad, keyset.decrypt, keyset.verify, POLICY, now=when)
        with pytest.raises(InvalidToken) as in_worker:
            await pool.receive(bad, when)
        assert (in_worker.value.reason, str(in_worker.value)) == (in_process.value.reason, str(in_process.value))
        assert in_worker.value.body() == in_process.value.body()
        assert_clean_refusal(in_worker.value, in_process.value.reason, bad)


@pytest.mark.gen_test(timeout=60)
async def test_reads_spread_over_the_workers_and_all_come_back(pool_of, keyset):
    pool = await pool_of(keyset, 2)
    minted = [token(keyset, {"email": f"person{i}@example.com"}) for i in range(12)]
    results = await asyncio.gather(*(pool.reread(t) for t in minted))
    assert [r.attributes for r in results] == [{"email": f"person{i}@example.com"} for i in range(12)]
    assert all(worker.reads > 0 for worker in pool.workers)


@pytest.mark.gen_test(timeout=60)
async def test_no_key_material_reaches_a_workers_command_line_or_environment(pool_of, keyset):
    pool = await pool_of(keyset, 1)
    secret_line = keyset.decrypt.pem.strip().splitlines()[5]
    assert "PRIVATE" not in repr(pool)
    assert secret_line not in repr(pool)
    for pid in pids(pool):
        for seen in (proc_file(pid, "cmdline"), proc_file(pid, "environ")):
            assert b"PRIVATE KEY" not in seen
            assert secret_line.encode() not in seen


@pytest.mark.gen_test(timeout=60)
async def test_a_worker_that_dies_is_replaced_and_reads_go_on_meanwhile(pool_of, keyset):
    pool = await pool_of(keyset, 2)
    first = pool.workers[0]
    old_pid = first.proc.pid
    os.kill(old_pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while first.ready:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)
    # The other worker answers while the first is being replaced.
    assert (await pool.reread(token(keyset))).status == "succes"
    await ready(pool)
    assert first.proc.pid != old_pid
    assert (await pool.reread(token(keyset))).attributes == {"email": "jane@example.com"}


@pytest.mark.gen_test(timeout=90)
async def test_a_result_whose_worker_dies_mid_read_is_read_on_a_thread_and_accepted(plugin_factory, mint):
    plugin = await plugin_factory(crypto_workers=1)
    pool = plugin.runtime.crypto
    await ready(pool)
    started = (await plugin.api.start("report_move")).json
    worker_pid = pool.workers[0].proc.pid
    os.kill(worker_pid, signal.SIGSTOP)  # the worker takes the read and never answers
    try:
        posting = asyncio.ensure_future(plugin.api.post_result(started["attr_url"], mint()))
        deadline = time.monotonic() + 10
        while not pool.workers[0].pending:
            assert time.monotonic() < deadline, "the read never reached the worker"
            await asyncio.sleep(0.01)
    finally:
        os.kill(worker_pid, signal.SIGKILL)
    assert (await posting).status == 200
    assert (await plugin.api.link(dtmf_of(started), CONTACT)).status == 200
    info = await plugin.api.info(CONTACT)
    assert info.json["auth_result"]["attributes"] == {"email": "jane@example.com"}


@pytest.mark.gen_test(timeout=90)
async def test_a_whole_session_reads_its_token_twice_in_the_workers_and_never_in_the_plugin(
        plugin_factory, mint, monkeypatch):
    in_plugin: list[object] = []
    real = jwe.decrypt
    monkeypatch.setattr(jwe, "decrypt", lambda *a, **k: in_plugin.append(1) or real(*a, **k))
    plugin = await plugin_factory(crypto_workers=2)
    pool = plugin.runtime.crypto
    await ready(pool)
    started = (await plugin.api.start("report_move")).json
    assert (await plugin.api.post_result(started["attr_url"], mint())).status == 200
    assert (await plugin.api.link(dtmf_of(started), CONTACT)).status == 200
    info = await plugin.api.info(CONTACT)
    assert info.json["auth_result"]["attributes"] == {"email": "jane@example.com"}
    assert sum(worker.reads for worker in pool.workers) == 2
    assert in_plugin == []


@pytest.mark.gen_test(timeout=90)
async def test_the_plugin_answers_before_its_workers_are_ready_and_stops_them_when_it_stops(plugin_factory, mint):
    plugin = await plugin_factory(crypto_workers=2)
    pool = plugin.runtime.crypto
    assert not pool.ready  # a worker takes a moment to start; the plugin does not wait for it
    started = (await plugin.api.start("report_move")).json
    assert (await plugin.api.post_result(started["attr_url"], mint())).status == 200
    await ready(pool)
    procs = [worker.proc for worker in pool.workers]
    await plugin.runtime.stop()
    assert all(proc.poll() is not None for proc in procs)
    assert all(worker.proc is None for worker in pool.workers)


@pytest.mark.gen_test(timeout=60)
async def test_crypto_workers_zero_reads_tokens_on_the_plugins_threads(plugin_factory, mint, monkeypatch):
    threads: list[str] = []
    real = jwe.decrypt
    monkeypatch.setattr(jwe, "decrypt", lambda *a, **k: threads.append(threading.current_thread().name)
                        or real(*a, **k))
    plugin = await plugin_factory(crypto_workers=0)
    assert plugin.runtime.crypto is None
    started = (await plugin.api.start("report_move")).json
    assert (await plugin.api.post_result(started["attr_url"], mint())).status == 200
    assert (await plugin.api.link(dtmf_of(started), CONTACT)).status == 200
    assert (await plugin.api.info(CONTACT)).json["auth_result"]["attributes"] == {"email": "jane@example.com"}
    assert [name.rsplit("_", 1)[0] for name in threads] == ["connect-plugin-receipt", "connect-plugin-reread"]


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def wait_for(check, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def gone(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in status  # exited, waiting to be reaped by init


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_the_workers_of_connect_plugin_serve_end_with_it(tmp_path, keyset, stop):
    config = write_config(tmp_path / "plugin.toml", keyset, crypto_workers=1,
                          database_url=f"sqlite:///{tmp_path / 'db.sqlite3'}")
    server = PluginProcess(config).start()
    try:
        wait_for(lambda: len(children(server.proc.pid)) == 1)
        (worker,) = children(server.proc.pid)
        assert b"connect_plugin.crypto_worker" in proc_file(worker, "cmdline")
        server.proc.send_signal(stop)
        server.proc.wait(20)
        wait_for(lambda: gone(worker))
    finally:
        server.terminate()


@pytest.mark.gen_test(timeout=60)
async def test_a_worker_that_cannot_start_is_tried_ever_less_often_while_tokens_are_read_on_threads(
        plugin_factory, mint, monkeypatch):
    def broken_spawn():
        ours, theirs = socket.socketpair()
        proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"], pass_fds=(theirs.fileno(),))
        theirs.close()
        return ours, proc

    monkeypatch.setattr(crypto_pool, "RESTART_DELAY", 0.05)
    monkeypatch.setattr(crypto_pool, "_spawn", broken_spawn)
    plugin = await plugin_factory(crypto_workers=1)
    worker = plugin.runtime.crypto.workers[0]
    deadline = time.monotonic() + 20
    while worker.restart_delay < 0.05 * 8:  # three exits before ready, each doubling the wait
        assert time.monotonic() < deadline, f"restart delay only {worker.restart_delay}"
        await asyncio.sleep(0.02)
    assert not plugin.runtime.crypto.ready
    started = (await plugin.api.start("report_move")).json
    assert (await plugin.api.post_result(started["attr_url"], mint())).status == 200


def test_serve_started_in_a_folder_with_another_connect_plugin_uses_the_installed_one(tmp_path, keyset):
    """The README's run command starts the service in the source checkout: its children must not import it."""
    shadow = tmp_path / "connect_plugin"
    shadow.mkdir()
    (shadow / "__init__.py").write_text('raise ImportError("the working directory\'s connect_plugin was imported")\n')
    config = write_config(tmp_path / "plugin.toml", keyset, crypto_workers=1,
                          database_url=f"sqlite:///{tmp_path / 'fresh.sqlite3'}")  # new: migrated in a child
    server = PluginProcess(config).start()
    try:
        wait_for(lambda: len(children(server.proc.pid)) == 1)
        (worker,) = children(server.proc.pid)
        time.sleep(1.0)
        assert not gone(worker), server.output()
        assert "ImportError" not in server.output()
    finally:
        server.terminate()
