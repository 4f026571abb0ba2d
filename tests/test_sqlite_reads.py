"""SQLite lookups run on the event loop's own thread, and go to the reading thread only when the file is locked.

Real SQLite files and the real store.  A locked file cannot be made on demand
while the store has the file open in WAL mode (that is the point of WAL), so
the lock is stood in for by the error SQLite raises for it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import pytest

from connect_plugin.errors import StoreUnavailable
from connect_plugin.model import NewSession
from connect_plugin.stores import sqlite_runner
from connect_plugin.stores.sql import SqlStore

SESSION = NewSession("code-1", "result-1", "report_move", None)


class Lookups:
    """Records the thread of each statement the store runs (the real ``_first`` still runs)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_on_loop: sqlite3.Error | None = None) -> None:
        self.threads: list[str] = []
        self.fail_on_loop = fail_on_loop
        self.loop_thread = threading.current_thread()
        real = sqlite_runner._first

        def first(conn, stmt, values):
            on_loop = threading.current_thread() is self.loop_thread
            self.threads.append("loop" if on_loop else threading.current_thread().name)
            if on_loop and self.fail_on_loop is not None:
                raise self.fail_on_loop
            return real(conn, stmt, values)

        monkeypatch.setattr(sqlite_runner, "_first", first)


def busy() -> sqlite3.OperationalError:
    error = sqlite3.OperationalError("database is locked")
    error.sqlite_errorcode = sqlite3.SQLITE_BUSY
    return error


async def stored(sqlite_url: str) -> SqlStore:
    store = SqlStore(sqlite_url)
    await store.open()
    await store.create(SESSION, time.time())
    return store


def test_a_lookup_runs_on_the_event_loop_thread_without_a_hand_off(sqlite_url: str, monkeypatch) -> None:
    async def check() -> None:
        store = await stored(sqlite_url)
        try:
            lookups = Lookups(monkeypatch)
            assert await store.awaits_result("result-1") is True
            assert await store.awaits_result("result-2") is False
            assert lookups.threads == ["loop", "loop"]
        finally:
            await store.close()

    asyncio.run(check())


def test_a_lookup_on_a_locked_file_is_done_on_the_reading_thread(sqlite_url: str, monkeypatch) -> None:
    async def check() -> None:
        store = await stored(sqlite_url)
        try:
            lookups = Lookups(monkeypatch, fail_on_loop=busy())
            assert await store.awaits_result("result-1") is True
            assert lookups.threads[0] == "loop"
            assert lookups.threads[1].startswith("connect-plugin-sqlite-read")
        finally:
            await store.close()

    asyncio.run(check())


def test_any_other_failure_of_a_lookup_is_store_unavailable_and_the_next_one_reconnects(
        sqlite_url: str, monkeypatch) -> None:
    async def check() -> None:
        store = await stored(sqlite_url)
        try:
            lookups = Lookups(monkeypatch, fail_on_loop=sqlite3.DatabaseError("file is not a database"))
            with pytest.raises(StoreUnavailable):
                await store.awaits_result("result-1")
            assert store.db._inline._conn is None  # dropped: the next lookup opens the file again
            lookups.fail_on_loop = None
            assert await store.awaits_result("result-1") is True
        finally:
            await store.close()

    asyncio.run(check())


def test_a_lookup_after_the_store_closed_is_store_unavailable(sqlite_url: str) -> None:
    async def check() -> None:
        store = await stored(sqlite_url)
        await store.close()
        with pytest.raises(StoreUnavailable):
            await store.awaits_result("result-1")

    asyncio.run(check())
