"""Benchmark (not a test): one session's life through each store, as the flow drives it.

A session's life is the four calls the flow makes for one call: ``create``,
``awaits_result`` + ``store_result`` (a result posted), ``link`` (the caller
typed the code), ``find_by_contact`` (the agent's display).  This script runs
``--sessions`` such lives, ``--concurrency`` at a time, through ``SqlStore``
on PostgreSQL and on an SQLite file and through the Redis store, and prints
lives per second and the median time of each call.

    .venv/bin/python -m tests.bench.bench_stores [--sessions 3000] [--concurrency 16]

PostgreSQL: a throwaway database on ``$CONNECT_PLUGIN_TEST_POSTGRES``'s server;
Redis: ``$CONNECT_PLUGIN_TEST_REDIS`` under a prefix of its own (deleted after).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from connect_plugin import migrate
from connect_plugin.hookspecs import SessionStore
from connect_plugin.model import FailureWindow, NewResult, NewSession
from connect_plugin.stores.sql import SqlStore
from tests.support import POSTGRES_URL, postgres_admin

REDIS_URL = os.environ.get("CONNECT_PLUGIN_TEST_REDIS", "redis://127.0.0.1:6379/0")


async def lives(store: SessionStore, sessions: int, concurrency: int) -> tuple[float, dict[str, list[float]]]:
    """Run ``sessions`` lives through ``store``; (seconds in all, call -> durations)."""
    timings: dict[str, list[float]] = defaultdict(list)
    window = FailureWindow(int(time.time()) + 3600, 10**6)

    async def timed(name: str, call: Awaitable[Any]) -> Any:
        began = time.perf_counter()
        answer = await call
        timings[name].append(time.perf_counter() - began)
        return answer

    async def life() -> None:
        now = time.time()
        session = NewSession(secrets.token_hex(32), secrets.token_hex(32), "report_move")
        await timed("create", store.create(session, now))
        assert await timed("awaits_result", store.awaits_result(session.result_key))
        result = NewResult("eyJ." + secrets.token_urlsafe(600), secrets.token_hex(32), now + 600, False)
        await timed("store_result", store.store_result(session.result_key, result, now))
        contact = str(uuid.uuid4())
        await timed("link", store.link(session.code_key, contact, now, window))
        assert await timed("find_by_contact", store.find_by_contact(contact)) is not None

    async def worker(count: int) -> None:
        for _ in range(count):
            await life()

    began = time.perf_counter()
    shares = [sessions // concurrency + (1 if i < sessions % concurrency else 0) for i in range(concurrency)]
    await asyncio.gather(*(worker(n) for n in shares))
    return time.perf_counter() - began, timings


async def measure(name: str, make: Callable[[], SessionStore], sessions: int, concurrency: int) -> None:
    store = make()
    await store.open()
    try:
        await lives(store, min(200, sessions), concurrency)  # warm-up: connections, caches
        took, timings = await lives(store, sessions, concurrency)
    finally:
        await store.close()
    medians = "  ".join(f"{call} {1000 * statistics.median(times):.2f}" for call, times in timings.items())
    print(f"{name:<12} {sessions / took:8.0f} lives/s   median ms: {medians}")


async def delete_prefix(url: str, prefix: str) -> None:
    """Delete every key under ``prefix``."""
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        for start in range(0, len(keys), 1000):
            await client.delete(*keys[start:start + 1000])
    finally:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    from connect_plugin_redis_store import RedisStore

    print(f"{args.sessions} session lives, {args.concurrency} at a time, through one store object")
    prefix = f"cp-bench:{secrets.token_hex(4)}:"
    name = f"cp_bench_{secrets.token_hex(3)}"
    postgres_admin(POSTGRES_URL, f'CREATE DATABASE "{name}"')
    postgres = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        migrate.upgrade(postgres)
        with tempfile.TemporaryDirectory() as folder:
            sqlite = f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
            migrate.upgrade(sqlite)
            runs = [
                ("redis", lambda: RedisStore(REDIS_URL, prefix=prefix, session_ttl=3600, pool_size=args.concurrency)),
                ("postgresql", lambda: SqlStore(postgres, pool_size=args.concurrency, timeout=5)),
                ("sqlite", lambda: SqlStore(sqlite, pool_size=args.concurrency, timeout=5)),
            ]
            for store_name, make in runs:
                asyncio.run(measure(store_name, make, args.sessions, args.concurrency))
    finally:
        postgres_admin(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        asyncio.run(delete_prefix(REDIS_URL, prefix))


if __name__ == "__main__":
    main()
