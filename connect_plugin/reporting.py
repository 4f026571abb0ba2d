"""Error reporting: unexpected errors sent to Sentry (``sentry_dsn``), with nothing of the request in them.

Optional: ``pip install 'connect-plugin[sentry]'`` brings ``sentry-sdk``.  An
unexpected error is one that the plugin logs at ERROR with its traceback (a
handler's ``unexpected error in ...``, an uncaught exception); refusals,
``404``s and store outages are not reported.

Nothing that could carry a token, a code, a contact id or an attribute value
leaves the process.  The SDK is told not to collect it
(``send_default_pii=False``, ``include_local_variables=False``,
``max_request_body_size="never"``, no breadcrumbs, no tracing, no sessions),
and :func:`scrub` rebuilds every event from an allow-list before it is sent:
the error's type and where in the code it happened (file, function, line,
the source lines around it), the log message's template, the release,
environment and runtime, and two tags, the request id (to find the request's
log lines) and its route (``/session_result/<resultcode>``).  Dropped: the
request (URL, query string, headers, cookies, body), local variables, the
exception's message (it may quote data), the log message's arguments,
breadcrumbs, user, extra data and any field an SDK version adds later.
"""

from __future__ import annotations

import logging
import re
from importlib.metadata import PackageNotFoundError, version
from typing import Any, cast

from .config import Settings
from .errors import ConfigError
from .logs import CURRENT_REQUEST, route_name

log = logging.getLogger(__name__)

#: Top-level event fields that describe the error and the program, never a request.
SAFE_FIELDS = ("event_id", "timestamp", "level", "logger", "platform", "release", "environment", "server_name",
               "sdk", "fingerprint", "modules")
#: A transaction name kept: a handler's dotted Python name, never a URL path (which may hold a code).
_PYTHON_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*$")
#: What is kept of a stack frame: where it is in the code, and the code there.
SAFE_FRAME_FIELDS = ("filename", "abs_path", "module", "function", "lineno", "colno", "in_app", "pre_context",
                     "context_line", "post_context", "platform", "instruction_addr")
SAFE_CONTEXTS = ("runtime", "os")
#: Loggers whose lines are never reports: a 5xx access line repeats the error already reported (or is
#: a store outage, which the metrics and /health tell), and the audit line names a contact.
QUIET_LOGGERS = ("tornado.access", "connect_plugin.audit")


def start(settings: Settings) -> bool:
    """Start reporting when ``sentry_dsn`` is set; whether it started.

    ``ConfigError`` when ``sentry-sdk`` is not installed or the SDK refuses the DSN.
    """
    if settings.sentry_dsn is None:
        return False
    try:
        import sentry_sdk
        from sentry_sdk.integrations.logging import ignore_logger
        from sentry_sdk.utils import BadDsn
    except ImportError:
        raise ConfigError("sentry_dsn", "needs sentry-sdk: pip install 'connect-plugin[sentry]'") from None
    try:
        sentry_sdk.init(
            dsn=settings.sentry_dsn.reveal(),
            environment=settings.sentry_environment,
            release=f"connect-plugin@{_version()}",
            send_default_pii=False,
            include_local_variables=False,
            max_request_body_size="never",
            max_breadcrumbs=0,
            before_send=cast(Any, scrub),
            before_send_transaction=cast(Any, _drop),
            traces_sample_rate=None,
            auto_session_tracking=False,
            trace_propagation_targets=[],
        )
    except BadDsn:
        raise ConfigError("sentry_dsn", "the Sentry SDK does not accept this DSN") from None
    for name in QUIET_LOGGERS:
        ignore_logger(name)
    return True


def scrub(event: dict[str, Any], hint: Any = None) -> dict[str, Any]:
    """The event as it may leave the process: rebuilt from the allow-lists above (see the module's docstring)."""
    out = {key: event[key] for key in SAFE_FIELDS if key in event}
    transaction = event.get("transaction")
    if isinstance(transaction, str) and _PYTHON_NAME.match(transaction):
        out["transaction"] = transaction
    contexts = event.get("contexts") or {}
    out["contexts"] = {key: contexts[key] for key in SAFE_CONTEXTS if key in contexts}
    exceptions = (event.get("exception") or {}).get("values") or []
    if exceptions:
        out["exception"] = {"values": [_exception(value) for value in exceptions]}
    template = (event.get("logentry") or {}).get("message")
    if isinstance(template, str):
        out["logentry"] = {"message": template}
    current = CURRENT_REQUEST.get()
    if current is not None:
        out["tags"] = {"request_id": current[0], "route": route_name(current[1])}
    return out


def _exception(value: dict[str, Any]) -> dict[str, Any]:
    """An exception's type, module and stack, without its message or any frame's variables."""
    out: dict[str, Any] = {key: value[key] for key in ("type", "module") if key in value}
    mechanism = value.get("mechanism") or {}
    out["mechanism"] = {key: mechanism[key] for key in ("type", "handled") if key in mechanism}
    out["value"] = ""
    frames = (value.get("stacktrace") or {}).get("frames") or []
    if frames:
        out["stacktrace"] = {"frames": [{key: frame[key] for key in SAFE_FRAME_FIELDS if key in frame}
                                        for frame in frames]}
    return out


def _drop(event: dict[str, Any], hint: Any = None) -> None:
    """Performance data (transactions) is never sent."""
    return None


def _version() -> str:
    try:
        return version("connect-plugin")
    except PackageNotFoundError:
        return "unknown"
