"""The agent's pages as files: the attribute display and the agent page around Amazon's CCP.

* ``GET /attribute-ui/?<contact id>``: the attribute display (static files).
* ``GET /amazon-connect-ui/``: the agent's page, with its ``config.js``
  generated from the settings.

Files in ``settings.web_dir`` (same layout as ``web_assets``) are served in
place of the built-in ones: a deployer's ``config.js``, or the
``amazon-connect-streams`` library.  A file whose real path (symbolic links
resolved) lies outside ``web_dir`` is refused with ``403``, never read.

Framing: both pages say who may frame them (``frame-ancestors``, see
:func:`frame_ancestors`); ``X-Frame-Options: SAMEORIGIN`` goes along only where
no other origin may, because that header cannot name one (its ``ALLOW-FROM``
is obsolete and ignored by browsers).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from tornado import web

import connect_plugin.web_assets

from . import handlers as h
from . import logs
from .config import Settings
from .errors import error_word

if TYPE_CHECKING:
    from .app import PluginApplication

log = logging.getLogger(__name__)

ASSETS = Path(connect_plugin.web_assets.__path__[0])
DISPLAY_DIR = "attribute-ui"
AGENT_DIR = "amazon-connect-ui"

DISPLAY_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    # window.SERVER_URL may name another server: the page's data may come from any http(s) origin.
    "connect-src 'self' http: https:; base-uri 'none'; form-action 'none'"
)
SELF = "'self'"
#: ``Sec-Fetch-Dest`` of a page loaded inside a frame.
FRAMED = ("iframe", "frame")


class PageHandler(web.StaticFileHandler):
    """Static files of one page folder; a same-named file under ``settings.web_dir`` wins."""

    #: The display's address holds a contact id: it goes nowhere as a Referer.
    referrer_policy = "no-referrer"

    def initialize(self, path: str, default_filename: str | None = None,
                   allowed_symlink_directory: str | list[str] | None = None) -> None:
        # Symbolic links are the deployer's web_dir business (see overridden_file), never Tornado's.
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
        return f"{DISPLAY_CSP}; frame-ancestors {' '.join(self.ancestors())}"

    def ancestors(self) -> list[str]:
        """Who may frame this page: the display is framed by the agent page, wherever that is served."""
        return frame_ancestors(self.app.config, display=True)

    async def get(self, path: str, include_body: bool = True) -> None:
        override = overridden_file(self.web_dir, self.folder, path or self.default_filename or "")
        if override is not None:
            self.root = str(override.parent)
            path = override.name
        await super().get(path, include_body)

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Security-Policy", self.content_security_policy())
        if only_own_origins(self.ancestors(), self.app.config):
            self.set_header("X-Frame-Options", "SAMEORIGIN")
        if self.referrer_policy:
            self.set_header("Referrer-Policy", self.referrer_policy)

    def log_exception(self, typ: type[BaseException] | None, value: BaseException | None,
                      tb: TracebackType | None) -> None:
        logs.log_handler_exception(self, typ, value, tb)

    def set_extra_headers(self, path: str) -> None:
        # Nothing personal here, but a deployer's edits must show at the next load.
        self.set_header("Cache-Control", "no-cache")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        # The plugin's error shape, here too: {"error": "NotFound"}, {"error": "Forbidden"}.
        if status_code == 405:
            self.set_header("Allow", h.allowed_methods(self))
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": error_word(status_code)}))


class AgentPageHandler(PageHandler):
    """The agent page's files, with a policy that allows the configured streams library."""

    referrer_policy = ""  # the browser's default: Amazon's CCP may look at where it is embedded

    def content_security_policy(self) -> str:
        return f"{agent_csp(self.app.config.streams_url)}; frame-ancestors {' '.join(self.ancestors())}"

    def ancestors(self) -> list[str]:
        """Who may frame the agent page: this server, and ``frame_ancestors``."""
        return frame_ancestors(self.app.config, display=False)


def frame_ancestors(settings: Settings, *, display: bool) -> list[str]:
    """The ``frame-ancestors`` sources of a page.

    The agent page: ``'self'`` and ``frame_ancestors`` (a CRM that embeds it).
    The display: also the origins an agent page framing it may be served from:
    ``external_url`` (``internal_url``) and ``allowed_origins``.  Every ancestor
    counts, not only the parent, so an agent page embedded by a
    ``frame_ancestors`` origin needs those on the display as well.
    """
    sources = [SELF]
    if display:
        sources += filter(None, [origin_of(settings.public_url), *settings.allowed_origins])
    sources += settings.frame_ancestors
    return list(dict.fromkeys(sources))


def only_own_origins(sources: Iterable[str], settings: Settings) -> bool:
    """True when ``sources`` name no origin but this plugin's own (``X-Frame-Options: SAMEORIGIN`` then agrees)."""
    own = {SELF, *filter(None, (origin_of(settings.internal_url), origin_of(settings.external_url or "")))}
    return set(sources) <= own


def overridden_file(web_dir: str, folder: str, name: str) -> Path | None:
    """``<web_dir>/<folder>/<name>`` when that is a file inside that folder, else None.

    Symbolic links are resolved first: a file or a folder that leads out of
    ``<web_dir>/<folder>`` (a link into the rest of ``web_dir`` too) is refused
    with ``403`` before anything there is opened.
    """
    relative = PurePosixPath(name)
    if not web_dir or not name or relative.is_absolute() or ".." in relative.parts:
        return None
    candidate = Path(web_dir, folder, *relative.parts)
    real = Path(os.path.realpath(candidate))
    if not real.is_relative_to(Path(os.path.realpath(web_dir), folder)):
        log.warning("web_dir: %s leads outside %s; refused", logs.route_name(f"/{folder}/{name}"), folder)
        raise web.HTTPError(403)
    return candidate if real.is_file() else None


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
    ``AttributeURL`` (the page adds ``?<ContactId>``), ``StreamsURL`` for the
    ``amazon-connect-streams`` library and ``CCPLoginURL`` for SAML sign-in.
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


class SlashRedirectHandler(h.BaseHandler):
    """``/attribute-ui?<id>`` -> ``/attribute-ui/?<id>``, keeping the query string exactly.

    The request guard has made sure the query holds printable ASCII only.
    """

    def get(self) -> None:
        query = self.request.query
        self.redirect(self.request.path + "/" + (f"?{query}" if query else ""), permanent=False)


def routes() -> list[tuple[str, Any, dict[str, Any]] | tuple[str, Any]]:
    """Routes for the agent's pages."""
    return [
        (rf"/{DISPLAY_DIR}", SlashRedirectHandler),
        (rf"/{DISPLAY_DIR}/(.*)", PageHandler, {"path": DISPLAY_DIR, "default_filename": "index.html"}),
        (rf"/{AGENT_DIR}", SlashRedirectHandler),
        (rf"/{AGENT_DIR}/config\.js", AgentConfigHandler),
        (rf"/{AGENT_DIR}/(.*)", AgentPageHandler, {"path": AGENT_DIR, "default_filename": "index.html"}),
    ]
