"""What the plugin serves to browsers: the attribute display, its live data, and the agent page.

* ``GET /session_events/<contact id>``: server-sent events for one call.  The
  handler subscribes through the notifier hook *before* it reads the session,
  so a change between the read and the wait is never missed; it sends the
  current state, then a new event each time the notifier says the session
  changed, and a keepalive comment when nothing happened for a while.  The
  fan-out lives behind ``hookspecs.Notifier``: nothing here knows how events
  reach this process.
* ``GET /display_labels``: the display's labels for the browser's language,
  so that its first paint (from ``/session_info``) is labelled too.
* ``GET /attribute-ui/?<contact id>``: the attribute display, and
  ``GET /amazon-connect-ui/``: the agent's page around Amazon's CCP (files:
  ``pages.py``).

Labels come from the translator hook in the locale negotiated from
``Accept-Language`` (``labels.py``; tags without a label there fall back to
``default_locale``'s).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Mapping
from typing import Any

from tornado.iostream import StreamClosedError

from . import handlers as h
from . import pages
from .errors import NotFound, PluginError
from .hookspecs import Subscription
from .labels import display_locale, labels_message, tag_labels
from .model import STATUS_SUCCESS, Agent, SessionInfo

log = logging.getLogger(__name__)

RETRY_MS = 2000  # how soon an EventSource reconnects after the stream ends or drops
STORE_RETRY_MS = 5000  # ... after this server said its store is unavailable


# --------------------------------------------------------------------------- what the display shows


def session_state(info: SessionInfo | None, labels: Mapping[str, str], locale: str) -> dict[str, Any]:
    """What the display shows for one call; ``info`` is ``None`` when no session is linked to it.

    ``state`` is ``no_session``, ``waiting``, ``verified`` or ``failed``.  Labels
    are ``null`` where none is configured.  The result's ``session_url`` is left
    out: session feedback is the server's business, never the browser's.
    """
    if info is None:
        return {"state": "no_session", "locale": locale}
    result = info.auth_result
    state = "waiting" if result is None else "verified" if result.status == STATUS_SUCCESS else "failed"
    out: dict[str, Any] = {"state": state, "locale": locale, "purpose": info.purpose,
                           "purpose_label": labels.get(info.purpose)}
    if result is not None and state == "verified":
        out["attributes"] = [
            {"key": key, "label": labels.get(key), "value": value} for key, value in (result.attributes or {}).items()
        ]
    return out


def sse_event(name: str, data: Mapping[str, Any]) -> str:
    """One server-sent event; JSON never holds a raw line break, so one ``data:`` line suffices."""
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


# --------------------------------------------------------------------------- the live stream


class SessionEventsHandler(h.AgentHandler):
    """``GET /session_events/<contact id>``: the display's live view of one call (server-sent events).

    Events: ``labels`` once (``{"locale", "labels"}``), then ``session`` (see
    ``session_state``) at the start and after each change, or
    ``{"state": "unavailable"}`` before the stream ends when the store does not answer.
    """

    cors = True
    agent: Agent

    def initialize(self) -> None:
        """Per request: an event set when the display hangs up."""
        self._gone = asyncio.Event()

    def on_connection_close(self) -> None:
        """The display went away: stop waiting for changes on its behalf."""
        self._gone.set()
        super().on_connection_close()

    async def get(self, contact_id: str) -> None:
        """Stream the call's state until the display goes away or the plugin stops."""
        self.agent = await self.require_agent(contact_id)
        service = self.service
        default = self.app.config.default_locale
        locale = display_locale(self.request.headers.get("Accept-Language"), service.translator, default)
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("X-Accel-Buffering", "no")  # proxies such as nginx: pass events on at once
        subscription = service.notifier.listen(contact_id)  # before the first read: no change slips through
        service.metrics.display_opened()
        try:
            self.write(f"retry: {RETRY_MS}\n\n")
            self.write(sse_event("labels", labels_message(service.translator, locale, default)))
            await self._stream(contact_id, subscription, locale)
        except StreamClosedError:
            pass  # the display went away mid-write
        finally:
            subscription.close()
            service.metrics.display_closed()

    async def _stream(self, contact_id: str, subscription: Subscription, locale: str) -> None:
        labels = tag_labels(self.service.translator, locale, self.app.config.default_locale)
        keepalive = float(self.app.config.events_keepalive)
        last: dict[str, Any] | None = None
        while True:
            try:
                state = session_state(await self._read(contact_id), labels, locale)
            except PluginError as error:
                log.warning("session events: %s; the display will retry", type(error).__name__)
                self.write(f"retry: {STORE_RETRY_MS}\n")
                self.write(sse_event("session", {"state": "unavailable", "locale": locale}))
                await self.flush()
                return
            if state != last:
                self.write(sse_event("session", state))
                last = state
            await self.flush()
            if not await self._next_change(subscription, keepalive):
                return

    async def _next_change(self, subscription: Subscription, keepalive: float) -> bool:
        """Wait for the session to change, with keepalives meanwhile; False when the stream should end.

        The stream also ends when the agent's sign-in does: the display then
        reconnects, is refused, and asks the agent to sign in again.
        """
        while not self._stopping():
            left = self._sign_in_left()
            if left <= 0:
                return False
            changed = await self._wait(subscription, min(keepalive, left))
            if changed is None or self._stopping():
                return False
            if changed:
                return True
            self.write(": keepalive\n\n")
            await self.flush()
        return False

    def _stopping(self) -> bool:
        """True once the plugin is shutting down (the display reconnects to whoever serves next)."""
        return self.app.closing

    def _sign_in_left(self) -> float:
        """Seconds until the agent's sign-in ends (infinite when it does not say)."""
        expires = self.agent.expires_at
        return math.inf if expires is None else expires - time.time()

    async def _read(self, contact_id: str) -> SessionInfo | None:
        try:
            return await self.service.session_info(contact_id, viewer=self.agent)
        except NotFound:
            return None

    async def _wait(self, subscription: Subscription, seconds: float) -> bool | None:
        """True on a change, False after ``seconds`` without one, None once the display has gone."""
        change = asyncio.ensure_future(subscription.wait(seconds))
        gone = asyncio.ensure_future(self._gone.wait())
        try:
            await asyncio.wait((change, gone), return_when=asyncio.FIRST_COMPLETED)
        finally:
            change.cancel()
            gone.cancel()
        if self._gone.is_set() or change.cancelled():
            return None
        return change.result()


class LabelsHandler(h.AgentHandler):
    """``GET /display_labels``: the display's labels in the browser's language, for its first paint.

    The same ``{"locale", "default_locale", "labels"}`` as the stream's first
    event, so that a display can label what ``/session_info`` answers before
    (or without) the live stream.  Holds no citizen's data, but like the
    display itself it is for signed-in agents only.
    """

    cors = True

    async def get(self) -> None:
        await self.require_agent(None)
        default = self.app.config.default_locale
        locale = display_locale(self.request.headers.get("Accept-Language"), self.service.translator, default)
        self.set_header("Vary", "Accept-Language, Origin")
        self.send_json(labels_message(self.service.translator, locale, default))


def routes() -> list[tuple[str, Any, dict[str, Any]] | tuple[str, Any]]:
    """Routes for the browser-facing pages and their data."""
    return [
        (rf"/session_events/{h.PATH_ID}", SessionEventsHandler),
        (r"/display_labels", LabelsHandler),
        *pages.routes(),
    ]
