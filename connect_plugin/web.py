"""What the plugin serves to browsers: the attribute display, its live data, and the agent page.

* ``GET /session_events/<contact id>``: server-sent events for one call.  The
  handler subscribes through the notifier hook *before* it reads the session,
  so a change between the read and the wait is never missed; it sends the
  current state, then a new event each time the notifier says the session
  changed, and a keepalive comment when nothing happened for a while.  The
  fan-out lives behind ``hookspecs.Notifier``: nothing here knows how events
  reach this process.
* ``GET /attribute-ui/?<contact id>``: the attribute display, and
  ``GET /amazon-connect-ui/``: the agent's page around Amazon's CCP (files:
  ``pages.py``).

Labels come from the translator hook in the locale negotiated from
``Accept-Language``; the built-in interface strings are
``web_assets/attribute-ui/strings.json``, the one place they live.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterable, Mapping
from functools import cache
from typing import Any

from tornado.iostream import StreamClosedError

from . import handlers as h
from . import pages
from .errors import NotFound, PluginError
from .hookspecs import Subscription, Translator
from .model import STATUS_SUCCESS, SessionInfo
from .pages import ASSETS, DISPLAY_DIR

log = logging.getLogger(__name__)

STRINGS_FILE = ASSETS / DISPLAY_DIR / "strings.json"
FALLBACK_STRINGS_LOCALE = "en"

RETRY_MS = 2000  # how soon an EventSource reconnects after the stream ends or drops
STORE_RETRY_MS = 5000  # ... after this server said its store is unavailable
MAX_LANGUAGES = 16  # Accept-Language entries looked at
_LANGUAGE_TAG = re.compile(r"^(?:[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*)$")



# --------------------------------------------------------------------------- labels and locales


@cache
def interface_strings() -> dict[str, dict[str, str]]:
    """The built-in interface strings: locale -> key -> text (read once from ``strings.json``)."""
    return json.loads(STRINGS_FILE.read_text(encoding="utf-8"))


def accepted_languages(header: str | None) -> list[str]:
    """The language tags of an ``Accept-Language`` header, most wanted first (``q=0`` left out)."""
    weighted: list[tuple[float, int, str]] = []
    for position, item in enumerate((header or "").split(",")[:MAX_LANGUAGES]):
        tag, *params = (part.strip() for part in item.split(";"))
        if not _LANGUAGE_TAG.match(tag):
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            weighted.append((-quality, position, tag.lower()))
    return [tag for _, _, tag in sorted(weighted)]


def negotiate_locale(header: str | None, available: Iterable[str], default: str) -> str:
    """The best of ``available`` for an ``Accept-Language`` header, else ``default``.

    A tag matches a locale exactly, by its primary language (``en-US`` -> ``en``),
    or a locale of the same language (``en`` -> ``en-gb``).
    """
    locales = sorted({locale.lower() for locale in available})
    for tag in accepted_languages(header):
        if tag == "*":
            break
        primary = tag.split("-", 1)[0]
        for candidate in (tag, primary):
            if candidate in locales:
                return candidate
        for locale in locales:
            if locale.split("-", 1)[0] == primary:
                return locale
    return default.lower()


def display_locale(header: str | None, translator: Translator, default: str) -> str:
    """The display's locale: among the translator's and the built-in ones, else ``default``."""
    return negotiate_locale(header, [*translator.locales(), *interface_strings()], default)


def page_labels(translator: Translator, locale: str) -> dict[str, str]:
    """Interface strings for ``locale`` with the translator's labels over them (one flat map)."""
    builtin = interface_strings()
    strings = builtin.get(locale) or builtin.get(locale.split("-", 1)[0]) or builtin[FALLBACK_STRINGS_LOCALE]
    return {**strings, **translator.labels(locale)}


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
        locale = display_locale(self.request.headers.get("Accept-Language"), service.translator,
                                self.app.config.default_locale)
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("X-Accel-Buffering", "no")  # proxies such as nginx: pass events on at once
        subscription = service.notifier.listen(contact_id)  # before the first read: no change slips through
        try:
            self.write(f"retry: {RETRY_MS}\n\n")
            self.write(sse_event("labels", {"locale": locale, "labels": page_labels(service.translator, locale)}))
            await self._stream(contact_id, subscription, locale)
        except StreamClosedError:
            pass  # the display went away mid-write
        finally:
            subscription.close()

    async def _stream(self, contact_id: str, subscription: Subscription, locale: str) -> None:
        labels = self.service.translator.labels(locale)
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
        """Wait for the session to change, with keepalives meanwhile; False when the stream should end."""
        while not self._stopping():
            changed = await self._wait(subscription, keepalive)
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


def routes() -> list[tuple[str, Any, dict[str, Any]] | tuple[str, Any]]:
    """Routes for the browser-facing pages and their data."""
    return [(rf"/session_events/{h.PATH_ID}", SessionEventsHandler), *pages.routes()]
