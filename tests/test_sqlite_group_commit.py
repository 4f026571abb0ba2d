"""The SQLite writer commits the writes waiting together (one fsync), yet each write succeeds or fails alone.

Real SQLite files, the real store, many writes at once so that they share
transactions: a refused write (a code clash, a replayed token) leaves the
others of its group stored, and nothing is answered before its commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from connect_plugin.errors import CodeTaken, NotFound, TokenReused
from connect_plugin.model import NewResult, NewSession
from connect_plugin.stores.sql import SqlStore
from connect_plugin.stores.urls import sqlite_path
from tests.bench import bulk


def session(n: int, code: int | None = None) -> NewSession:
    return NewSession(f"code-{n if code is None else code}", f"result-{n}", "report_move", None)


@contextlib.asynccontextmanager
async def opened(url: str) -> AsyncIterator[SqlStore]:
    """The real store over the file at ``url``, open for the block."""
    store = SqlStore(url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def write_ahead_log(url: str) -> Path:
    """The file's write-ahead log (``<file>-wal``)."""
    path = sqlite_path(url)
    assert path is not None
    return path.with_name(path.name + "-wal")


def rows(url: str, sql: str) -> list[tuple[object, ...]]:
    path = sqlite_path(url)
    assert path is not None
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


@pytest.mark.parametrize("clashes", [1, 10])
def test_a_refused_write_in_a_group_leaves_the_others_stored(sqlite_url: str, clashes: int) -> None:
    async def check() -> list[object]:
        async with opened(sqlite_url) as store:
            await store.create(session(0), time.time())
            # 60 at once: the clashing ones reuse session 0's code.
            writes = [store.create(session(n, code=0 if n <= clashes else None), time.time()) for n in range(1, 61)]
            before = store.db.commits
            outcomes = await asyncio.gather(*writes, return_exceptions=True)
            # They shared transactions: far fewer commits (fsyncs) than writes.
            assert store.db.commits - before <= 20
            return outcomes

    outcomes = asyncio.run(check())
    assert [type(o) for o in outcomes[:clashes]] == [CodeTaken] * clashes
    assert outcomes[clashes:] == [None] * (60 - clashes)
    stored = {key for (key,) in rows(sqlite_url, "SELECT result_key FROM comm_session")}
    assert stored == {"result-0"} | {f"result-{n}" for n in range(clashes + 1, 61)}


def test_a_write_of_two_statements_is_undone_whole_when_its_second_is_refused(sqlite_url: str) -> None:
    now = time.time()

    def result(replay: str) -> NewResult:
        return NewResult(jwe="x.y.z.w.v", replay_key=replay, replay_expires=now + 600, feedback=False)

    async def check() -> list[object]:
        async with opened(sqlite_url) as store:
            await asyncio.gather(*(store.create(session(n), now) for n in range(20)))
            # Session 0..9 each get a result; 10..19 replay the token of 0..9 (refused: nothing stored for them).
            writes = [store.store_result(f"result-{n}", result(f"token-{n % 10}"), now) for n in range(20)]
            writes.append(store.store_result("result-unknown", result("token-99"), now))
            return await asyncio.gather(*writes, return_exceptions=True)

    outcomes = asyncio.run(check())
    assert outcomes[:10] == [None] * 10
    assert [type(o) for o in outcomes[10:20]] == [TokenReused] * 10
    assert type(outcomes[20]) is NotFound
    with_result = rows(sqlite_url, "SELECT result_key FROM comm_session WHERE auth_result IS NOT NULL")
    assert sorted(key for (key,) in with_result) == sorted(f"result-{n}" for n in range(10))
    # The unknown session's token was not spent: its result can still be used elsewhere.
    spent = {key for (key,) in rows(sqlite_url, "SELECT replay_key FROM comm_used_token")}
    assert spent == {f"token-{n}" for n in range(10)}


def test_a_log_written_to_without_pause_still_starts_over(sqlite_url: str, monkeypatch) -> None:
    """The checkpointer alone never catches up with a writer that never pauses; the writer finishes for it."""
    from connect_plugin.stores import sqlite_runner

    monkeypatch.setattr(sqlite_runner, "CHECKPOINT_INTERVAL", 0.02)
    monkeypatch.setattr(sqlite_runner, "RESTART_FRAMES", 40)
    wal = write_ahead_log(sqlite_url)

    async def write_without_pause() -> tuple[int, int, int]:
        async with opened(sqlite_url) as store:
            deadline = time.monotonic() + 3.0
            n = 0
            while time.monotonic() < deadline:  # 20 writes always waiting: the writer is never idle
                await asyncio.gather(*(store.create(session(n + i), time.time()) for i in range(20)))
                n += 20
            return n, wal.stat().st_size, store.db._writer.catch_ups

    written, log_bytes, catch_ups = asyncio.run(write_without_pause())
    assert written >= 1000
    # Without starting over, every frame ever written stays in the log: over 100 MB by now.
    assert log_bytes < 10_000_000, f"{log_bytes} bytes of log after {written} writes"
    assert catch_ups > 0


def test_a_cleanup_of_many_sessions_keeps_the_log_short(sqlite_url: str) -> None:
    """Each bounded delete waits until the last one's pages are checkpointed: the log never holds the cleanup."""
    wal = write_ahead_log(sqlite_url)

    async def clean_up() -> tuple[int, int, int]:
        async with opened(sqlite_url) as store:
            # Idle sessions written straight into the file, settled on disk (the load's pages are not the cleanup's).
            bulk.load(sqlite_url, 0, 30_000, time.time())
            deleted, longest, batch = 0, 0, 500
            while True:  # as the flow service's cleanup does: bounded deletes until one comes back short
                n = await store.delete_idle(time.time() - 3600, batch)
                deleted += n
                longest = max(longest, wal.stat().st_size)
                if n < batch:
                    return deleted, longest, len(rows(sqlite_url, "SELECT id FROM comm_session"))

    deleted, longest, left = asyncio.run(clean_up())
    assert (deleted, left) == (30_000, 0)
    # Paced, about 5 MB; unpaced, the log held every page every batch wrote (indexes on random keys): 150 MB.
    assert longest < 20_000_000, f"{longest} bytes of log while deleting {deleted} sessions"
