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
* ``GET /attribute-ui/?<contact id>``: the attribute display (static files).
* ``GET /amazon-connect-ui/``: the agent's page around Amazon's CCP, with its
  ``config.js`` generated from the settings.

Files in ``settings.web_dir`` (same layout as ``web_assets``) are served in
place of the built-in ones: a deployer's ``config.js``, or the
``amazon-connect-streams`` library.  Labels come from the translator hook in
the locale negotiated from ``Accept-Language`` (``labels.py``; tags without
a label there fall back to ``default_locale``'s).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from tornado import web
from tornado.iostream import StreamClosedError

import connect_plugin.web_assets

from . import handlers as h
from .errors import NotFound, PluginError, error_word
from .hookspecs import Subscription
from .labels import display_locale, labels_message, tag_labels
from .model import STATUS_SUCCESS, Agent, SessionInfo

if TYPE_CHECKING:
    from .app import PluginApplication

log = logging.getLogger(__name__)

ASSETS = Path(connect_plugin.web_assets.__path__[0])
DISPLAY_DIR = "attribute-ui"
AGENT_DIR = "amazon-connect-ui"

RETRY_MS = 2000  # how soon an EventSource reconnects after the stream ends or drops
STORE_RETRY_MS = 5000  # ... after this server said its store is unavailable

#: ``Sec-Fetch-Dest`` of a page loaded inside a frame.
FRAMED = ("iframe", "frame")

DISPLAY_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    # window.SERVER_URL may name another server: the page's data may come from any http(s) origin.
    "connect-src 'self' http: https:; base-uri 'none'; form-action 'none'"
)


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
        try:
            self.write(f"retry: {RETRY_MS}\n\n")
            self.write(sse_event("labels", labels_message(service.translator, locale, default)))
            await self._stream(contact_id, subscription, locale)
        except StreamClosedError:
            pass  # the display went away mid-write
        finally:
            subscription.close()

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


# --------------------------------------------------------------------------- pages


class PageHandler(web.StaticFileHandler):
    """Static files of one page folder; a same-named file under ``settings.web_dir`` wins."""

    #: The display's address holds a contact id: it goes nowhere as a Referer.
    referrer_policy = "no-referrer"

    def initialize(self, path: str, default_filename: str | None = None) -> None:
        super().initialize(str(ASSETS / path), default_filename)
        self.folder = path

    @property
    def app(self) -> PluginApplication:
        """This plugin's application."""
        return cast("PluginApplication", self.application)

    @property
    def web_dir(self) -> str:
        """The deployer's directory of files served before the built-in ones ('' for none)."""
        return self.app.config.web_dir

    async def prepare(self) -> None:
        """Only a signed-in agent gets the pages; a browser without a sign-in is sent to sign in.

        One exception: the display loaded in a frame (the agent page's) comes
        without a sign-in.  It holds no data (its data routes are guarded) and,
        unlike a redirect to an identity provider that refuses to be framed, it
        can tell the agent that the sign-in has ended.
        """
        auth = self.app.agent_auth
        agent = await auth.identify(self.request)
        if agent is None and self.folder == DISPLAY_DIR and self.request.headers.get("Sec-Fetch-Dest") in FRAMED:
            return
        if agent is None:
            login = auth.login_url(self.request)
            if login is not None and self.request.method in ("GET", "HEAD"):
                self.redirect(login)
                return
            raise web.HTTPError(401)
        if not await auth.may_view(agent, None):
            raise web.HTTPError(403)

    def content_security_policy(self) -> str:
        """The page's Content-Security-Policy header."""
        return DISPLAY_CSP

    async def get(self, path: str, include_body: bool = True) -> None:
        override = overridden_file(self.web_dir, self.folder, path or self.default_filename or "")
        if override is not None:
            self.root = str(override.parent)
            path = override.name
        await super().get(path, include_body)

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", self.content_security_policy())
        if self.referrer_policy:
            self.set_header("Referrer-Policy", self.referrer_policy)

    def set_extra_headers(self, path: str) -> None:
        # Nothing personal here, but a deployer's edits must show at the next load.
        self.set_header("Cache-Control", "no-cache")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # The plugin's error shape, here too: {"error": "NotFound"}, {"error": "Forbidden"}.
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": error_word(status_code)}))


class AgentPageHandler(PageHandler):
    """The agent page's files, with a policy that allows the configured streams library."""

    referrer_policy = ""  # the browser's default: Amazon's CCP may look at where it is embedded

    def content_security_policy(self) -> str:
        return agent_csp(self.app.config.streams_url)


def overridden_file(web_dir: str, folder: str, name: str) -> Path | None:
    """``<web_dir>/<folder>/<name>`` when that is a file inside it, else None."""
    relative = PurePosixPath(name)
    if not web_dir or not name or relative.is_absolute() or ".." in relative.parts:
        return None
    candidate = Path(web_dir, folder, *relative.parts)  # a symlink out of the folder: 403 from Tornado
    return candidate if candidate.is_file() else None


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an absolute http(s) URL, else None."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    return None


def agent_csp(streams_url: str) -> str:
    """The agent page's policy: scripts from this server and the streams library's origin only.

    Frames, connections and media stay open: Amazon's CCP and the attribute
    display may live on any origin the deployer chose.
    """
    sources = " ".join(["'self'", *filter(None, [origin_of(streams_url)])])
    return f"script-src {sources}; object-src 'none'; base-uri 'none'; form-action 'none'"


class AgentConfigHandler(h.BaseHandler):
    """``GET /amazon-connect-ui/config.js``: the deployer's file if given, else made from the settings.

    The generated file sets the reference's globals ``AmazonConnectURL`` and
    ``AttributeURL``, and ``StreamsURL`` for the ``amazon-connect-streams`` library.
    ``AttributeURL`` has the reference's form, without the ``?`` that the page
    puts before the contact id.
    """

    def get(self) -> None:
        settings = self.app.config
        self.set_header("Content-Type", "text/javascript; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        override = overridden_file(settings.web_dir, AGENT_DIR, "config.js")
        if override is not None:
            self.finish(override.read_bytes())
            return
        values = {
            "AmazonConnectURL": settings.amazon_connect_url,
            "CCPLoginURL": settings.ccp_login_url,
            "AttributeURL": settings.attribute_url or f"../{DISPLAY_DIR}/",
            "StreamsURL": settings.streams_url or "connect-streams-min.js",
        }
        lines = ["// Made by connect-plugin from its settings (amazon_connect_url, ccp_login_url, attribute_url, "
                 "streams_url).",
                 f"// To use a file of your own instead, put it at <web_dir>/{AGENT_DIR}/config.js."]
        lines += [f"var {name} = {js_string(value)};" for name, value in values.items()]
        self.finish("\n".join(lines) + "\n")


def js_string(value: str) -> str:
    """A JavaScript string literal for ``value`` (JSON, with ``<`` escaped for good measure)."""
    return json.dumps(value).replace("<", "\\u003c")


class SlashRedirectHandler(web.RequestHandler):
    """``/attribute-ui?<id>`` -> ``/attribute-ui/?<id>``, keeping the query string exactly."""

    def get(self) -> None:
        query = self.request.query
        self.redirect(self.request.path + "/" + (f"?{query}" if query else ""), permanent=False)


def routes() -> list[tuple[str, Any, dict[str, Any]] | tuple[str, Any]]:
    """Routes for the browser-facing pages and their data."""
    return [
        (rf"/session_events/{h.PATH_ID}", SessionEventsHandler),
        (r"/display_labels", LabelsHandler),
        (rf"/{DISPLAY_DIR}", SlashRedirectHandler),
        (rf"/{DISPLAY_DIR}/(.*)", PageHandler, {"path": DISPLAY_DIR, "default_filename": "index.html"}),
        (rf"/{AGENT_DIR}", SlashRedirectHandler),
        (rf"/{AGENT_DIR}/config\.js", AgentConfigHandler),
        (rf"/{AGENT_DIR}/(.*)", AgentPageHandler, {"path": AGENT_DIR, "default_filename": "index.html"}),
    ]
