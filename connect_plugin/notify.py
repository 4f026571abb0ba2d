"""The built-in notifier: wakes attribute displays waiting in this process.

A display opens a subscription for its call's contact id, reads the session,
and waits; the flow service publishes the contact id after every write that
changes what the display shows.  ``deliver`` is the in-process fan-out that a
notifier spanning several instances (PostgreSQL ``LISTEN``/``NOTIFY``) calls
when an event arrives from elsewhere.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict


class LocalSubscription:
    """One display's interest in one contact id."""

    def __init__(self, owner: LocalNotifier, contact_id: str) -> None:
        self._owner = owner
        self.contact_id = contact_id
        self._event = asyncio.Event()

    def _wake(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> bool:
        """Wait for a change; True if one came (changes while not waiting are kept)."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        self._event.clear()
        return True

    def close(self) -> None:
        """Stop listening."""
        self._owner._drop(self)


class LocalNotifier:
    """Fan-out inside one process; enough for a single plugin instance."""

    def __init__(self) -> None:
        self._subs: defaultdict[str, set[LocalSubscription]] = defaultdict(set)

    async def start(self) -> None:
        """Nothing to connect."""

    async def close(self) -> None:
        """Wake every waiter so long-lived requests can finish."""
        self.wake_all()

    def wake_all(self) -> None:
        """Wake every waiter in this process (each re-reads its session)."""
        for subs in list(self._subs.values()):
            for sub in list(subs):
                sub._wake()

    async def publish(self, contact_id: str) -> None:
        """Wake the displays of this contact id in this process."""
        self.deliver(contact_id)

    def deliver(self, contact_id: str) -> None:
        """Wake local waiters for ``contact_id`` (also used for events from other instances)."""
        for sub in list(self._subs.get(contact_id, ())):
            sub._wake()

    def listen(self, contact_id: str) -> LocalSubscription:
        """A new subscription for ``contact_id``."""
        sub = LocalSubscription(self, contact_id)
        self._subs[contact_id].add(sub)
        return sub

    def listener_count(self) -> int:
        """How many displays are waiting (for diagnostics and tests)."""
        return sum(len(s) for s in self._subs.values())

    def _drop(self, sub: LocalSubscription) -> None:
        subs = self._subs.get(sub.contact_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.contact_id]
