"""What the logs say about a request: its route and kind, never what it carried.

No log line may hold a code, a token, a query string, a cookie or a contact id
(the agent sign-in's audit line is the one place that names a contact).  Here:

* :func:`route_name` and :func:`method_name`: a request's path and method fit for a log;
* :func:`log_request`: the access log line (Tornado's ``log_function``);
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
from types import TracebackType
from typing import Any

from tornado import web

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
    (``trusted_proxies``); never a query string.
    """
    status = handler.get_status()
    level = logging.INFO if status < 400 else logging.WARNING if status < 500 else logging.ERROR
    logging.getLogger("tornado.access").log(
        level, "%d %s %s %.1fms %s", status, method_name(handler.request.method), route_name(handler.request.path),
        1000.0 * handler.request.request_time(), handler.request.remote_ip,
    )


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
