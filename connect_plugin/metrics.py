"""What the plugin counts for Prometheus, through one small interface.

The flow service, the HTTP layer and the session feedback call named methods
(``metrics.link_failed(...)``, ``metrics.request(...)``) on a :class:`Metrics`;
nothing else in the plugin knows Prometheus.  :class:`Metrics` itself counts
nothing: it is what a plugin with ``metrics = false`` runs with.
:class:`PrometheusMetrics` counts into a ``CollectorRegistry`` of its own, one
per running plugin (never the process-wide default registry), and renders it
for ``GET /metrics`` (``metrics_http``).

Every label takes its values from a closed set, so that no request can make
the number of series grow: routes are the application's route patterns
(:class:`RouteLabels`), token refusals the reasons in
``tokens.REFUSAL_REASONS``, store operations the ``SessionStore`` methods.
No label or value is ever a code, a token, a contact id or an attribute.

:class:`MeteredStore` wraps the session store to count its failures and to
know whether it answered last time (``connect_plugin_store_up``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from tornado import web

from .errors import StoreUnavailable
from .logs import route_name
from .tokens import REFUSAL_REASONS

#: What a 429 was refused by: the link failure budget, or the queue of tokens waiting to be checked.
LIMITS = ("link_failure_budget", "receipt_queue")
FEEDBACK_KINDS = ("user_active", "logout")
FEEDBACK_OUTCOMES = ("sent", "failed", "refused")
#: The ``SessionStore`` methods counted by :class:`MeteredStore`.
STORE_OPERATIONS = ("ping", "create", "awaits_result", "store_result", "link", "count_link_failure",
                    "find_by_contact", "delete_idle", "delete_expired")
#: Route labels of requests that reached no route.
UNMATCHED, REFUSED, OTHER = "<unmatched>", "<refused>", "<other>"


class Metrics:
    """The plugin's measurements; this base class counts nothing (``metrics = false``)."""

    enabled = False

    def session_started(self) -> None:
        """A session was created."""

    def result_stored(self, inline: bool) -> None:
        """A verified result was stored (``inline``: with ``start_communication``)."""

    def link_made(self) -> None:
        """A call was linked to its session."""

    def link_failed(self, window_count: int, window_ends: float) -> None:
        """A link failed; the store now counts ``window_count`` failures in the window ending at ``window_ends``."""

    def too_many_requests(self, limit: str) -> None:
        """A request was refused with ``429`` by ``limit`` (one of ``LIMITS``)."""

    def token_refused(self, reason: str) -> None:
        """A token was refused for ``reason`` (one of ``tokens.REFUSAL_REASONS``)."""

    def codes_exhausted(self) -> None:
        """No free DTMF code was found (``503 CodesExhausted``)."""

    def feedback(self, kind: str, outcome: str) -> None:
        """Session feedback ``kind`` was ``sent``, ``failed`` or ``refused`` (by the feedback policy)."""

    def display_opened(self) -> None:
        """A live display connected (``/session_events``)."""

    def display_closed(self) -> None:
        """A live display went away."""

    def store_answered(self) -> None:
        """The store answered a call."""

    def store_failed(self, operation: str) -> None:
        """A store call raised ``StoreUnavailable``."""

    def cleanup_ran(self, sessions: int, expired: int) -> None:
        """A cleanup deleted ``sessions`` idle sessions and ``expired`` expired records."""

    def request(self, route: str, status: int, seconds: float) -> None:
        """A request to ``route`` (a ``RouteLabels`` label) was answered ``status`` after ``seconds``."""


class PrometheusMetrics(Metrics):
    """:class:`Metrics` counted into a registry of this plugin's own, rendered by :meth:`render`.

    ``budget`` is ``link_failure_budget``; ``clock`` the time that link windows
    are compared with (the flow service's).
    """

    enabled = True

    def __init__(self, budget: int, version: str = "unknown", clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.clock = clock
        r = self.registry
        Gauge("connect_plugin_info", "This plugin's version (always 1)", ["version"], registry=r).labels(version).set(1)
        self.sessions = Counter("connect_plugin_sessions_started", "Sessions created", registry=r)
        self.results = Counter("connect_plugin_results_stored", "Verified results stored, posted or inline",
                               ["via"], registry=r)
        self.links = Counter("connect_plugin_links_made", "Calls linked to their session", registry=r)
        self.link_failures = Counter("connect_plugin_link_failures",
                                     "Failed link attempts (wrong or used code; counted against the budget)",
                                     registry=r)
        Gauge("connect_plugin_link_failure_budget", "link_failure_budget: failed links allowed per minute",
              registry=r).set(budget)
        self._window = (0, 0.0)
        Gauge("connect_plugin_link_failure_budget_used",
              "Failed links counted in the current minute by every instance on the database, as this instance "
              "last heard; 0 once the minute is over", registry=r).set_function(self._budget_used)
        self.refused = Counter("connect_plugin_too_many_requests", "Requests refused with 429, by the limit that "
                               "refused them", ["limit"], registry=r)
        self.token_refusals = Counter("connect_plugin_token_refusals", "Auth-result tokens refused, by reason",
                                      ["reason"], registry=r)
        self.exhausted = Counter("connect_plugin_codes_exhausted", "start_communication answered 503 "
                                 "CodesExhausted (no free DTMF code)", registry=r)
        self.feedbacks = Counter("connect_plugin_session_feedback", "Session feedback POSTs, by kind and outcome",
                                 ["kind", "outcome"], registry=r)
        self.displays = Gauge("connect_plugin_live_displays", "Open live display streams (/session_events)",
                              registry=r)
        self.store_errors = Counter("connect_plugin_store_errors", "Store calls that failed (StoreUnavailable), by "
                                    "operation", ["operation"], registry=r)
        self.store_up = Gauge("connect_plugin_store_up", "1 when the store answered its last call, 0 when that "
                              "call failed", registry=r)
        self.store_up.set(1)
        self.cleanups = Counter("connect_plugin_cleanup_runs", "Cleanups of idle sessions that completed",
                                registry=r)
        self.deleted = Counter("connect_plugin_cleanup_deleted", "Rows deleted by cleanups: idle sessions, expired "
                               "records (replay keys, failure windows)", ["kind"], registry=r)
        self.durations = Histogram("connect_plugin_http_request_duration_seconds", "Time to answer a request, by "
                                   "route (an event stream counts until it ends)", ["route"], registry=r)
        self.responses = Counter("connect_plugin_http_responses", "Responses by route and status",
                                 ["route", "status"], registry=r)
        self._request_children: dict[tuple[str, int], tuple[Any, Any]] = {}
        # Every series of a closed label set starts at 0, so that rate() sees its first increase.
        for via in ("post", "inline"):
            self.results.labels(via)
        for limit in LIMITS:
            self.refused.labels(limit)
        for reason in REFUSAL_REASONS:
            self.token_refusals.labels(reason)
        for kind in FEEDBACK_KINDS:
            for outcome in FEEDBACK_OUTCOMES:
                self.feedbacks.labels(kind, outcome)
        for operation in STORE_OPERATIONS:
            self.store_errors.labels(operation)
        for kind in ("sessions", "expired"):
            self.deleted.labels(kind)

    def render(self, accept: str | None) -> tuple[bytes, str]:
        """The registry in the format ``accept`` asks for (Prometheus text, or OpenMetrics); body and type."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type

    def _budget_used(self) -> float:
        count, ends = self._window
        return float(count) if self.clock() < ends else 0.0

    def session_started(self) -> None:
        self.sessions.inc()

    def result_stored(self, inline: bool) -> None:
        self.results.labels("inline" if inline else "post").inc()

    def link_made(self) -> None:
        self.links.inc()

    def link_failed(self, window_count: int, window_ends: float) -> None:
        self.link_failures.inc()
        if window_ends >= self._window[1]:
            self._window = (window_count, window_ends)

    def too_many_requests(self, limit: str) -> None:
        self.refused.labels(limit if limit in LIMITS else OTHER).inc()

    def token_refused(self, reason: str) -> None:
        self.token_refusals.labels(reason if reason in REFUSAL_REASONS else OTHER).inc()

    def codes_exhausted(self) -> None:
        self.exhausted.inc()

    def feedback(self, kind: str, outcome: str) -> None:
        self.feedbacks.labels(kind if kind in FEEDBACK_KINDS else OTHER,
                              outcome if outcome in FEEDBACK_OUTCOMES else OTHER).inc()

    def display_opened(self) -> None:
        self.displays.inc()

    def display_closed(self) -> None:
        self.displays.dec()

    def store_answered(self) -> None:
        self.store_up.set(1)

    def store_failed(self, operation: str) -> None:
        self.store_errors.labels(operation if operation in STORE_OPERATIONS else OTHER).inc()
        self.store_up.set(0)

    def cleanup_ran(self, sessions: int, expired: int) -> None:
        self.cleanups.inc()
        self.deleted.labels("sessions").inc(sessions)
        self.deleted.labels("expired").inc(expired)

    def request(self, route: str, status: int, seconds: float) -> None:
        # Labelled children, looked up once per route and status (``labels()`` validates and locks each time).
        key = (route, status)
        children = self._request_children.get(key)
        if children is None:
            children = self._request_children[key] = (self.durations.labels(route),
                                                      self.responses.labels(route, str(status)))
        children[0].observe(seconds)
        children[1].inc()


# --------------------------------------------------------------------------- routes as labels

_GROUP = re.compile(r"\((?:[^()]|\([^()]*\))*\)")


def route_label(pattern: str) -> str:
    """A route pattern as a label, in the access log's words: ``/session_result/<resultcode>``, ``/attribute-ui/<...>``.

    Each group of the pattern stands for a path parameter; ``logs.route_name``
    names it as the log does.
    """
    sample = _GROUP.sub("0", pattern).removesuffix("$").replace("\\", "")
    return route_name(sample)


class RouteLabels:
    """Which route a request took, as a label from the application's own route table (a closed set).

    ``special`` names the handler classes that serve no route (the fallback's
    ``404``, a refusal made before routing).
    """

    def __init__(self, rules: Iterable[Any], special: dict[type, str]) -> None:
        self.special = dict(special)
        self.by_class: dict[type, list[tuple[re.Pattern[str], str]]] = {}
        for rule in rules:
            regex = getattr(rule.matcher, "regex", None)
            if isinstance(rule.target, type) and regex is not None:
                self.by_class.setdefault(rule.target, []).append((regex, route_label(regex.pattern)))

    def label(self, handler: web.RequestHandler) -> str:
        """The label of the route ``handler`` serves."""
        kind = type(handler)
        if kind in self.special:
            return self.special[kind]
        choices = self.by_class.get(kind)
        if not choices:
            return OTHER
        if len(choices) == 1:
            return choices[0][1]
        path = handler.request.path
        return next((label for regex, label in choices if regex.match(path)), OTHER)


# --------------------------------------------------------------------------- the store, counted


class MeteredStore:
    """A session store whose failures are counted (``store_failed``) and whose answers are noted.

    Everything else is passed through to the store it wraps (``inner``).
    """

    def __init__(self, inner: Any, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics
        for name in STORE_OPERATIONS:
            setattr(self, name, self._metered(name, getattr(inner, name)))

    def _metered(self, name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        metrics = self.metrics

        async def call(*args: Any, **kwargs: Any) -> Any:
            try:
                result = await method(*args, **kwargs)
            except StoreUnavailable:
                metrics.store_failed(name)
                raise
            except Exception:
                metrics.store_answered()  # a refusal (NotFound, CodeTaken, ...) is an answer
                raise
            metrics.store_answered()
            return result

        call.__name__ = name
        return call

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __repr__(self) -> str:
        return f"MeteredStore({self.inner!r})"
