"""A lean asyncio HTTP/1.1 client for timing single requests, run in its own process.

wrk drives the peak load; this client measures what wrk's Lua cannot time
well: the latency of each endpoint on its own.  It writes requests by hand
on keep-alive connections and reads answers by ``Content-Length``, so it
spends tens of microseconds per request and leaves the server its core.

Three modes, each printing one JSON object on stdout:

``paced``
    whole sessions (start, result posted to ``attr_url``, link, session_info),
    a new one every ``1/rate`` seconds, on a pool of ``--connections``; p50,
    p99 and max per endpoint.
``serial``
    sessions without a result (start, link, session_info), one after
    another on one connection: the store's lookups, not the RSA key; with
    ``--also`` several servers take turns (1e3 against 1e6 stored sessions).
``trickle``
    one request every ``--interval`` seconds (start, link, session_info in
    turn), each on a free connection (more are opened while answers are
    late); after ``--lead`` seconds it sends ``GET /clean_db`` and keeps on
    until that answers, then ``--tail`` seconds more (what a store does once
    a cleanup is over, such as settling its log, counts too): the longest
    wait of any request while the cleanup runs and just after.

    python -m tests.bench.loadgen paced --port 8000 --rate 20 --seconds 10 --tokens FILE --prefix p1
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import re
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

START, RESULT, LINK, INFO = "start_communication", "session_result", "link_phone", "session_info"
_DTMF = re.compile(rb',(\d+)"')
_RESULT_PATH = re.compile(rb'(/session_result/[A-Za-z0-9]+)"')
MAX_PENDING = 200  # trickle: requests (and connections) waiting at once


class Connection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, body: bytes | None = None,
                      content_type: str = "application/json") -> tuple[int, bytes]:
        """Send one request and read its whole answer: ``(status, body)``.

        A keep-alive connection the server closed while idle is opened again
        once, before anything of the answer was read.
        """
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
        if body is not None:
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        data = (head + "\r\n").encode() + (body or b"")
        for attempt in (0, 1):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
            try:
                self.writer.write(data)
                return await self._answer()
            except (asyncio.IncompleteReadError, ConnectionError) as error:
                self.close()
                if attempt or (isinstance(error, asyncio.IncompleteReadError) and error.partial):
                    raise
        raise AssertionError("unreachable")

    async def _answer(self) -> tuple[int, bytes]:
        assert self.reader is not None
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        length = int(lower[at + 17:lower.index(b"\r\n", at + 2)]) if at >= 0 else 0
        payload = await self.reader.readexactly(length) if length else b""
        if b"\r\nconnection: close" in lower:
            self.close()
        return status, payload

    def close(self) -> None:
        """Drop the socket (a later request opens a new one)."""
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Recorder:
    """Latencies and unexpected answers, per endpoint."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.slowest: list[tuple[float, float, str]] = []  # (seconds waited, when it was sent, endpoint)

    async def timed(self, conn: Connection, name: str, method: str, path: str, body: bytes | None = None,
                    content_type: str = "application/json") -> tuple[int, bytes]:
        """Send a request and record its latency; a status other than 200 counts as an error."""
        began = time.perf_counter()
        status, payload = await conn.request(method, path, body, content_type)
        waited = time.perf_counter() - began
        self.samples[name].append(waited)
        self.slowest.append((waited, began, name))
        if len(self.slowest) > 64:
            self.slowest = sorted(self.slowest, reverse=True)[:8]
        if status != 200:
            self.errors[f"{name} {status}"] += 1
        return status, payload

    def summary(self) -> dict[str, Any]:
        """p50/p90/p99/max (ms) and count per endpoint, and the errors."""
        out: dict[str, Any] = {"endpoints": {}, "errors": dict(self.errors)}
        for name, values in self.samples.items():
            out["endpoints"][name] = percentiles(values)
        return out


def percentiles(values: list[float]) -> dict[str, float]:
    """Nearest-rank percentiles of latencies in seconds, as milliseconds."""
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)

    return {"n": len(ordered), "p50": at(0.50), "p90": at(0.90), "p99": at(0.99),
            "max": round(ordered[-1] * 1000, 2)}


def json_body(**fields: str) -> bytes:
    """A compact JSON request body."""
    return json.dumps(fields, separators=(",", ":")).encode()


async def session(conn: Connection, rec: Recorder, contact: str, token: bytes | None) -> bool:
    """One session: start, (result), link, session_info; False when a step failed."""
    status, payload = await rec.timed(conn, START, "POST", "/start_communication", json_body(purpose="report_move"))
    dtmf, result_path = _DTMF.search(payload), _RESULT_PATH.search(payload)
    if status != 200 or dtmf is None or result_path is None:
        return False
    if token is not None:
        status, _ = await rec.timed(conn, RESULT, "POST", result_path.group(1).decode(), token, "application/jwt")
        if status != 200:
            return False
    status, _ = await rec.timed(conn, LINK, "POST", "/link_phone",
                                json_body(dtmf=dtmf.group(1).decode(), sessionid=contact))
    if status != 200:
        return False
    status, _ = await rec.timed(conn, INFO, "GET", f"/session_info/{contact}")
    return status == 200


async def paced(args: argparse.Namespace) -> dict[str, Any]:
    """Sessions started at a fixed rate on a pool of connections."""
    tokens: list[bytes] = args.token_list
    total = max(1, int(args.rate * args.seconds))
    if args.tokens:
        total = min(total, len(tokens))
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(args.connections):
        pool.put_nowait(Connection(args.port))
    rec = Recorder()
    done = failed = 0
    late = 0.0

    async def one(k: int) -> None:
        nonlocal done, failed
        conn = await pool.get()
        try:
            ok = await session(conn, rec, f"{args.prefix}-{k}", tokens[k] if tokens else None)
        finally:
            pool.put_nowait(conn)
        done += ok
        failed += not ok

    began = time.perf_counter()
    tasks = []
    for k in range(total):
        wait = began + k / args.rate - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        else:
            late = max(late, -wait)
        tasks.append(asyncio.create_task(one(k)))
    await asyncio.gather(*tasks)
    wall = time.perf_counter() - began
    return {**rec.summary(), "sessions": done, "failed_sessions": failed, "seconds": round(wall, 2),
            "rate": round(done / wall, 1), "max_start_lag_ms": round(late * 1000, 1)}


async def serial(args: argparse.Namespace) -> dict[str, Any]:
    """Sessions without a result, one after another, on one connection per server.

    With ``--also PORT`` (servers over differently filled databases) the
    servers take turns, ``--rounds`` times, so that a noisy moment of a shared
    machine falls on all of them alike.  Returns one summary per server, in
    the order given.
    """
    ports = [args.port, *args.also]
    conns = [Connection(port) for port in ports]
    recs = [Recorder() for _ in ports]
    failed = [0 for _ in ports]
    for i, conn in enumerate(conns):
        warm = Recorder()
        for k in range(args.warmup):
            await session(conn, warm, f"{args.prefix}-{i}-w{k}", None)
    per_round = max(1, math.ceil(args.sessions / args.rounds))
    for r in range(args.rounds):
        for i, conn in enumerate(conns):
            for k in range(per_round):
                failed[i] += not await session(conn, recs[i], f"{args.prefix}-{i}-{r}-{k}", None)
    for conn in conns:
        conn.close()
    return {"servers": [{**rec.summary(), "failed_sessions": f} for rec, f in zip(recs, failed, strict=True)]}


async def trickle(args: argparse.Namespace) -> dict[str, Any]:
    """Steady requests around a ``GET /clean_db``; the longest wait of any of them."""
    idle: list[Connection] = []
    rec = Recorder()
    codes: list[str] = []
    linked: list[str] = []
    pending: dict[asyncio.Task[None], tuple[float, str]] = {}
    counter = itertools.count()

    async def one(kind: str) -> None:
        conn = idle.pop() if idle else Connection(args.port)
        try:
            if kind == LINK and codes:
                contact = f"{args.prefix}-{next(counter)}"
                status, _ = await rec.timed(conn, LINK, "POST", "/link_phone",
                                            json_body(dtmf=codes.pop(), sessionid=contact))
                if status == 200:
                    linked.append(contact)
            elif kind == INFO and linked:
                await rec.timed(conn, INFO, "GET", f"/session_info/{linked[-1]}")
            else:
                status, payload = await rec.timed(conn, START, "POST", "/start_communication",
                                                  json_body(purpose="report_move"))
                match = _DTMF.search(payload)
                if status == 200 and match:
                    codes.append(match.group(1).decode())
        except (OSError, asyncio.IncompleteReadError) as error:
            rec.errors[f"{kind} {type(error).__name__}"] += 1
            conn.close()
        idle.append(conn)

    cleanup: dict[str, Any] = {}

    async def clean() -> None:
        await asyncio.sleep(args.lead)
        began = time.perf_counter()
        conn = Connection(args.port)
        try:
            status, _ = await conn.request("GET", "/clean_db")
        except (OSError, asyncio.IncompleteReadError) as error:
            status = type(error).__name__  # type: ignore[assignment]
        cleanup.update(status=status, seconds=round(time.perf_counter() - began, 2))
        conn.close()

    cleaner = asyncio.create_task(clean())
    began = time.perf_counter()
    stop_at = began + args.max_seconds
    kinds = itertools.cycle((START, LINK, INFO))
    for tick in itertools.count():
        now = time.perf_counter()
        if now >= stop_at or (cleaner.done() and now >= began + args.lead + cleanup["seconds"] + args.tail):
            break
        if len(pending) < MAX_PENDING:  # beyond that the server is stalled: the waits are already recorded
            kind = next(kinds)
            task = asyncio.create_task(one(kind))
            pending[task] = (now, kind)
            task.add_done_callback(pending.pop)
        await asyncio.sleep(max(0.0, began + (tick + 1) * args.interval - time.perf_counter()))
    # Requests still unanswered at the end waited at least this long.
    ended = time.perf_counter()
    unanswered = [ended - t for t, _ in pending.values()]
    rec.slowest += [(ended - t, t, f"{kind} (unanswered)") for t, kind in pending.values()]
    for task in list(pending):
        task.cancel()
    if not cleaner.done():
        cleaner.cancel()
        cleanup.update(status="no answer", seconds=round(time.perf_counter() - began - args.lead, 2))
    summary = rec.summary()
    waits = [v["max"] for v in summary["endpoints"].values()] + [u * 1000 for u in unanswered]
    slowest = [{"ms": round(w * 1000, 1), "at_s": round(at - began - args.lead, 2), "endpoint": name}
               for w, at, name in sorted(rec.slowest, reverse=True)[:8]]
    return {**summary, "max_wait_ms": round(max(waits, default=0.0), 1), "unanswered": len(unanswered),
            "clean_db": cleanup, "slowest": slowest}


def main() -> None:
    """Parse the mode and its options, run it, print its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("paced", "serial", "trickle"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--prefix", default="lg", help="contact ids are <prefix>-<n>: make it unique per run")
    parser.add_argument("--rate", type=float, default=10.0, help="paced: sessions per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="paced: how long")
    parser.add_argument("--tokens", help="paced: file of auth-result tokens, one per line, one per session")
    parser.add_argument("--connections", type=int, default=8, help="paced: connection pool size")
    parser.add_argument("--sessions", type=int, default=300, help="serial: timed sessions")
    parser.add_argument("--warmup", type=int, default=30, help="serial: untimed sessions first, per server")
    parser.add_argument("--also", type=int, action="append", default=[], metavar="PORT",
                        help="serial: another server to take turns with")
    parser.add_argument("--rounds", type=int, default=10, help="serial: turns per server")
    parser.add_argument("--interval", type=float, default=0.01, help="trickle: seconds between requests")
    parser.add_argument("--lead", type=float, default=1.0, help="trickle: seconds before the cleanup")
    parser.add_argument("--tail", type=float, default=5.0, help="trickle: seconds after the cleanup answered")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="trickle: hard stop")
    args = parser.parse_args()
    args.token_list = Path(args.tokens).read_bytes().split() if args.tokens else []
    result = asyncio.run({"paced": paced, "serial": serial, "trickle": trickle}[args.mode](args))
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
