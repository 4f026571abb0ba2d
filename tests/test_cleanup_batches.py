"""Cleanup deletes in bounded batches: no statement deletes more than ``CLEANUP_BATCH`` rows, and all go."""

from __future__ import annotations

import secrets
import time

import pytest
from sqlalchemy import insert

from connect_plugin.service import CLEANUP_BATCH
from connect_plugin.stores.engine import make_engine
from connect_plugin.stores.schema import link_failure_table, session_table, used_token_table
from connect_plugin.stores.sql import SqlStore
from tests.support import count_rows


async def fill(url: str, sessions: int, tokens: int, windows: int, at: float) -> None:
    engine = make_engine(url, pool_size=1, timeout=30)
    try:
        async with engine.begin() as conn:
            await conn.execute(insert(session_table), [
                {"code_key": secrets.token_hex(32), "result_key": secrets.token_hex(32), "purpose": "idle",
                 "created_at": at, "last_activity": at} for _ in range(sessions)])
            await conn.execute(insert(used_token_table), [
                {"replay_key": secrets.token_hex(32), "expires_at": at} for _ in range(tokens)])
            await conn.execute(insert(link_failure_table), [
                {"window_end": int(at) - 60 * i, "failures": 1} for i in range(windows)])
    finally:
        await engine.dispose()


@pytest.mark.gen_test(timeout=120)
async def test_a_store_deletes_at_most_a_batch_per_call(database_url):
    long_ago = time.time() - 10 * 3600
    await fill(database_url, sessions=CLEANUP_BATCH + 500, tokens=CLEANUP_BATCH + 200, windows=3, at=long_ago)
    store = SqlStore(database_url)  # no running plugin: its own periodic cleanup would join in
    await store.open()
    try:
        assert await store.delete_idle(time.time(), CLEANUP_BATCH) == CLEANUP_BATCH
        assert await store.delete_expired(time.time(), CLEANUP_BATCH) == CLEANUP_BATCH  # 3 windows, 997 tokens
    finally:
        await store.close()
    assert await count_rows(database_url, "comm_session") == 500
    assert await count_rows(database_url, "comm_used_token") == 203


@pytest.mark.gen_test(timeout=120)
async def test_clean_db_removes_every_idle_session_and_ended_record_over_several_batches(api, database_url):
    long_ago = time.time() - 10 * 3600
    await fill(database_url, sessions=2 * CLEANUP_BATCH + 300, tokens=CLEANUP_BATCH + 1, windows=5, at=long_ago)
    fresh = await api.start("report_move")
    assert (await api.call("GET", "/clean_db")).status == 200
    assert await count_rows(database_url, "comm_session") == 1
    assert await count_rows(database_url, "comm_used_token") == 0
    assert await count_rows(database_url, "comm_link_failure") == 0
    assert fresh.status == 200
