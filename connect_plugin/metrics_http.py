"""``GET /metrics``: the Prometheus metrics of this instance, on the main server or on a port of their own.

With ``metrics = true`` the main application serves :class:`MetricsHandler`
at ``/metrics``; with ``metrics_port`` as well, :class:`MetricsApplication`
serves it alone on ``metrics_address:metrics_port`` (a second small HTTP
server in the same process) and the main server does not.  With
``metrics_token`` a scrape needs ``Authorization: Bearer <token>``
(compared in constant time).  The ``Host`` rule of ``http_guard`` holds on
both servers; ``/metrics`` also answers a ``Host`` that is an IP address,
as a scraper that knows its targets by address sends.
"""

from __future__ import annotations

import hmac
from typing import Any

from tornado.httputil import HTTPServerRequest
from tornado.web import Application, _HandlerDelegate

from . import handlers as h
from . import logs
from .config import Secret, Settings
from .errors import Unauthorized
from .http_guard import RequestGuard
from .metrics import PrometheusMetrics

PATH = "/metrics"


class MetricsHandler(h.BaseHandler):
    """``GET /metrics``: the registry in Prometheus' text format (or OpenMetrics, when the scraper asks)."""

    def initialize(self, metrics: PrometheusMetrics, token: Secret | None) -> None:
        """The metrics to render, and the bearer token a scrape must carry (``None``: none)."""
        self.metrics = metrics
        self.token = token

    def get(self) -> None:
        if self.token is not None:
            scheme, _, given = self.request.headers.get("Authorization", "").partition(" ")
            right = hmac.compare_digest(given.strip().encode(), self.token.reveal().encode())
            if scheme.lower() != "bearer" or not right:
                raise Unauthorized("missing or wrong bearer token")
        body, content_type = self.metrics.render(self.request.headers.get("Accept"))
        self.set_header("Content-Type", content_type)
        self.finish(body)


def route(settings: Settings, metrics: PrometheusMetrics) -> tuple[str, Any, dict[str, Any]]:
    """The ``/metrics`` route, for whichever application serves it."""
    return PATH, MetricsHandler, {"metrics": metrics, "token": settings.metrics_token}


class MetricsApplication(Application):
    """The metrics' own server (``metrics_port``): ``/metrics``, and ``404`` for everything else.

    Shares with the main application what ``handlers.BaseHandler`` needs (the
    settings, a count of requests in flight) and the request guard, the
    request ids and the access log.
    """

    def __init__(self, settings: Settings, metrics: PrometheusMetrics) -> None:
        self.config = settings
        self.metrics = metrics
        self.in_flight = h.InFlight()
        self.closing = False
        self.guard = RequestGuard(settings)
        super().__init__([route(settings, metrics)], default_handler_class=h.FallbackHandler,
                         log_function=logs.log_request, transforms=[logs.RequestIdHeader])

    def find_handler(self, request: HTTPServerRequest, **kwargs: Any) -> _HandlerDelegate:
        logs.begin_request(request, self.config.trusted_proxies)
        refusal = self.guard.refusal(request)
        if refusal is not None:
            return self.get_handler_delegate(request, h.RefusalHandler, {"error": refusal})
        return super().find_handler(request, **kwargs)
