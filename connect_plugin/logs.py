"""What the logs say about a request: its route and kind, never what it carried.

No log line may hold a code, a token, a query string, a cookie or a contact id
(the agent sign-in's audit line is the one place that names a contact).  Here:

* :func:`route_name` and :func:`method_name`: a request's path and method fit for a log;
* :func:`log_request`: the access log line (Tornado's ``log_function``), with its
  route, method, status, duration, client and request id as fields of their own;
* :func:`begin_request` and :class:`RequestIdHeader`: every request's id, in the
  ``X-Request-Id`` response header and in every log line written while it is handled;
* :class:`JsonLines`: ``log_format = "json"``, one JSON object per line, with a
  fixed set of fields (a library's extra fields never slip into the log);
* :func:`log_handler_exception`: how every handler logs an error;
* :class:`RedactRequests`: a filter on Tornado's own loggers, the net under the
  rest.  Tornado logs, from places the plugin does not override, the full
  request URI (query string and all), header values and cookie values: for
  handlers the plugin does not write (a plugin's sign-in routes) and for lines
  logged before any handler runs (a malformed request).  It rewrites the
  arguments of the lines it knows:

  * ``"%d %s: %s"`` (an ``HTTPError`` with a message): the request summary
    ``METHOD URI (address)`` becomes ``METHOD <route> (address)``, the message its first plain words;
  * ``"Uncaught exception %s\\n%r"``: the summary likewise, the request's repr dropped;
  * ``"Malformed HTTP message from %s: %s"`` and invalid form bodies: the error's first plain
    words (Tornado quotes the offending header or Host value after them);
  * cookie warnings (``"Invalid cookie signature %r"`` ...): the cookie value is dropped;
  * ``"Could not open static file %r: %s"``, ``"Delegate for %s %s request not found"``: no path.

  Lines it does not know pass unchanged.
"""

from __future__ import annotations

import logging
import re
import secrets
from contextvars import ContextVar
from types import TracebackType
from typing import Any

from pythonjsonlogger.json import JsonFormatter
from tornado import httputil, web

from .addresses import IPNetwork, in_networks
from .errors import PluginError, StoreUnavailable

log = logging.getLogger(__name__)

ROUTE_NAMES = (
    ("/session_result/", "/session_result/<resultcode>"),
    ("/session_info/", "/session_info/<contact>"),
    ("/session_events/", "/session_events/<contact>"),
)
#: A path segment shown in logs as it is: lower-case words, no digits.  No code,
#: token or contact id looks like this; anything else is shown as ``<...>``.
_PLAIN_SEGMENT = re.compile(r"^[a-z_\-]+(?:\.[a-z]+)*$")
MAX_LOGGED_PATH = 64


def route_name(path: str) -> str:
    """A request path fit for a log: never a code, a token, a contact id or a query string.

    The routes that carry a secret show a placeholder (``/session_result/<resultcode>``);
    elsewhere only plain segments (``/attribute-ui/display.js``) are shown as they are.
    """
    for prefix, name in ROUTE_NAMES:
        if path.startswith(prefix):
            return name
    path = path.partition("?")[0]
    shown = "/".join(s if not s or _PLAIN_SEGMENT.match(s) else "<...>" for s in path.split("/"))
    return shown if len(shown) <= MAX_LOGGED_PATH else shown[:MAX_LOGGED_PATH] + "..."


def method_name(method: str | None) -> str:
    """A request method fit for a log: a standard one, else ``<other>`` (a method is any token a client likes)."""
    return method if method in web.RequestHandler.SUPPORTED_METHODS else "<other>"


def log_request(handler: web.RequestHandler) -> None:
    """Tornado's access log: status, method, route (see ``route_name``), time and client address.

    The client address is the connection's, or what a trusted proxy says
    (``trusted_proxies``); never a query string.  The same values go along as
    the record's fields (``route``, ``method``, ``status``, ``duration_ms``,
    ``client``, ``request_id``) for ``log_format = "json"``.
    """
    request = handler.request
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    access = logging.getLogger("tornado.access")
    if not access.isEnabledFor(level):
        return
    method, route, duration = method_name(request.method), route_name(request.path), 1000.0 * request.request_time()
    access.log(
        level, "%d %s %s %.1fms %s", status, method, route, duration, request.remote_ip,
        extra={"route": route, "method": method, "status": status, "duration_ms": round(duration, 1),
               "client": request.remote_ip, "request_id": getattr(request, "request_id", None)},
    )


# --------------------------------------------------------------------------- request ids

#: The request being handled in this context: ``(request id, path)``, for log lines and error reports
#: (which show the path only as ``route_name`` shows it).
CURRENT_REQUEST: ContextVar[tuple[str, str] | None] = ContextVar("connect_plugin_request", default=None)
#: An ``X-Request-Id`` from a trusted proxy is kept when it looks like this: short, and nothing to escape.
SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,63}$")
REQUEST_ID_HEADER = "X-Request-Id"


def begin_request(request: httputil.HTTPServerRequest, trusted_proxies: tuple[IPNetwork, ...]) -> str:
    """Give a request its id (``request.request_id``), and make it the current one for log lines.

    The id is the incoming ``X-Request-Id`` when one of ``trusted_proxies`` sent
    it and it is a safe short token (``SAFE_REQUEST_ID``); else a fresh random
    one.  From anyone else the header is ignored: a client could otherwise
    write what it likes (a code, a contact id) into every log line.
    """
    given = request.headers.get(REQUEST_ID_HEADER, "") if trusted_proxies else ""
    if given and SAFE_REQUEST_ID.match(given) and in_networks(_peer(request), trusted_proxies):
        request_id = given
    else:
        request_id = secrets.token_hex(8)
    request.request_id = request_id  # type: ignore[attr-defined]
    CURRENT_REQUEST.set((request_id, request.path))
    return request_id


def _peer(request: httputil.HTTPServerRequest) -> str:
    """The address of the connection's other end (the proxy, when there is one), not the forwarded client."""
    address = getattr(getattr(request.connection, "context", None), "address", None)
    return str(address[0]) if isinstance(address, tuple) and address else ""


class RequestIdHeader(web.OutputTransform):
    """Puts the request's id in every response's ``X-Request-Id`` header, errors and redirects too."""

    def __init__(self, request: httputil.HTTPServerRequest) -> None:
        self.request_id = getattr(request, "request_id", None)

    def transform_first_chunk(self, status_code: int, headers: httputil.HTTPHeaders, chunk: bytes,
                              finishing: bool) -> tuple[int, httputil.HTTPHeaders, bytes]:
        if self.request_id:
            headers[REQUEST_ID_HEADER] = self.request_id
        return status_code, headers, chunk

    def transform_chunk(self, chunk: bytes, finishing: bool) -> bytes:
        return chunk


class RequestContext(logging.Filter):
    """Adds ``request_id`` to every record written while a request is handled (a handler's filter)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            current = CURRENT_REQUEST.get()
            record.request_id = current[0] if current is not None else None
        return True


# --------------------------------------------------------------------------- log_format = "json"


class JsonLines(JsonFormatter):
    """One JSON object per line, with only the fields in ``FIELDS``.

    Whatever else a record carries (a library's ``extra=``, a dict logged as the
    message) is dropped, so that the JSON log holds no more than the plain one.
    """

    FIELDS = ("time", "level", "logger", "message", "request_id", "route", "method", "status", "duration_ms",
              "client", "exc_info", "stack_info")

    def __init__(self) -> None:
        super().__init__("%(levelname)s %(name)s %(message)s", rename_fields={"levelname": "level", "name": "logger"},
                         timestamp="time", json_ensure_ascii=False)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        return {key: log_data[key] for key in self.FIELDS if log_data.get(key) is not None}


def log_handler_exception(handler: web.RequestHandler, typ: type[BaseException] | None,
                          value: BaseException | None, tb: TracebackType | None) -> None:
    """How every handler logs what went wrong: the route and the kind of error, never the request.

    Tornado's own ``log_exception`` names the full URI (query string and all)
    and, for a ``500``, the whole request; a path, a query or a body may carry
    codes, tokens or contact ids.  Expected refusals are not logged at all.
    """
    request = handler.request
    if isinstance(value, PluginError) and value.status < 500:
        return
    if isinstance(value, web.HTTPError) and value.status_code < 500:
        log.debug("%s %s: %d", method_name(request.method), route_name(request.path), value.status_code)
        return
    if isinstance(value, StoreUnavailable | web.HTTPError):
        log.warning("%s %s: %s", method_name(request.method), route_name(request.path), type(value).__name__)
        return
    log.error("unexpected error in %s %s", method_name(request.method), route_name(request.path),
              exc_info=(typ, value, tb))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- Tornado's own lines


TORNADO_LOGGERS = ("tornado.general", "tornado.application", "tornado.access")

_SUMMARY = re.compile(r"^(\S*) (\S*) \((.*)\)$")
#: A word of an error message that says what went wrong: letters (``x-www-form-urlencoded``,
#: ``multipart/form-data``), never a digit or a quote, as every code, token and contact id has.
_PLAIN_WORD = re.compile(r"^[A-Za-z][A-Za-z/\-]{0,23}:?$")
_COOKIE_MESSAGES = frozenset({
    "Invalid cookie signature %r", "Expired cookie %r", "Cookie timestamp in future; possible tampering %r",
    "Tampered cookie %r",
})
_ERROR_MESSAGES = frozenset({
    "Malformed HTTP message from %s: %s",
    "Invalid x-www-form-urlencoded body: %s",
    "Invalid multipart/form-data: %s",
})
REDACTED = "<redacted>"


def summary(text: Any) -> str:
    """Tornado's request summary ``METHOD URI (address)`` with the URI reduced to its route."""
    match = _SUMMARY.match(str(text))
    if match is None:
        return REDACTED
    method, uri, address = match.groups()
    return f"{method_name(method)} {route_name(uri.partition('?')[0])} ({address})"


def first_words(text: Any) -> str:
    """The start of an error message, up to a colon or the first word that is not plain: what went wrong."""
    shown = []
    for word in str(text).split():
        if not _PLAIN_WORD.match(word):
            break
        shown.append(word.rstrip(":"))
        if word.endswith(":"):
            break
    return " ".join(shown) or (type(text).__name__ if isinstance(text, BaseException) else REDACTED)


class RedactRequests(logging.Filter):
    """Rewrites the arguments of Tornado's lines that would carry a request's URI, headers or cookies."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else None
        message = record.msg
        if args is None:
            return True
        if message == "%d %s: %s" and len(args) == 3:
            record.args = (args[0], summary(args[1]), first_words(args[2]))
        elif message == "Uncaught exception %s\n%r" and len(args) == 2:
            record.msg = "Uncaught exception %s"
            record.args = (summary(args[0]),)
        elif message in _ERROR_MESSAGES:
            record.args = (*args[:-1], first_words(args[-1]))
        elif message in _COOKIE_MESSAGES:
            record.args = (REDACTED,)
        elif message == "Could not open static file %r: %s" and len(args) == 2:
            record.args = (REDACTED, first_words(args[1]))
        elif message == "Delegate for %s %s request not found" and len(args) == 2:
            record.args = (method_name(str(args[0])), route_name(str(args[1]).partition("?")[0]))
        return True


_FILTER = RedactRequests()


def install() -> None:
    """Put the filter on Tornado's loggers (once; calling again changes nothing)."""
    for name in TORNADO_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
