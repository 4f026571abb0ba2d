"""What the plugin serves to browsers: the attribute display, its live data, and the agent page.

* ``GET /session_events/<contact id>``: server-sent events for one call.  The
  handler frames what the flow service's watch of the call gives
  (``FlowService.watch``, ``display.DisplayWatch``): the labels, then the
  call's state now and after each change, and a keepalive comment after each
  quiet spell.  How changes reach this process is the notifier's business,
  behind the watch.
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
from collections.abc import Mapping
from typing import Any

from tornado.iostream import StreamClosedError

from . import handlers as h
from . import pages
from .display import UNAVAILABLE

RETRY_MS = 2000  # how soon an EventSource reconnects after the stream ends or drops
STORE_RETRY_MS = 5000  # ... after this server said its store is unavailable


def sse_event(name: str, data: Mapping[str, Any]) -> str:
    """One server-sent event; JSON never holds a raw line break, so one ``data:`` line suffices."""
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class SessionEventsHandler(h.AgentHandler):
    """``GET /session_events/<contact id>``: the display's live view of one call (server-sent events).

    Events: ``labels`` once (``{"locale", "default_locale", "labels"}``), then
    ``session`` (see ``display.session_state``) at the start and after each
    change, or ``{"state": "unavailable"}`` before the stream ends when the
    store does not answer.
    """

    cors = True

    def initialize(self) -> None:
        """Per request: an event set when the display hangs up."""
        self._gone = asyncio.Event()

    def on_connection_close(self) -> None:
        """The display went away: stop waiting for changes on its behalf."""
        self._gone.set()
        super().on_connection_close()

    async def get(self, contact_id: str) -> None:
        """Stream the call's state until the display goes away, the sign-in ends or the plugin stops."""
        agent = await self.require_agent(contact_id)
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("X-Accel-Buffering", "no")  # proxies such as nginx: pass events on at once
        watch = self.service.watch(contact_id, agent, accept_language=self.request.headers.get("Accept-Language"),
                                   until=self._gone)
        try:
            async with watch:
                self.write(f"retry: {RETRY_MS}\n\n")
                self.write(sse_event("labels", watch.labels))
                async for state in watch:
                    if state is None:
                        self.write(": keepalive\n\n")
                    else:
                        if state["state"] == UNAVAILABLE:
                            self.write(f"retry: {STORE_RETRY_MS}\n")
                        self.write(sse_event("session", state))
                    await self.flush()
        except StreamClosedError:
            pass  # the display went away mid-write


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
        self.set_header("Vary", "Accept-Language, Origin")
        self.send_json(self.service.display_labels(self.request.headers.get("Accept-Language")))


def routes() -> list[tuple[str, Any, dict[str, Any]] | tuple[str, Any]]:
    """Routes for the browser-facing pages and their data."""
    return [
        (rf"/session_events/{h.PATH_ID}", SessionEventsHandler),
        (r"/display_labels", LabelsHandler),
        *pages.routes(),
    ]
