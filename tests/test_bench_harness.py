"""The benchmark's tools (``tests/bench``) work: its bulk loader, and a whole run with tiny counts.

``tox -e perf`` bulk-loads a million sessions straight into the table; when
the schema changes, the first test says so before a benchmark run does.  The
smoke run (about 15 s) checks that every phase runs and that the server
accepted every request; it asserts no timing.  It needs wrk: skipped where
wrk is missing, unless ``CI`` is set (``.ci/run`` installs it).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from connect_plugin.model import FailureWindow, StoredSession
from connect_plugin.stores.sql import SqlStore
from tests.bench import bulk
from tests.support import ROOT

REQUIRE_WRK = bool(os.environ.get("CI"))


def test_bulk_loaded_sessions_are_found_linked_and_deleted_by_the_store(database_url: str) -> None:
    now = time.time()
    bulk.load(database_url, 0, 50, now)
    assert bulk.count(database_url) == 50

    async def check() -> None:
        store = SqlStore(database_url)
        await store.open()
        try:
            stored = await store.find_by_contact("bulk-7")
            assert stored == StoredSession(purpose="report_move", auth_result=None)
            # The same code and contact again: the store finds the row by its code (and marks it active).
            await store.link(bulk.code_key(7), "bulk-7", now, FailureWindow(ends=int(now) + 60, budget=60))
            assert await store.delete_idle(now - 3600, 1000) == 49
        finally:
            await store.close()

    asyncio.run(check())


@pytest.mark.skipif(shutil.which("wrk") is None and not REQUIRE_WRK, reason="wrk missing: apt-get install wrk")
def test_perf_smoke_run_measures_every_figure_without_an_unexpected_answer(tmp_path: Path) -> None:
    out = tmp_path / "perf.json"
    done = subprocess.run([sys.executable, "-m", "tests.bench.perf", "--smoke", "--only", "sqlite", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Targets (issue 12)" in done.stdout
    figures = json.loads(out.read_text())
    sqlite = figures["sqlite"]
    assert sqlite["bounds"]["B"] > 0
    # Every request of every phase got the answer a correct client gets: the harness speaks the protocol.
    assert sqlite["wrk"]["sessions"] > 0
    assert (sqlite["wrk"]["errors"], sqlite["wrk"]["socket_errors"], sqlite["wrk"]["dry_threads"]) == (0, 0, 0)
    assert set(sqlite["paced"]["endpoints"]) == {"start_communication", "session_result", "link_phone", "session_info"}
    assert sqlite["paced"]["errors"] == {}
    for size in ("small", "large"):
        assert sqlite["scale"][size]["errors"] == {}
        assert sqlite["scale"][size]["failed_sessions"] == 0
    cleanup = sqlite["scale"]["cleanup"]
    assert cleanup["clean_db"]["status"] == 200
    assert cleanup["errors"] == {}
    assert cleanup["rows_after"] < cleanup["rows_before"] - 300 // 2  # the idle bulk sessions were deleted
    rss = figures["rss"]
    assert rss["sessions"] > 0
    assert rss["errors"] == 0
    assert rss["clean_db_status"] == 200
    assert rss["start_mb"] > 0
    # PSS counts shared pages once: never above the summed RSS, and not nothing.
    assert all(0 < pss <= total for pss, total in zip(rss["pss_mb"], (rss["start_mb"], rss["after_sessions_mb"],
                                                                     rss["after_cleanup_mb"]), strict=True))
    assert figures["start"]["median_s"] > 0
    assert {t["figure"] for t in figures["targets"]} >= {
        "SQLite: sessions/s / B", "SQLite: /link_phone p99 at half peak (ms)",
        "SQLite: longest wait during cleanup (ms)", "RSS after cleanup vs start", "start to first answer (s, median)",
    }
