"""A notifier for several plugin instances on one Redis: pub/sub on one channel per deployment.

Each instance keeps one connection subscribed to ``<prefix>events``.
``publish`` wakes local displays at once and publishes
``<instance>:<contact id>`` so that every other instance wakes its own; an
instance ignores its own echoes.  No personal data travels: a contact id is
what the SQL store's notifier sends too.

When the subscribed connection drops, or stays silent past a heartbeat, the
notifier reconnects with back-off; once back it wakes every local display,
since events published while it was away are lost and the displays must
read again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Any

from connect_plugin.api import LocalNotifier

from .store import make_client, unavailable

log = logging.getLogger(__name__)

HEARTBEAT = 10.0  # seconds of silence after which the subscribed connection is pinged
MAX_BACKOFF = 5.0


class RedisNotifier(LocalNotifier):
    """Fan-out within this process, carried to other instances through Redis pub/sub."""

    def __init__(self, url: str, *, channel: str, timeout: float = 1.0, heartbeat: float = HEARTBEAT) -> None:
        super().__init__()
        self._url = url
        self.channel = channel
        self._timeout = timeout
        self._heartbeat = heartbeat
        self._instance = secrets.token_hex(6)
        self._client: Any = None
        self._task: asyncio.Task[None] | None = None
        #: Set while the subscription is live (tests and diagnostics wait for it).
        self.connected = asyncio.Event()

    def __repr__(self) -> str:
        return f"RedisNotifier(instance={self._instance})"

    async def start(self) -> None:
        """Subscribe in the background (Redis may still be down)."""
        # One connection subscribed, and a few for publishing from concurrent requests.
        self._client = make_client(self._url, timeout=self._timeout, connections=4)
        self._task = asyncio.create_task(self._listen_forever())

    async def close(self) -> None:
        """Stop listening and wake local displays."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()
        await super().close()

    async def publish(self, contact_id: str) -> None:
        """Wake local displays, then tell the other instances."""
        self.deliver(contact_id)
        if self._client is None:  # not started: this process is all there is
            return
        try:
            await self._client.publish(self.channel, f"{self._instance}:{contact_id}")
        except Exception as error:
            if not unavailable(error):
                raise
            # The write itself succeeded; other instances' displays catch up when they reconnect.
            log.warning("could not publish to other instances: %s", type(error).__name__)

    # -- the subscribed connection ------------------------------------------------------

    async def _listen_forever(self) -> None:
        backoff = 0.2
        while True:
            pubsub = self._client.pubsub()
            try:
                await self._subscribe(pubsub)
                backoff = 0.2
                await self._watch(pubsub)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # any failure: reconnect
                log.warning("Redis subscription unavailable (%s); retrying", type(error).__name__)
            finally:
                self.connected.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _subscribe(self, pubsub: Any) -> None:
        await pubsub.subscribe(self.channel)
        confirmed = await pubsub.get_message(timeout=self._timeout)
        if confirmed is None or confirmed["type"] != "subscribe":
            raise TimeoutError("no subscription confirmed")
        self.connected.set()
        self.wake_all()  # whatever happened while we were not listening, displays must read again
        log.info("listening for session changes from other instances")

    async def _watch(self, pubsub: Any) -> None:
        """Deliver messages until the connection fails or stays silent after a ping."""
        pinged = False
        while True:
            message = await pubsub.get_message(timeout=2 * self._timeout if pinged else self._heartbeat)
            if message is None:
                if pinged:
                    raise TimeoutError("no answer to a heartbeat")
                await pubsub.ping()
                pinged = True
                continue
            pinged = False
            if message["type"] == "message":
                self._on_message(message["data"])

    def _on_message(self, payload: str) -> None:
        instance, _, contact_id = payload.partition(":")
        if instance != self._instance and contact_id:
            self.deliver(contact_id)
