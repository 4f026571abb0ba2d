"""Benchmark (not a test): request latency of a real plugin process, 1 client against 16.

Starts ``connect-plugin serve`` on an SQLite file (``--postgres URL`` for the
PostgreSQL server instead), then times, over loopback:

* ``GET /health`` (no database write: the baseline of the HTTP path itself),
* ``POST /start_communication`` (one INSERT),
* ``POST /link_phone`` (one conditional UPDATE),
* ``GET /session_info`` (one SELECT),

with 1 client, then with 16 clients at once.  It prints p50/p95/p99/max and
the ratio of each write's p99 at 16 clients to the baseline's p99 at 16
clients: writes that fought over the SQLite lock would show as a ratio far
above 1 and a max in seconds.

    .venv/bin/python -m tests.bench.bench_http [--requests 400] [--postgres URL]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import tempfile
import time
from pathlib import Path

from tornado.httpclient import AsyncHTTPClient

from tests.support import Api, PluginProcess, dtmf_of, rsa_keyset, write_config

CONCURRENCY = (1, 16)


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p95/p99/max in milliseconds."""
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"p50": at(0.50), "p95": at(0.95), "p99": at(0.99), "max": ordered[-1] * 1000}


async def measure(clients: int, total: int, one_call) -> tuple[list[float], float]:
    """Run ``total`` calls spread over ``clients`` concurrent loops; latencies and wall time."""
    counter = itertools.count()
    latencies: list[float] = []

    async def loop() -> None:
        while (i := next(counter)) < total:
            began = time.perf_counter()
            status = await one_call(i)
            latencies.append(time.perf_counter() - began)
            if status >= 500:
                raise RuntimeError(f"server error {status}")

    began = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(clients)))
    return latencies, time.perf_counter() - began


async def run(requests: int, database_url: str | None) -> None:
    AsyncHTTPClient.configure(None, max_clients=64)
    workdir = Path(tempfile.mkdtemp(prefix="bench-http-"))
    settings = {"database_url": database_url or f"sqlite:///{workdir / 'bench.sqlite3'}", "log_level": "critical",
                "dtmf_length": 12}
    server = PluginProcess(write_config(workdir / "bench.toml", rsa_keyset(), **settings), log_dir=workdir).start()
    api = Api(server.base_url)
    try:
        print(f"store: {'PostgreSQL' if database_url else 'SQLite (WAL, one writer connection)'}; "
              f"{requests} requests per row; latencies in ms")
        print(f"{'endpoint':<22}{'clients':>8}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}{'req/s':>9}")
        table: dict[tuple[str, int], dict[str, float]] = {}
        for clients in CONCURRENCY:
            codes: list[str] = []
            prefix = f"{clients:02d}"

            async def health(_i: int) -> int:
                return (await api.call("GET", "/health")).status

            async def start(_i: int, codes: list[str] = codes) -> int:
                response = await api.start("report_move")
                codes.append(dtmf_of(response))
                return response.status

            async def link(i: int, codes: list[str] = codes, prefix: str = prefix) -> int:
                return (await api.link(codes[i], f"bench-{prefix}-{i}")).status

            async def info(i: int, prefix: str = prefix) -> int:
                return (await api.info(f"bench-{prefix}-{i}")).status

            for name, call in (("GET /health", health), ("POST /start_comm.", start),
                               ("POST /link_phone", link), ("GET /session_info", info)):
                latencies, wall = await measure(clients, requests, call)
                row = percentiles(latencies)
                table[(name, clients)] = row
                print(f"{name:<22}{clients:>8}{row['p50']:>9.2f}{row['p95']:>9.2f}{row['p99']:>9.2f}"
                      f"{row['max']:>9.2f}{requests / wall:>9.0f}")
        base = table[("GET /health", 16)]["p99"]
        for name in ("POST /start_comm.", "POST /link_phone", "GET /session_info"):
            row = table[(name, 16)]
            print(f"{name}: p99 at 16 clients = {row['p99'] / base:.2f} x /health's p99 at 16 clients; "
                  f"max {row['max']:.1f} ms")
        single = statistics.median(table[(n, 1)]["p50"] for n in ("POST /start_comm.", "POST /link_phone"))
        print(f"median write p50 with 1 client: {single:.2f} ms")
    finally:
        server.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per endpoint and concurrency")
    parser.add_argument("--postgres", metavar="URL", help="measure on this PostgreSQL database instead of SQLite")
    args = parser.parse_args()
    asyncio.run(run(args.requests, args.postgres))


if __name__ == "__main__":
    main()
