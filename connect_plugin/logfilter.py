"""A filter on Tornado's own loggers: what they say about a request, without the request's secrets.

Tornado logs, from places the plugin does not override, the full request URI
(query string and all), header values and cookie values.  The handlers' own
``log_exception`` (``handlers.log_handler_exception``) already avoids most of
these lines; this filter is the net under it, for handlers the plugin does not
write (a plugin's sign-in routes) and for lines logged before any handler runs
(a malformed request).  It rewrites the arguments of the lines it knows:

* ``"%d %s: %s"`` (an ``HTTPError`` with a message): the request summary
  ``METHOD URI (address)`` becomes ``METHOD <route> (address)``, the message its first words;
* ``"Uncaught exception %s\\n%r"``: the summary likewise, the request's repr dropped;
* ``"Malformed HTTP message from %s: %s"`` and invalid form bodies: the error's first words
  (Tornado quotes the offending header or Host value after them);
* cookie warnings (``"Invalid cookie signature %r"`` ...): the cookie value is dropped;
* ``"Could not open static file %r: %s"``, ``"Delegate for %s %s request not found"``: no path.

Lines it does not know pass unchanged.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from .handlers import method_name, route_name

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
