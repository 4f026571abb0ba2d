"""What every request passes before a handler sees it, and who the client is behind a proxy.

* :class:`RequestGuard` looks at a request before routing: a request target
  that is no clean path is refused (see :func:`target_problem`; ``.``/``..``
  segments are left to the routes: no route takes them, and the pages refuse
  a way out of their folder with ``403``); a ``Host`` this plugin does not
  serve gets ``421`` (DNS rebinding: a page on an attacker's domain whose name
  now points at this server still names the attacker's domain in ``Host``).
  ``PluginApplication.find_handler`` routes a refused request to
  ``handlers.RefusalHandler``, so the guard holds for every route, the agent
  sign-in's and the pages' too.
* :class:`ProxyAwareHTTPServer` replaces Tornado's ``xheaders=True``, which
  believes ``X-Real-Ip``/``X-Forwarded-For`` from anyone: here they count only
  when the connection comes from one of ``trusted_proxies``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable
from urllib.parse import unquote_to_bytes, urlsplit

from tornado import httputil
from tornado.httpserver import HTTPServer

from .addresses import IPNetwork, in_networks, ip_or_none, is_loopback_host, normalise_host
from .config import Settings
from .errors import BadRequest, MisdirectedRequest, NotFound, PluginError, UriTooLong

#: The longest request target (path and query) served; every real one is far shorter.
MAX_TARGET = 4096
#: Paths answered whatever the ``Host``: load balancers' health checks name the instance's address.
HOST_EXEMPT_PATHS = frozenset({"/health"})
#: Paths also answered when the ``Host`` is an IP address: Prometheus scrapes its targets by address.
#: (DNS rebinding needs a name: a page can only make a browser send an address it was loaded from.)
IP_HOST_PATHS = frozenset({"/metrics"})

_PRINTABLE_ASCII = re.compile(r"^[\x21-\x7e]*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_ENCODED_SEPARATOR = re.compile(r"%(2f|5c)", re.IGNORECASE)


def target_problem(path: str, query: str, uri: str) -> PluginError | None:
    """Why a request target is refused, or None for a clean one.

    A target that is not even well-formed (raw bytes that must be
    percent-encoded, no path) is ``400``, as is a query string that decodes to
    something no client means (not UTF-8, control characters).  A path that
    is well-formed but can name nothing served here (an encoded slash, an
    empty segment, bytes that are not UTF-8, control characters) is ``404``,
    as any other path no route serves.
    """
    if len(uri) > MAX_TARGET:
        return UriTooLong(f"the request target is over {MAX_TARGET} bytes")
    if not path.startswith("/"):
        return BadRequest("the request target must be a path")
    if not _PRINTABLE_ASCII.match(path) or not _PRINTABLE_ASCII.match(query):
        return BadRequest("the request target holds characters that must be percent-encoded")
    problem = _decoding_problem(query)
    if problem is not None:
        return BadRequest(f"the query string {problem}")
    if _ENCODED_SEPARATOR.search(path) or "//" in path or _decoding_problem(path) is not None:
        return NotFound()
    return None


def _decoding_problem(part: str) -> str | None:
    """What is wrong with a percent-encoded path or query once decoded, or None."""
    try:
        decoded = unquote_to_bytes(part).decode("utf-8")
    except UnicodeDecodeError:
        return "is not UTF-8"
    return "holds control characters" if _CONTROL.search(decoded) else None


class HostAllowList:
    """The hosts a request's ``Host`` header may name: this plugin's own, loopback, and ``allowed_hosts``.

    Names are compared in normal form (``addresses.normalise_host``): case,
    port, brackets and one trailing dot make no difference.
    """

    def __init__(self, settings: Settings) -> None:
        own = [urlsplit(url).hostname or "" for url in (settings.internal_url, settings.external_url or "")]
        self.any = "*" in settings.allowed_hosts
        self.hosts = frozenset(filter(None, (normalise_host(h) for h in (*own, *settings.allowed_hosts)
                                             if h and h != "*")))

    def allows(self, host_header: str) -> bool:
        """Whether a ``Host`` header names a host this plugin serves."""
        if self.any:
            return True
        host = normalise_host(host_header)
        return host is not None and (host in self.hosts or is_loopback_host(host))


class RequestGuard:
    """The checks made on every request before routing (see the module's docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.hosts = HostAllowList(settings)

    def refusal(self, request: httputil.HTTPServerRequest) -> PluginError | None:
        """The error to answer ``request`` with, or None to route it as usual."""
        problem = target_problem(request.path, request.query, request.uri or "")
        if problem is not None:
            return problem
        if request.path in HOST_EXEMPT_PATHS or self.hosts.allows(request.host):
            return None
        if request.path in IP_HOST_PATHS and ip_or_none(normalise_host(request.host) or "") is not None:
            return None
        return MisdirectedRequest("this server does not serve that host name")


# --------------------------------------------------------------------------- forwarded client addresses


def forwarded_client(headers: httputil.HTTPHeaders, proxies: tuple[IPNetwork, ...]) -> str | None:
    """The client's address as told by trusted proxies, or None when they tell nothing usable.

    ``X-Forwarded-For`` is read from the right (each proxy appends the address
    it was contacted from) past the trusted proxies; the first address that is
    not one of them is the client.  ``X-Real-Ip`` counts only when there is no
    ``X-Forwarded-For``: proxies such as AWS's load balancers pass a client's
    own ``X-Real-Ip`` through unchanged.
    """
    hops = [hop.strip() for value in headers.get_list("X-Forwarded-For") for hop in value.split(",")]
    hops = [hop for hop in hops if hop]
    if hops:
        client = None
        for hop in reversed(hops):
            if ip_or_none(hop) is None:
                break
            client = hop
            if not in_networks(hop, proxies):
                break
        return str(ip_or_none(client)) if client is not None else None
    real = headers.get("X-Real-Ip", "").strip()
    return str(ip_or_none(real)) if ip_or_none(real) is not None else None


def forwarded_protocol(headers: httputil.HTTPHeaders) -> str | None:
    """``http`` or ``https`` as the nearest trusted proxy says (``X-Forwarded-Proto``, ``X-Scheme``)."""
    value = headers.get("X-Forwarded-Proto") or headers.get("X-Scheme") or ""
    last = value.split(",")[-1].strip().lower()
    return last if last in ("http", "https") else None


class _ForwardedHeaders(httputil.HTTPMessageDelegate):
    """Wraps a request's delegate: applies forwarded headers when the peer is a trusted proxy."""

    def __init__(self, delegate: httputil.HTTPMessageDelegate, connection: httputil.HTTPConnection,
                 proxies: tuple[IPNetwork, ...]) -> None:
        self.delegate = delegate
        self.context = getattr(connection, "context", None)
        self.proxies = proxies
        self.saved: tuple[str, str] | None = None

    def headers_received(self, start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
                         headers: httputil.HTTPHeaders) -> Awaitable[None] | None:
        context = self.context
        if context is not None and in_networks(context.remote_ip, self.proxies):
            self.saved = (context.remote_ip, context.protocol)
            context.remote_ip = forwarded_client(headers, self.proxies) or context.remote_ip
            context.protocol = forwarded_protocol(headers) or context.protocol
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Awaitable[None] | None:
        return self.delegate.data_received(chunk)

    def finish(self) -> None:
        self.delegate.finish()
        self._restore()

    def on_connection_close(self) -> None:
        self.delegate.on_connection_close()
        self._restore()

    def _restore(self) -> None:
        # The next request on a kept-alive connection starts from the peer's own address again.
        if self.saved is not None and self.context is not None:
            self.context.remote_ip, self.context.protocol = self.saved
            self.saved = None


class ProxyAwareHTTPServer(HTTPServer):
    """An HTTPServer that believes forwarded-client headers only from ``trusted_proxies``.

    Construct it with ``xheaders=False`` and set ``trusted_proxies`` before
    adding sockets.
    """

    trusted_proxies: tuple[IPNetwork, ...] = ()

    def start_request(self, server_conn: object, request_conn: httputil.HTTPConnection
                      ) -> httputil.HTTPMessageDelegate:
        delegate = super().start_request(server_conn, request_conn)
        if not self.trusted_proxies:
            return delegate
        return _ForwardedHeaders(delegate, request_conn, self.trusted_proxies)
