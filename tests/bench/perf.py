"""``tox -e perf``: issue 12's benchmark of the real ``connect-plugin serve``, with its targets.

In one run, on 127.0.0.1 only:

* per database (SQLite file, PostgreSQL): the bounds, a bare Tornado JSON
  POST handler driven by wrk (``bare_rps``) and a bare pycryptodome RSA-OAEP
  decryption loop with the plugin's key (``rsa_per_s``), just before and just
  after whole sessions driven by wrk at 8 connections, one session at a time
  per connection: sessions/s and their ratio to
  ``B = 1 / (4 / bare_rps + 2 / rsa_per_s)``; then per-endpoint p50/p99 from ``loadgen`` paced at half that peak;
  ``session_info`` and link p50 at 1e3 and 1e6 stored sessions (bulk-loaded);
  the longest wait of a steady trickle of requests while ``GET /clean_db``
  removes the 1e6 idle sessions;
* on the first database: the server's RSS at start, after 100,000 sessions
  and after their cleanup; the time from process start to first answer.

    python -m tests.bench.perf [--only sqlite|postgres] [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from tests.bench import bulk, harness
from tests.bench.bare import rsa_per_second
from tests.bench.loadgen import INFO, LINK
from tests.bench.report import render, targets

ADMIN_POSTGRES = os.environ.get("CONNECT_PLUGIN_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
WORKERS_READY = 1.5  # seconds after the first answer by which the crypto workers have started and loaded their keys
CLEANUP_INTERVAL = 300  # the server's periodic cleanup: it must not run inside a phase (they are shorter)


@dataclass(frozen=True)
class Counts:
    """How long and how much each phase measures."""

    bare_seconds: float
    rsa_seconds: float
    warm_seconds: float
    peak_seconds: float
    paced_seconds: float
    serial_sessions: int
    scale_small: int
    scale_large: int
    rss_sessions: int
    rss_max_seconds: float
    starts: int
    trickle_lead: float = 1.0
    trickle_tail: float = 5.0  # past the SQLite checkpointer's interval: a store settling after a cleanup counts
    bound_after: bool = True  # measure B again after the peak run (the smoke run saves the seconds)


FULL = Counts(bare_seconds=5, rsa_seconds=2, warm_seconds=3, peak_seconds=20, paced_seconds=15,
              serial_sessions=300, scale_small=1_000, scale_large=1_000_000, rss_sessions=100_000,
              rss_max_seconds=270, starts=5)
QUICK = Counts(bare_seconds=2, rsa_seconds=1, warm_seconds=2, peak_seconds=4, paced_seconds=4,
               serial_sessions=60, scale_small=1_000, scale_large=20_000, rss_sessions=100_000,
               rss_max_seconds=20, starts=2)
SMOKE = Counts(bare_seconds=1, rsa_seconds=0.3, warm_seconds=1, peak_seconds=1, paced_seconds=1,
               serial_sessions=4, scale_small=100, scale_large=300, rss_sessions=100_000,
               rss_max_seconds=1, starts=1, trickle_lead=0.3, trickle_tail=0.3, bound_after=False)


def code_version() -> str:
    """``git describe`` of the code measured (``unknown`` outside a git checkout)."""
    try:
        done = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=harness.HERE, capture_output=True,
                              text=True, timeout=10, check=False)
    except OSError:
        return "unknown"
    return done.stdout.strip() or "unknown"


def progress(text: str) -> None:
    """One line of progress on stderr (the report goes to stdout)."""
    print(f"# {time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- phases


def bounds(space: harness.Workspace, counts: Counts) -> dict[str, float]:
    """One measurement of ``bare_rps`` and ``rsa_per_s``, and the ``B`` they give."""
    rsa = rsa_per_second(space.decrypt_key, counts.rsa_seconds)
    with harness.bare_server() as port:
        if counts.bare_seconds >= 3:
            harness.wrk(port, "bare.lua", 1)  # warm-up
        run = harness.wrk(port, "bare.lua", counts.bare_seconds)
    bare = run["requests"] / run["seconds"]
    return {"bare_rps": round(bare, 1), "rsa_per_s": round(rsa, 1), "B": round(bound_of(bare, rsa), 1),
            "bare_errors": run["errors"]}


def bound_of(bare_rps: float, rsa_per_s: float) -> float:
    """B: sessions/s of one core that does nothing but 4 bare requests and 2 RSA decryptions per session."""
    return 1 / (4 / bare_rps + 2 / rsa_per_s)


def throughput(space: harness.Workspace, db: str, url: str, counts: Counts) -> dict[str, Any]:
    """Peak sessions/s with wrk between two measurements of B, then per-endpoint latency paced at half that peak.

    B is measured just before and just after the peak run and the two are
    averaged, so that the ratio compares figures of the same minutes of a
    shared machine; their spread shows how noisy those minutes were.
    """
    load = harness.load_average()
    before = bounds(space, counts)
    server = harness.Server(space.config(f"{db}-peak", url), log_dir=space.root).start_healthy()
    try:
        def pool(name: str, sessions: float) -> str:
            tokens = harness.mint_tokens(space, math.ceil(sessions) + 8, f"{db}-{name}")
            return str(harness.token_files(space.root / f"tokens-{db}-{name}", tokens))

        warm = harness.wrk(server.port, "session.lua", counts.warm_seconds,
                           pool("warm", counts.warm_seconds * before["B"] * 1.5), f"{db}-warm")
        warm_rate = warm["sessions"] / warm["seconds"]
        # Enough for three times the warm-up's rate or B itself, whichever is more (a noisy warm-up is slow).
        tokens = pool("peak", counts.peak_seconds * max(warm_rate * 3, before["B"], 8))
        progress(f"{db}: warm-up {warm_rate:.1f} sessions/s; peak run of {counts.peak_seconds:.0f} s")
        peak = harness.wrk(server.port, "session.lua", counts.peak_seconds, tokens, f"{db}-peak")
        rate = peak["sessions"] / peak["seconds"]
        after = bounds(space, counts) if counts.bound_after else before
        half = max(rate / 2, 0.5)
        progress(f"{db}: peak {rate:.1f} sessions/s, B {before['B']} / {after['B']}; "
                 f"latency paced at {half:.1f} sessions/s")
        paced_tokens = harness.mint_tokens(space, math.ceil(half * counts.paced_seconds) + 2, f"{db}-paced")
        token_file = space.root / f"tokens-{db}-paced.txt"
        token_file.write_text("\n".join(paced_tokens) + "\n")
        paced = harness.loadgen("paced", server.port, "--rate", f"{half:.3f}", "--seconds", str(counts.paced_seconds),
                                "--tokens", str(token_file), "--prefix", f"{db}-paced")
    finally:
        server.terminate()
    bare = (before["bare_rps"] + after["bare_rps"]) / 2
    rsa = (before["rsa_per_s"] + after["rsa_per_s"]) / 2
    bound = bound_of(bare, rsa)
    return {"bounds": {"bare_rps": round(bare, 1), "rsa_per_s": round(rsa, 1), "B": round(bound, 1),
                       "before": before, "after": after},
            "loadavg_before": load, "sessions_per_s": round(rate, 1), "ratio": round(rate / bound, 3), "wrk": peak,
            "warm_sessions_per_s": round(warm_rate, 1), "paced": paced}


def scale_and_cleanup(space: harness.Workspace, db: str, urls: tuple[str, str], counts: Counts) -> dict[str, Any]:
    """Lookup p50 at ``scale_small`` against ``scale_large`` stored sessions; the longest wait during cleanup.

    Two servers, one over each database of ``urls``, take turns with the
    same client, so that the machine's noise falls on both figures alike.
    Then the large one's idle sessions are cleaned up under a trickle of
    requests.  All of it happens within the servers' first cleanup interval.
    """
    small_url, large_url = urls
    config = {"cleanup_interval": CLEANUP_INTERVAL}
    small_server = harness.Server(space.config(f"{db}-small", small_url, **config), log_dir=space.root)
    large_server = harness.Server(space.config(f"{db}-large", large_url, **config), log_dir=space.root)
    began = time.monotonic()
    try:
        small_server.start_healthy()
        large_server.start_healthy()
        time.sleep(0.5)  # the servers' start-up cleanups run (on empty tables) before any bulk row exists
        now = time.time()
        bulk.load(small_url, 0, counts.scale_small, now)
        progress(f"{db}: bulk-loading {counts.scale_large:,} sessions")
        loading = time.monotonic()
        bulk.load(large_url, 0, counts.scale_large, now)
        load_seconds = time.monotonic() - loading
        small, large = harness.loadgen("serial", small_server.port, "--also", str(large_server.port),
                                       "--sessions", str(counts.serial_sessions),
                                       "--warmup", str(min(30, counts.serial_sessions)),
                                       "--prefix", f"{db}-scale")["servers"]
        small_server.terminate()
        rows_before = bulk.count(large_url)
        progress(f"{db}: cleanup of {rows_before:,} sessions under a trickle of requests")
        trickle = harness.loadgen("trickle", large_server.port, "--prefix", f"{db}-trickle", "--max-seconds", "180",
                                  "--lead", str(counts.trickle_lead), "--tail", str(counts.trickle_tail),
                                  timeout=300)
        rows_after = bulk.count(large_url)
        inside = time.monotonic() - began < CLEANUP_INTERVAL - 5
    finally:
        small_server.terminate()
        large_server.terminate()

    def p50(run: dict[str, Any], endpoint: str) -> float:
        return run["endpoints"][endpoint]["p50"]

    return {
        "small": {"stored": counts.scale_small, **small}, "large": {"stored": counts.scale_large, **large},
        "info_ratio": round(p50(large, INFO) / p50(small, INFO), 2),
        "link_ratio": round(p50(large, LINK) / p50(small, LINK), 2),
        "bulk_load_seconds": round(load_seconds, 1),
        "cleanup": {**trickle, "rows_before": rows_before, "rows_after": rows_after,
                    "no_periodic_cleanup_in_phase": inside},
    }


def memory(space: harness.Workspace, db: str, url: str, counts: Counts, rate: float) -> dict[str, Any]:
    """RSS at start, after ``rss_sessions`` whole sessions (or as many as fit) and after their cleanup.

    RSS is the server's and its crypto workers', added up (``main_mb`` has the
    server process's own, and ``pss_mb`` the processes' PSS added up, at the
    same three moments).

    ``rate`` is the peak measured before: it sizes the token pool and the run,
    which stops at ``rss_sessions`` or after ``rss_max_seconds`` (by default
    inside the server's first cleanup interval).  RSS is sampled during the
    run; when the count is not reached, the RSS at ``rss_sessions`` is
    projected from the growth over the second half of the run.
    """
    seconds = min(counts.rss_max_seconds, counts.rss_sessions / max(rate, 1.0) * 1.1 + 2)
    threads = 8
    per_thread = math.ceil(counts.rss_sessions / threads)
    pool = min(per_thread, math.ceil(seconds * max(rate, 1.0) * 1.5 / threads) + 4) * threads
    progress(f"{db}: minting {pool:,} tokens for the RSS run of up to {seconds:.0f} s")
    tokens = harness.token_files(space.root / f"tokens-{db}-rss", harness.mint_tokens(space, pool, f"{db}-rss"))
    server = harness.Server(space.config(f"{db}-rss", url, session_ttl=1, cleanup_interval=CLEANUP_INTERVAL),
                            log_dir=space.root).start_healthy()
    try:
        time.sleep(WORKERS_READY)
        workers = server.workers()
        at_start = server.footprint()
        with harness.RssSampler(server.total_rss_mb) as samples:
            run = harness.wrk(server.port, "session.lua", seconds, str(tokens), f"{db}-rss", str(per_thread))
        after = server.footprint()
        time.sleep(1.2)  # session_ttl = 1: every session is idle now
        status, clean_seconds = get(server.port, "/clean_db")
        time.sleep(0.5)
        cleaned = server.footprint()
    finally:
        server.terminate()
    done = run["sessions"]
    moments = list(zip(at_start, after, cleaned, strict=True))  # (start, after, cleaned) of each measure
    projected = after[0]
    if done < counts.rss_sessions and len(samples) >= 4:
        # Sessions came at a steady rate: time stands for sessions.  Slope over the second half.
        half = samples[len(samples) // 2:]
        slope = harness.slope([t for t, _ in half], [mb for _, mb in half])  # MB per second
        projected = after[0] + slope * (counts.rss_sessions - done) / max(done / run["seconds"], 1e-9)
    total, main, pss = ([round(mb, 1) for mb in measure] for measure in moments)
    return {"workers": workers, "main_mb": main, "pss_mb": pss,
            "start_mb": total[0], "sessions": done, "after_sessions_mb": total[1],
            "projected_mb": round(projected, 1), "target_sessions": counts.rss_sessions,
            "after_cleanup_mb": total[2], "clean_db_status": status,
            "clean_db_seconds": round(clean_seconds, 2), "errors": run["errors"], "dry_threads": run["dry_threads"],
            "samples": [(round(t, 1), round(mb, 1)) for t, mb in samples]}


def startup(space: harness.Workspace, db: str, url: str, counts: Counts) -> dict[str, Any]:
    """Seconds from process start to the first ``/health`` answer: a first start, then ``starts`` more."""
    config = space.config(f"{db}-start", url)
    first = harness.start_to_first_answer(config, space.root)
    times = [harness.start_to_first_answer(config, space.root) for _ in range(counts.starts)]
    return {"first_start_s": round(first, 3), "median_s": round(statistics.median(times), 3),
            "starts_s": [round(t, 3) for t in times]}


def get(port: int, path: str) -> tuple[int, float]:
    """One ``GET`` on loopback: status and seconds."""
    began = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    try:
        conn.request("GET", path)
        status = conn.getresponse().status
    finally:
        conn.close()
    return status, time.perf_counter() - began


# --------------------------------------------------------------------------- the run


def run(args: argparse.Namespace, counts: Counts, root: Path) -> dict[str, Any]:
    """The whole benchmark in a scratch folder ``root`` (keys, configurations, SQLite files, logs)."""
    space = harness.Workspace(root)
    try:
        return measure(args, counts, space)
    finally:
        space.close()


def measure(args: argparse.Namespace, counts: Counts, space: harness.Workspace) -> dict[str, Any]:
    """Every phase for the chosen databases; the figures as one dict, with the targets checked."""
    results: dict[str, Any] = {
        "meta": {"mode": args.mode, "code": code_version(), "databases": args.only,
                 "loadavg_before": harness.load_average(), "cpus": os.cpu_count(),
                 "started": time.strftime("%Y-%m-%d %H:%M:%S"), "counts": asdict(counts)},
    }
    for position, db in enumerate(args.only):
        with fresh_database(db, args, space, "peak") as url:
            progress(f"{db}: B, then peak sessions/s, then B again")
            results[db] = throughput(space, db, url, counts)
        with fresh_database(db, args, space, "small") as small, fresh_database(db, args, space, "large") as large:
            progress(f"{db}: {counts.scale_small:,} against {counts.scale_large:,} stored sessions")
            results[db]["scale"] = scale_and_cleanup(space, db, (small, large), counts)
        if position == 0:
            with fresh_database(db, args, space, "rss") as url:
                progress(f"{db}: RSS over {counts.rss_sessions:,} sessions")
                results["rss"] = {"database": db, **memory(space, db, url, counts, results[db]["sessions_per_s"])}
            with fresh_database(db, args, space, "start") as url:
                progress(f"{db}: start to first answer")
                results["start"] = {"database": db, **startup(space, db, url, counts)}
    results["meta"]["loadavg_after"] = harness.load_average()
    results["targets"] = targets(results)
    return results


@contextmanager
def fresh_database(db: str, args: argparse.Namespace, space: harness.Workspace, phase: str) -> Iterator[str]:
    """A fresh database for one phase: an SQLite file, or a throwaway PostgreSQL database; yields its URL."""
    if db == "postgres":
        with harness.postgres_database(args.postgres, space, phase) as url:
            yield url
        return
    path = space.root / f"{phase}.sqlite3"
    try:
        yield f"sqlite:///{path}"
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    """Parse options, run, print the report, write the JSON."""
    parser = argparse.ArgumentParser(prog="tox -e perf --", description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("sqlite", "postgres"), action="append",
                        help="measure on this database only (repeatable; default: both)")
    parser.add_argument("--quick", action="store_const", const="quick", dest="mode",
                        help="smaller counts for a smoke run (about 2 minutes; figures are rough)")
    parser.add_argument("--smoke", action="store_const", const="smoke", dest="mode",
                        help="tiny counts: checks that the harness works, figures mean nothing")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to this JSON file")
    parser.add_argument("--postgres", metavar="URL", default=ADMIN_POSTGRES,
                        help="PostgreSQL server on 127.0.0.1 (a throwaway database is made on it)")
    parser.add_argument("--rss-seconds", type=float, metavar="S",
                        help="let the RSS run last up to S seconds (default 270): enough to really serve "
                             "100,000 sessions at 100,000 / S sessions/s; the server's own cleanup then runs too")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (logs, configurations)")
    parser.set_defaults(mode="full")
    args = parser.parse_args(argv)
    harness.require_wrk()
    harness.loopback_only(args.postgres)
    args.only = list(dict.fromkeys(args.only or ["sqlite", "postgres"]))
    if "postgres" in args.only and not harness.postgres_reachable(args.postgres):
        if args.only == ["postgres"]:
            raise SystemExit(f"PostgreSQL does not answer at {args.postgres}")
        print(f"PostgreSQL does not answer at {args.postgres}: measuring SQLite only", file=sys.stderr)
        args.only.remove("postgres")
    counts = {"full": FULL, "quick": QUICK, "smoke": SMOKE}[args.mode]
    if args.rss_seconds:
        counts = replace(counts, rss_max_seconds=args.rss_seconds)
    root = Path(tempfile.mkdtemp(prefix="connect-plugin-perf-"))
    try:
        results = run(args, counts, root)
    except BaseException:
        print(f"scratch folder kept for the logs: {root}", file=sys.stderr)
        raise
    print(render(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    if args.keep:
        print(f"scratch folder: {root}", file=sys.stderr)
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
