"""AWS Lambda for the Amazon Connect contact flow: tell the plugin which call carries which code.

The contact flow asks the caller for the code that the plugin handed out in its
``tel:<number>,<code>`` URL, and invokes this function synchronously.  The
function posts ``{"dtmf": <code>, "sessionid": <ContactId>}`` to the plugin's
``/link_phone`` and answers the flow with a flat map of strings (the flow's
``STRING_MAP`` response validation), which the flow reads as
``$.External.linked``:

- ``{"linked": "true"}``: the plugin linked this call to the session (also when
  Amazon Connect retries an invocation that already linked it);
- ``{"linked": "false"}``: the plugin knows no such unused code (HTTP 404), it
  refuses every link for now because its link failure budget is spent (HTTP
  429: never retried here, so that the call goes on to an agent), or the event
  carries no usable code or contact id (then the plugin is not asked); the flow
  may ask the caller again.

That flat map is the contract of ``aws/contact-flow.json``.  A flow built for
the reference plugin's Node Lambda knows no such map: that Lambda threw on every
answer but 2xx, and such a flow takes the block's Error branch for a wrong
code.  With ``UNKNOWN_CODE=error`` this function keeps that contract: every
"not linked" above raises :class:`NotLinked` instead, and a linked call still
answers ``{"linked": "true"}`` (which such a flow ignores).

Invoked from a disconnect flow with the function parameter ``call_event`` set to
``ended``, it posts ``{"sessionid": <ContactId>}`` to the plugin's ``/end_call``
(beside ``/link_phone``) instead, so that the plugin can tell the authentication
plugin the citizen is done, and answers ``{"ended": "true" | "false"}``.

Anything else raises, which sends the flow down the block's Error branch: the
plugin is unreachable, too slow, answers 5xx, or refuses the bearer token.  Each
failure logs one line saying which; no line ever holds the code or the token.

Configuration (Lambda environment variables):

``CALL_URL``
    the plugin's full ``/link_phone`` URL, e.g. ``https://plugin.example.nl/link_phone``;
``CALL_TOKEN``
    optional; sent as ``Authorization: Bearer <token>``: the plugin's ``link_phone_token``;
``CALL_TIMEOUT``
    seconds to wait on the plugin, to connect and for each read of its answer
    (default 3, at most 7: Amazon Connect waits 8 seconds at most for the whole
    invocation; the function's own timeout setting is the hard cap);
``UNKNOWN_CODE``
    ``false`` (default): answer ``{"linked": "false"}`` for a call not linked,
    for ``aws/contact-flow.json``; ``error``: raise ``NotLinked`` instead, for a
    flow built for the reference's Lambda.  Any other value raises ``LinkFailed``.

Standard library only: the file is the whole deployment package.
"""

from __future__ import annotations

import enum
import http.client
import json
import logging
import os
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("assign_id")
log.setLevel(logging.INFO)

#: The keys the flow and this function agree on.
CODE_KEY = "dtmf"
RESULT_KEY = "linked"
LINKED = {RESULT_KEY: "true"}
NOT_LINKED = {RESULT_KEY: "false"}

#: A disconnect flow invokes the function with the parameter call_event = ended.
EVENT_KEY = "call_event"
ENDED = "ended"
ENDED_KEY = "ended"

DEFAULT_TIMEOUT = 3.0
MAX_TIMEOUT = 7.0

#: UNKNOWN_CODE: how a call that is not linked is answered.
UNKNOWN_CODE_FALSE = "false"  # {"linked": "false"}: the flat map of aws/contact-flow.json (the default)
UNKNOWN_CODE_ERROR = "error"  # raise NotLinked: the Error branch, as a flow built for the reference expects
UNKNOWN_CODE_MODES = (UNKNOWN_CODE_FALSE, UNKNOWN_CODE_ERROR)

#: A code as a caller types it: decimal digits only.  Amazon Connect stores the
#: word ``Timeout`` when the caller typed nothing; that is not a code either.
_CODE = re.compile(r"[0-9]{1,64}")
#: A contact id the plugin accepts (Amazon Connect ContactIds are UUIDs).
_CONTACT_ID = re.compile(r"[A-Za-z0-9_.\-]{1,256}")


class LinkFailed(RuntimeError):
    """The plugin could not say yes or no; the flow takes its Error branch."""


class NotLinked(RuntimeError):
    """The call is not linked; raised only with ``UNKNOWN_CODE=error``, for a flow built for the reference."""


class Outcome(enum.Enum):
    """What the plugin said about a code: linked, no such unused code, or no links at all for now."""

    LINKED = "linked"
    UNKNOWN = "the plugin knows no such unused code"
    REFUSED = "the plugin refuses links for now"


@dataclass(frozen=True)
class Config:
    """What the function needs to reach the plugin, read from the environment."""

    url: str
    token: str | None = field(default=None, repr=False)
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Config:
        """Read ``CALL_URL``, ``CALL_TOKEN`` and ``CALL_TIMEOUT``; ``LinkFailed`` when the URL is unusable."""
        url = environ.get("CALL_URL", "").strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            log.error("CALL_URL is not set to an http(s) URL: set it to the plugin's /link_phone URL")
            raise LinkFailed("CALL_URL is not configured")
        token = environ.get("CALL_TOKEN", "").strip() or None
        if token is not None and parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
            log.warning("CALL_TOKEN is sent over plain http: use an https CALL_URL outside a private network")
        return cls(url=url, token=token, timeout=parse_timeout(environ.get("CALL_TIMEOUT")))


def unknown_code_mode(environ: Mapping[str, str]) -> str:
    """``UNKNOWN_CODE``: ``false`` (the default) or ``error``; ``LinkFailed`` for anything else.

    A misspelt value fails loudly rather than falling back: for a flow built for
    the reference, the flat map would send every wrong code on as if linked.
    """
    value = environ.get("UNKNOWN_CODE", "").strip().lower() or UNKNOWN_CODE_FALSE
    if value not in UNKNOWN_CODE_MODES:
        log.error("UNKNOWN_CODE must be %s or %s", UNKNOWN_CODE_FALSE, UNKNOWN_CODE_ERROR)
        raise LinkFailed("UNKNOWN_CODE is not configured correctly")
    return value


def parse_timeout(value: str | None) -> float:
    """``CALL_TIMEOUT`` in seconds: the default when unset or unusable, never above ``MAX_TIMEOUT``."""
    if value is None or not value.strip():
        return DEFAULT_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        log.warning("CALL_TIMEOUT is not a number of seconds; using %.1f", DEFAULT_TIMEOUT)
        return DEFAULT_TIMEOUT
    if not seconds > 0:  # also catches NaN
        log.warning("CALL_TIMEOUT must be above 0; using %.1f", DEFAULT_TIMEOUT)
        return DEFAULT_TIMEOUT
    if seconds > MAX_TIMEOUT:
        log.warning("CALL_TIMEOUT above %.1f s cannot finish inside Amazon Connect's limit; using %.1f",
                    MAX_TIMEOUT, MAX_TIMEOUT)
        return MAX_TIMEOUT
    return seconds


def read_call(event: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The caller's code and the contact id from Amazon Connect's event, each ``None`` when missing or malformed.

    The code comes from ``Details.Parameters.dtmf`` (a function input parameter
    set in the flow) when present and not empty, else from the contact attribute
    ``Details.ContactData.Attributes.dtmf``.
    """
    details = _mapping(_mapping(event).get("Details"))
    contact = _mapping(details.get("ContactData"))
    code = _mapping(details.get("Parameters")).get(CODE_KEY)
    if code is None or (isinstance(code, str) and not code.strip()):
        code = _mapping(contact.get("Attributes")).get(CODE_KEY)
    contact_id = contact.get("ContactId")
    code = code.strip() if isinstance(code, str) else None
    contact_id = contact_id.strip() if isinstance(contact_id, str) else None
    return (code if code and _CODE.fullmatch(code) else None,
            contact_id if contact_id and _CONTACT_ID.fullmatch(contact_id) else None)


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: they would carry the bearer token to wherever the answer points."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any,
                         newurl: str) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def link_phone(config: Config, code: str, contact_id: str) -> Outcome:
    """POST the code and contact id to the plugin and say what it answered; ``LinkFailed`` when it could not say.

    ``200``: linked; ``404``: no such unused code; ``429``: the plugin's link
    failure budget is spent and it refuses every link until its window is over.
    A 429 is not retried: the call goes on (to an agent) without the link.
    """
    status, headers = _post(config, config.url, {"dtmf": code, "sessionid": contact_id}, contact_id,
                            answers=(404, 429))
    if status == 404:
        log.info("contact %s: not linked: %s", contact_id, Outcome.UNKNOWN.value)
        return Outcome.UNKNOWN
    if status == 429:
        log.warning("contact %s: not linked: %s (HTTP 429: its link failure budget is spent%s)",
                    contact_id, Outcome.REFUSED.value, _retry_after(headers))
        return Outcome.REFUSED
    log.info("contact %s: linked", contact_id)
    return Outcome.LINKED


def _retry_after(headers: Message) -> str:
    """``; retry after N s`` from a ``Retry-After`` of whole seconds, else nothing."""
    value = (headers.get("Retry-After") or "").strip()
    return f"; retry after {int(value)} s" if value.isdigit() and len(value) <= 6 else ""


def end_call(config: Config, contact_id: str) -> bool:
    """POST the ended call's contact id to the plugin's ``/end_call``: True when it knew the call."""
    status, _headers = _post(config, end_call_url(config.url), {"sessionid": contact_id}, contact_id, answers=(404,))
    known = status != 404
    log.info("contact %s: end of call %s", contact_id, "reported" if known else "not linked to a session")
    return known


def end_call_url(call_url: str) -> str:
    """``/end_call`` beside the configured ``/link_phone`` URL."""
    parts = urlsplit(call_url)
    base = parts.path.rsplit("/", 1)[0] if parts.path.endswith("/link_phone") else parts.path.rstrip("/")
    return parts._replace(path=f"{base}/end_call", query="", fragment="").geturl()


def _post(config: Config, url: str, payload: Mapping[str, str], contact_id: str,
          answers: tuple[int, ...]) -> tuple[int, Message]:
    """POST JSON to the plugin: status and headers on 2xx or one of ``answers``, else ``LinkFailed`` (logged)."""
    body = json.dumps(payload).encode()
    sent = {"Content-Type": "application/json", "Accept": "application/json",
            "User-Agent": "id-contact-amazon-connect-lambda"}
    if config.token:
        sent["Authorization"] = f"Bearer {config.token}"
    request = urllib.request.Request(url, data=body, headers=sent, method="POST")
    try:
        with _opener.open(request, timeout=config.timeout) as response:
            status, headers = response.status, response.headers
            response.read()
    except urllib.error.HTTPError as error:
        status, headers = error.code, error.headers
        error.close()
    except TimeoutError:
        raise _failed(contact_id, f"the plugin did not answer within {config.timeout:g} s") from None
    except urllib.error.URLError as error:
        if isinstance(error.reason, TimeoutError):
            raise _failed(contact_id, f"the plugin did not answer within {config.timeout:g} s") from None
        raise _failed(contact_id, f"the plugin is unreachable ({type(error.reason).__name__})") from None
    except (OSError, http.client.HTTPException) as error:
        raise _failed(contact_id, f"the plugin is unreachable or answered garbage ({type(error).__name__})") from None
    if 200 <= status < 300 or status in answers:
        return status, headers
    if status in (401, 403):
        raise _failed(contact_id, f"the plugin refused the bearer token (HTTP {status}): "
                                 "CALL_TOKEN must equal the plugin's link_phone_token")
    if status >= 500:
        raise _failed(contact_id, f"the plugin failed (HTTP {status})")
    if 300 <= status < 400:
        raise _failed(contact_id, f"the plugin answered a redirect (HTTP {status}), not followed: "
                                 "CALL_URL must be the exact /link_phone URL")
    raise _failed(contact_id, f"the plugin rejected the request (HTTP {status})")


def _failed(contact_id: str, reason: str) -> LinkFailed:
    """Log which failure happened (never the code or the token) and make the exception to raise."""
    log.error("contact %s: not linked: %s", contact_id, reason)
    return LinkFailed(reason)


def handler(event: Mapping[str, Any], context: Any) -> dict[str, str]:
    """The Lambda entry point (``assign_id.handler``): link the call, answer ``{"linked": "true" | "false"}``.

    With ``UNKNOWN_CODE=error`` a call that is not linked raises ``NotLinked``
    instead of answering ``{"linked": "false"}``.

    Invoked from a disconnect flow with the parameter ``call_event`` = ``ended``,
    it reports the end of the call instead and answers ``{"ended": "true" | "false"}``.
    """
    if _mapping(_mapping(_mapping(event).get("Details")).get("Parameters")).get(EVENT_KEY) == ENDED:
        _code, contact_id = read_call(event)
        if contact_id is None:
            log.warning("event has no usable contact id: not asking the plugin")
            return {ENDED_KEY: "false"}
        return {ENDED_KEY: "true" if end_call(Config.from_environ(os.environ), contact_id) else "false"}
    mode = unknown_code_mode(os.environ)
    code, contact_id = read_call(event)
    if code is None or contact_id is None:
        missing = " and ".join(name for name, value in (("code", code), ("contact id", contact_id)) if value is None)
        log.warning("event has no usable %s: not asking the plugin", missing)
        return _not_linked(mode, f"the event has no usable {missing}")
    outcome = link_phone(Config.from_environ(os.environ), code, contact_id)
    if outcome is Outcome.LINKED:
        return dict(LINKED)
    return _not_linked(mode, outcome.value)


def _not_linked(mode: str, reason: str) -> dict[str, str]:
    """``{"linked": "false"}``, or with ``UNKNOWN_CODE=error`` raise ``NotLinked`` (the flow's Error branch)."""
    if mode == UNKNOWN_CODE_ERROR:
        raise NotLinked(f"not linked: {reason}")
    return dict(NOT_LINKED)
