"""Reading tokens in worker processes: the RSA work off the event loop's process, on every core.

A token read is mostly RSA, and pycryptodome's RSA is many short calls into C
with Python in between: on a thread of the plugin's process, that Python
competes with the event loop for the interpreter lock, and each hand-off back
costs both of them time.  ``CryptoPool`` runs ``crypto_workers`` processes
(``crypto_worker``) instead, each reached over a private socket pair that the
event loop itself reads: a read is one message out and one back, with no
thread in between.

The pool never stands in the way of an answer.  It is ready when its first
worker is (a worker takes a few hundred milliseconds to start, after the
plugin already answers); until then, and whenever a worker is lost with a read
under way, the flow service reads the token on its own threads, as it does
with ``crypto_workers = 0``.  A worker that exits is started again a second
later (later still while new ones keep exiting before they are ready).  Key
material goes to a worker over the socket pair, never on its command line, in
its environment or in a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import socket
import subprocess
import sys
from typing import Any, cast

from .crypto_worker import HEADER, MAX_MESSAGE, frame, result_from_wire, verified_from_wire
from .errors import InvalidToken
from .keys import PrivateKey, PublicKey
from .model import AuthResult
from .tokens import TokenPolicy, VerifiedToken

log = logging.getLogger(__name__)

#: Seconds between a worker's exit and the start of the one that replaces it; doubled (up to
#: ``MAX_RESTART_DELAY``) each time a worker exits before it was ever ready, so a worker that
#: cannot start at all fills no log.
RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 60.0
#: Seconds a stopping worker gets to exit once its socket is closed, before it is killed.
STOP_GRACE = 2.0


class WorkerLost(Exception):
    """The worker reading a token exited before it answered (the caller reads the token itself)."""


class _Channel(asyncio.Protocol):
    """The event loop's end of one worker's socket pair: whole messages in, to ``_Worker``."""

    def __init__(self, worker: _Worker) -> None:
        self.worker = worker
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= HEADER.size:
            (length,) = HEADER.unpack_from(self.buffer)
            if length > MAX_MESSAGE:
                self.worker.fail("an oversized message")
                return
            end = HEADER.size + length
            if len(self.buffer) < end:
                return
            body = bytes(self.buffer[HEADER.size:end])
            del self.buffer[:end]
            self.worker.on_message(body)

    def connection_lost(self, exc: Exception | None) -> None:
        self.worker.on_lost()


class _Worker:
    """One worker process, its socket and the reads waiting for its answers."""

    def __init__(self, pool: CryptoPool, number: int) -> None:
        self.pool = pool
        self.number = number
        self.proc: subprocess.Popen[bytes] | None = None
        self.transport: asyncio.Transport | None = None
        self.ready = False
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.reads = 0  # answers received, over the worker's lives
        self.restart_delay = RESTART_DELAY

    async def start(self) -> None:
        """Start the process and send it its keys; ``ready`` once it says so."""
        loop = asyncio.get_running_loop()
        ours, self.proc = _spawn()
        ours.setblocking(False)
        transport, _ = await loop.create_unix_connection(lambda: _Channel(self), sock=ours)
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(frame(self.pool.setup_message()))

    def on_message(self, body: bytes) -> None:
        try:
            message = json.loads(body)
        except ValueError:
            self.fail("an unreadable message")
            return
        if message.get("ready") is True:
            self.ready = True
            self.restart_delay = RESTART_DELAY
            self.pool.worker_ready(self)
            return
        future = self.pending.pop(message.get("id"), None)
        self.reads += 1
        if future is not None and not future.done():
            future.set_result(message)

    def fail(self, why: str) -> None:
        """The worker broke the protocol: drop it (it is replaced like one that exited)."""
        log.error("crypto worker %d sent %s; stopping it", self.number, why)
        if self.transport is not None:
            self.transport.abort()

    def on_lost(self) -> None:
        if not self.ready:  # it never got going: wait longer before the next try
            self.restart_delay = min(self.restart_delay * 2, MAX_RESTART_DELAY)
        self.ready = False
        self.transport = None
        for future in self.pending.values():
            if not future.done():
                future.set_exception(WorkerLost())
        self.pending.clear()
        self.pool.worker_lost(self)

    async def call(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send one request and wait for its answer (``WorkerLost`` if the worker goes first)."""
        if self.transport is None:
            raise WorkerLost()
        ident = next(self.pool.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[ident] = future
        request["id"] = ident
        self.transport.write(frame(request))
        return await future

    async def stop(self) -> None:
        """Close the socket (the worker exits at its end of it); kill it if it lingers."""
        if self.transport is not None:
            self.transport.close()
        proc, self.proc = self.proc, None
        if proc is None:
            return
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, proc.wait, STOP_GRACE)
        except subprocess.TimeoutExpired:
            proc.kill()
            await loop.run_in_executor(None, proc.wait)


def _spawn() -> tuple[socket.socket, subprocess.Popen[bytes]]:
    """Start one worker process: our end of its socket pair, and the process (a fork and exec: milliseconds).

    ``-P``: the working directory is not put on the worker's ``sys.path``, so a
    checkout of the source where the service happens to be started (as in the
    README's run command) never stands in for the installed package.
    """
    ours, theirs = socket.socketpair()
    try:
        proc = subprocess.Popen(  # noqa: S603 (this interpreter and this package's module; no outside input)
            [sys.executable, "-P", "-m", "connect_plugin.crypto_worker", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        )
    except OSError:
        ours.close()
        raise
    finally:
        theirs.close()
    return ours, proc


class CryptoPool:
    """``count`` crypto worker processes reading tokens with the plugin's keys and ``policy``."""

    def __init__(self, count: int, decryption_key: PrivateKey, signature_key: PublicKey,
                 policy: TokenPolicy) -> None:
        self._decryption_key = decryption_key
        self._signature_key = signature_key
        self._policy = policy
        self.workers = [_Worker(self, number) for number in range(count)]
        self.ids = itertools.count()
        self._closing = False
        self._restarts: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"CryptoPool({len(self.workers)} workers, {sum(w.ready for w in self.workers)} ready)"

    def setup_message(self) -> dict[str, Any]:
        """A worker's first message: the keys (PEM) and the token policy."""
        return {"decryption_key": [self._decryption_key.kind, self._decryption_key.pem],
                "signature_key": [self._signature_key.kind, self._signature_key.pem],
                "policy": dataclasses.asdict(self._policy)}

    async def start(self) -> None:
        """Start every worker; they become ready in the background."""
        for worker in self.workers:
            await self._start(worker)

    async def _start(self, worker: _Worker) -> None:
        try:
            await worker.start()
        except OSError as error:
            log.error("crypto worker %d did not start (%s); tokens are read on threads meanwhile",
                      worker.number, type(error).__name__)
            worker.restart_delay = min(worker.restart_delay * 2, MAX_RESTART_DELAY)
            self._restart_later(worker)

    @property
    def ready(self) -> bool:
        """Whether a worker can take a read now."""
        return any(worker.ready for worker in self.workers)

    def worker_ready(self, worker: _Worker) -> None:
        log.info("crypto worker %d ready (process %s)", worker.number, worker.proc.pid if worker.proc else "?")

    def worker_lost(self, worker: _Worker) -> None:
        if self._closing:
            return
        code = worker.proc.poll() if worker.proc is not None else None
        log.warning("crypto worker %d exited (code %s); starting another in %.0f s",
                    worker.number, "unknown" if code is None else code, worker.restart_delay)
        self._restart_later(worker)

    def _restart_later(self, worker: _Worker) -> None:
        async def restart() -> None:
            await worker.stop()
            await asyncio.sleep(worker.restart_delay)
            if not self._closing:
                await self._start(worker)

        task = asyncio.get_running_loop().create_task(restart())
        self._restarts.add(task)
        task.add_done_callback(self._restarts.discard)

    def _pick(self) -> _Worker:
        ready = [worker for worker in self.workers if worker.ready]
        if not ready:
            raise WorkerLost()
        return min(ready, key=lambda worker: len(worker.pending))

    async def receive(self, token: str, now: float) -> VerifiedToken:
        """``tokens.read_verified`` in a worker: the verified token, or ``InvalidToken``, or ``WorkerLost``."""
        answer = await self._pick().call({"op": "receive", "token": token, "now": now})
        return verified_from_wire(_checked(answer, "verified"))

    async def reread(self, token: str) -> AuthResult:
        """``tokens.read_auth_result`` without time checks, in a worker (raises like ``receive``)."""
        answer = await self._pick().call({"op": "reread", "token": token})
        return result_from_wire(_checked(answer, "result"))

    async def close(self) -> None:
        """Stop every worker (each exits when its socket closes)."""
        self._closing = True
        for task in list(self._restarts):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await asyncio.gather(*(worker.stop() for worker in self.workers))


def _checked(answer: dict[str, Any], key: str) -> Any:
    """The answer's ``key`` member; ``InvalidToken`` for a refusal, ``WorkerLost`` for a failure."""
    if key in answer:
        return answer[key]
    refused = answer.get("refused")
    if isinstance(refused, list) and len(refused) == 2:
        raise InvalidToken(str(refused[0]), str(refused[1]))
    log.error("crypto worker failed to read a token: %s", answer.get("failed", "no answer"))
    raise WorkerLost()
