"""A notifier for several plugin instances on one PostgreSQL database: ``LISTEN``/``NOTIFY``.

Each instance keeps one dedicated connection that listens on one channel.
``publish`` wakes local displays at once and queues a ``NOTIFY`` so that every
other instance wakes its own: the request that changed the session does not
wait for it, and the changes queued while one ``NOTIFY`` is under way go
together in the next (one statement, one round trip).  The payload is
``<instance>:<contact id>``: no personal data, and an instance ignores its own
echoes.

When the listening connection drops, the notifier reconnects with back-off;
once back it wakes every local display, because events sent while it was
away are lost and the displays must re-read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Any

import asyncpg

from ..config.database import asyncpg_target
from ..notify import LocalNotifier

log = logging.getLogger(__name__)

CHANNEL = "connect_plugin_session"
HEARTBEAT = 10.0  # seconds between liveness checks of the listening connection
MAX_BACKOFF = 5.0


class PostgresNotifier(LocalNotifier):
    """Fan-out within this process, carried to other instances through PostgreSQL."""

    def __init__(self, url: str, *, timeout: float = 1.0) -> None:
        super().__init__()
        self._dsn, extra = asyncpg_target(url)
        self._timeout = timeout
        self._connect_timeout = extra.get("timeout") or timeout
        self._instance = secrets.token_hex(6)
        self._conn: Any = None
        self._task: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()
        # One statement at a time on the listening connection: asyncpg refuses a
        # second while one is under way (NOTIFYs from concurrent requests, heartbeats).
        self._lock = asyncio.Lock()
        self.connected = asyncio.Event()
        self._outbox: list[str] = []
        self._sender: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"PostgresNotifier(instance={self._instance})"

    async def start(self) -> None:
        """Start listening in the background (the database may still be down)."""
        self._task = asyncio.create_task(self._listen_forever())

    async def close(self) -> None:
        """Send what is queued, stop listening and wake local displays."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.flush(), self._timeout * 2)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._disconnect()
        await super().close()

    async def publish(self, contact_id: str) -> None:
        """Wake local displays, and queue a word to the other instances (sent in the background)."""
        self.deliver(contact_id)
        self._outbox.append(f"{self._instance}:{contact_id}")
        if self._sender is None or self._sender.done():
            self._sender = asyncio.get_running_loop().create_task(self._send_outbox())

    async def flush(self) -> None:
        """Wait until every word queued so far has been sent (or given up on)."""
        while self._sender is not None and not self._sender.done():
            await asyncio.shield(self._sender)

    async def _send_outbox(self) -> None:
        while self._outbox:
            payloads, self._outbox = self._outbox, []
            try:
                await self._notify(payloads)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
                # The writes themselves succeeded; other instances' displays catch up when they reconnect.
                log.warning("could not NOTIFY other instances: %s", type(error).__name__)

    async def _notify(self, payloads: list[str]) -> None:
        statement = "SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload"
        conn = self._conn
        if conn is not None and not conn.is_closed():
            async with self._lock:
                await conn.execute(statement, CHANNEL, payloads, timeout=self._timeout)
            return
        conn = await asyncpg.connect(self._dsn, timeout=self._connect_timeout)
        try:
            await conn.execute(statement, CHANNEL, payloads, timeout=self._timeout)
        finally:
            await conn.close(timeout=self._timeout)

    # -- the listening connection -------------------------------------------------------

    async def _listen_forever(self) -> None:
        backoff = 0.2
        while True:
            try:
                await self._connect()
                backoff = 0.2
                await self._watch()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # any failure: reconnect
                log.warning("LISTEN connection unavailable (%s); retrying", type(error).__name__)
            self.connected.clear()
            await self._disconnect()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _connect(self) -> None:
        self._lost.clear()
        self._conn = await asyncpg.connect(self._dsn, timeout=self._connect_timeout)
        self._conn.add_termination_listener(lambda _conn: self._lost.set())
        await self._conn.add_listener(CHANNEL, self._on_notify)
        self.connected.set()
        # Whatever happened while we were not listening, displays must re-read.
        self.wake_all()
        log.info("listening for session changes from other instances")

    async def _watch(self) -> None:
        """Return when the connection is lost (closed, or silent past the heartbeat)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), HEARTBEAT)
            if self._lost.is_set():
                return
            async with self._lock:
                await self._conn.execute("SELECT 1", timeout=self._timeout)

    async def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.terminate()

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        instance, _, contact_id = payload.partition(":")
        if instance != self._instance and contact_id:
            self.deliver(contact_id)
