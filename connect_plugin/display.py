"""What an agent's display is shown of a call, and how it follows the call as it changes.

``FlowService.watch`` opens a :class:`DisplayWatch` for one contact id: the
display's locale and labels, then, as an async iterator, the call's state
each time it changes, with a ``None`` after each quiet spell so the transport
can keep its connection alive.  The watch subscribes through the notifier
hook *before* its first read, so a change between the read and the wait is
never missed.  Nothing here knows HTTP; the handler frames what it is given.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any

from .errors import NotFound, PluginError
from .hookspecs import Notifier, Subscription, Translator
from .labels import display_locale, labels_message, tag_labels
from .metrics import Metrics
from .model import STATUS_SUCCESS, Agent, SessionInfo

log = logging.getLogger(__name__)

#: A display's state for one call (see :func:`session_state`), as sent to it.
State = dict[str, Any]
#: The state a watch ends with when the store does not answer.
UNAVAILABLE = "unavailable"


def session_state(info: SessionInfo | None, labels: Mapping[str, str], locale: str) -> State:
    """What the display shows for one call; ``info`` is ``None`` when no session is linked to it.

    ``state`` is ``no_session``, ``waiting``, ``verified`` or ``failed``.  Labels
    are ``null`` where none is configured.  The result's ``session_url`` is left
    out: session feedback is the server's business, never the browser's.
    """
    if info is None:
        return {"state": "no_session", "locale": locale}
    result = info.auth_result
    state = "waiting" if result is None else "verified" if result.status == STATUS_SUCCESS else "failed"
    out: State = {"state": state, "locale": locale, "purpose": info.purpose, "purpose_label": labels.get(info.purpose)}
    if result is not None and state == "verified":
        out["attributes"] = [
            {"key": key, "label": labels.get(key), "value": value} for key, value in (result.attributes or {}).items()
        ]
    return out


def display_labels(translator: Translator, accept_language: str | None, default_locale: str) -> dict[str, Any]:
    """The display's labels for a browser's ``Accept-Language``: ``{"locale", "default_locale", "labels"}``."""
    locale = display_locale(accept_language, translator, default_locale)
    return labels_message(translator, locale, default_locale)


class DisplayWatch:
    """One display's view of one call: enter it to subscribe, iterate it for what to show.

    Iterating yields the call's :data:`State` at once and after every change
    (an unchanged state after a wake is not repeated), and ``None`` after each
    ``keepalive`` seconds without a change.  When the store does not answer, the
    last item is ``{"state": "unavailable", "locale"}``.  The iteration ends
    when ``until`` is set (the display went away), when ``stopping()`` turns
    true (the plugin stops), or when the viewer's sign-in ends: the display
    then reconnects, is refused, and asks the agent to sign in again.
    """

    def __init__(
        self,
        contact_id: str,
        viewer: Agent,
        read: Callable[[], Awaitable[SessionInfo]],
        *,
        notifier: Notifier,
        translator: Translator,
        metrics: Metrics,
        accept_language: str | None,
        default_locale: str,
        keepalive: float,
        stopping: Callable[[], bool],
        until: asyncio.Event | None = None,
    ) -> None:
        self.contact_id = contact_id
        self.viewer = viewer
        self.locale = display_locale(accept_language, translator, default_locale)
        #: The display's labels, sent before the first state (``labels.labels_message``).
        self.labels = labels_message(translator, self.locale, default_locale)
        self._read = read
        self._notifier = notifier
        self._tag_labels = tag_labels(translator, self.locale, default_locale)
        self._metrics = metrics
        self._keepalive = keepalive
        self._stopping = stopping
        self._until = until or asyncio.Event()
        self._subscription: Subscription | None = None

    def __repr__(self) -> str:
        return f"DisplayWatch(locale={self.locale!r})"  # never the contact id

    async def __aenter__(self) -> DisplayWatch:
        self._subscription = self._notifier.listen(self.contact_id)  # before the first read
        self._metrics.display_opened()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        if self._subscription is not None:
            self._subscription.close()
            self._subscription = None
            self._metrics.display_closed()

    def __aiter__(self) -> AsyncIterator[State | None]:
        return self._states()

    async def _states(self) -> AsyncIterator[State | None]:
        subscription = self._subscription
        if subscription is None:
            raise RuntimeError("enter the watch (async with) before iterating it")
        last: State | None = None
        while True:
            try:
                state = session_state(await self._current(), self._tag_labels, self.locale)
            except PluginError as error:
                log.warning("session events: %s; the display will retry", type(error).__name__)
                yield {"state": UNAVAILABLE, "locale": self.locale}
                return
            if state != last:
                yield state
                last = state
            while True:  # until a change, with a None for each quiet spell
                left = self._sign_in_left()
                if self._stopping() or left <= 0:
                    return
                changed = await self._wait(subscription, min(self._keepalive, left))
                if changed is None or self._stopping():
                    return
                if changed:
                    break
                yield None

    async def _current(self) -> SessionInfo | None:
        try:
            return await self._read()
        except NotFound:
            return None

    def _sign_in_left(self) -> float:
        """Seconds until the viewer's sign-in ends (infinite when it does not say)."""
        expires = self.viewer.expires_at
        return math.inf if expires is None else expires - time.time()

    async def _wait(self, subscription: Subscription, seconds: float) -> bool | None:
        """True on a change, False after ``seconds`` without one, None once ``until`` is set."""
        change = asyncio.ensure_future(subscription.wait(seconds))
        gone = asyncio.ensure_future(self._until.wait())
        try:
            await asyncio.wait((change, gone), return_when=asyncio.FIRST_COMPLETED)
        finally:
            change.cancel()
            gone.cancel()
        if self._until.is_set() or change.cancelled():
            return None
        return change.result()
