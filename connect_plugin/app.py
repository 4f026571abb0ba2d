"""Wiring: the Tornado application, and the running plugin around it.

``PluginApplication`` maps routes to handlers and holds, as typed attributes,
what every handler shares.  ``Runtime`` owns everything with a life cycle: the
parts from the plugins, the HTTP server (and the metrics' own, with
``metrics_port``), the periodic cleanup on the event loop, and a graceful stop
(in-flight requests finish, then the store closes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any

import pluggy
from tornado.httputil import HTTPServerRequest
from tornado.netutil import bind_sockets
from tornado.web import Application, _HandlerDelegate

from . import handlers as h
from . import logs, metrics_http, openapi, web
from .codes import code_secret_for
from .config import Settings
from .crypto_pool import CryptoPool
from .errors import ConfigError, PayloadTooLarge, PluginError
from .feedback import SessionFeedback
from .hookspecs import AgentAuth
from .http_guard import ProxyAwareHTTPServer, RequestGuard
from .metrics import MeteredStore, Metrics, PrometheusMetrics, RouteLabels
from .plugins import Parts, build_parts, make_manager
from .service import FlowService, token_policy

log = logging.getLogger(__name__)

SHUTDOWN_GRACE = 10.0  # seconds in-flight requests get to finish on SIGTERM


class PluginApplication(Application):
    """The plugin's Tornado application: its routes, and what its handlers share.

    Handlers reach these through ``BaseHandler.app``: the flow service, the
    plugin's settings (``config``; Tornado's own are ``settings``), the agent
    sign-in and the count of requests in flight.  Every request gets an id
    (``logs.begin_request``, ``X-Request-Id``) and passes
    ``http_guard.RequestGuard`` before routing; every answered request is
    logged and measured (``log_request``).
    """

    def __init__(self, service: FlowService, agent_auth: AgentAuth, **tornado_settings: Any) -> None:
        self.service = service
        self.config: Settings = service.settings
        self.agent_auth = agent_auth
        self.metrics: Metrics = service.metrics
        self.in_flight = h.InFlight()
        self.guard = RequestGuard(self.config)
        routes = [
            (r"/start_communication", h.StartHandler),
            (rf"/session_result/{h.PATH_ID}", h.ResultHandler),
            (r"/link_phone", h.LinkHandler),
            (r"/end_call", h.EndCallHandler),
            (rf"/session_info/{h.PATH_ID}", h.InfoHandler),
            (r"/clean_db", h.CleanHandler),
            (r"/health", h.HealthHandler),
            (r"/openapi\.json", openapi.OpenApiHandler),
            *web.routes(),
            *agent_auth.routes(),
            *([metrics_http.route(self.config, self.metrics)]
              if isinstance(self.metrics, PrometheusMetrics) and self.config.metrics_port is None else []),
        ]
        super().__init__(routes, default_handler_class=h.FallbackHandler, log_function=logs.log_request,
                         transforms=[logs.RequestIdHeader], **tornado_settings)
        self.route_labels = RouteLabels(self.wildcard_router.rules,
                                        {h.FallbackHandler: "<unmatched>", h.RefusalHandler: "<refused>"})

    def log_request(self, handler: Any) -> None:
        """The access log line, and the request's route, status and time in the metrics."""
        super().log_request(handler)
        if self.metrics.enabled:
            self.metrics.request(self.route_labels.label(handler), handler.get_status(),
                                 handler.request.request_time())

    def find_handler(self, request: HTTPServerRequest, **kwargs: Any) -> _HandlerDelegate:
        """The route's handler; ``RefusalHandler`` for a request refused from its head alone.

        Refused: what ``RequestGuard`` refuses (bad target, wrong ``Host``), and
        a POST whose ``Content-Type`` its handler does not read (``415``).
        """
        logs.begin_request(request, self.config.trusted_proxies)
        refusal = self.guard.refusal(request) or self._too_large(request)
        if refusal is not None:
            return self._refuse(request, refusal)
        delegate = super().find_handler(request, **kwargs)
        check = getattr(getattr(delegate, "handler_class", None), "body_type_check", None)
        if check is not None and request.method == "POST":
            try:
                check(request.headers.get("Content-Type"))
            except PluginError as error:
                return self._refuse(request, error)
        return delegate

    def _too_large(self, request: HTTPServerRequest) -> PluginError | None:
        """``413`` for a body its ``Content-Length`` says is over ``max_body_size``, before reading any of it."""
        length = request.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.config.max_body_size:
            return PayloadTooLarge(f"request body over {self.config.max_body_size} bytes")
        return None

    def _refuse(self, request: HTTPServerRequest, error: PluginError) -> _HandlerDelegate:
        return self.get_handler_delegate(request, h.RefusalHandler, {"error": error})


class Runtime:
    """One running plugin: parts, HTTP server and housekeeping, started and stopped together."""

    def __init__(self, settings: Settings, pm: pluggy.PluginManager | None = None) -> None:
        self.settings = settings
        self.pm = pm or make_manager()
        self.parts: Parts = build_parts(settings, self.pm)
        logs.install()
        self.metrics = PrometheusMetrics(settings.link_failure_budget, _version()) if settings.metrics else Metrics()
        store = MeteredStore(self.parts.store, self.metrics) if self.metrics.enabled else self.parts.store
        self.feedback = SessionFeedback(hosts=settings.feedback_hosts, metrics=self.metrics)
        workers = settings.crypto_worker_count
        self.crypto = CryptoPool(workers, settings.decryption_key, settings.signature_key,
                                 token_policy(settings)) if workers else None
        self.service = FlowService(
            settings, store, self.parts.code_generator, self.parts.translator, self.parts.notifier,
            code_secret=code_secret_for(settings), feedback=self.feedback, metrics=self.metrics, crypto=self.crypto,
        )
        self.app = PluginApplication(self.service, self.parts.agent_auth)
        self.server: ProxyAwareHTTPServer | None = None
        self.port: int | None = None
        self.metrics_server: ProxyAwareHTTPServer | None = None
        self.metrics_port: int | None = None
        self._cleanup_task: asyncio.Task[None] | None = None

    async def start(self, sockets: list[socket.socket] | None = None) -> None:
        """Open the store and notifier, listen, and schedule cleanup."""
        await self.parts.store.open()
        await self.parts.notifier.start()
        await self.parts.agent_auth.start()
        if isinstance(self.metrics, PrometheusMetrics) and self.settings.metrics_port is not None:
            self._start_metrics_server(self.metrics)
        self.server = ProxyAwareHTTPServer(
            self.app,
            max_body_size=4 * self.settings.max_body_size,
            idle_connection_timeout=self.settings.keep_alive or None,
            xheaders=False,  # forwarded headers count only from trusted_proxies: see http_guard
        )
        self.server.trusted_proxies = self.settings.trusted_proxies
        if sockets is None:
            sockets = bind_sockets(self.settings.port, self.settings.address)
        self.server.add_sockets(sockets)
        self.port = sockets[0].getsockname()[1]
        self._cleanup_task = asyncio.create_task(self._cleanup_loop())
        if self.crypto is not None:  # after listening: the workers get ready while the plugin already answers
            await self.crypto.start()
        log.info("listening on http://%s:%d", self.settings.address, self.port)

    def _start_metrics_server(self, metrics: PrometheusMetrics) -> None:
        """The metrics' own server on ``metrics_address:metrics_port`` (``metrics_http.MetricsApplication``)."""
        address = self.settings.metrics_address or "127.0.0.1"
        server = ProxyAwareHTTPServer(metrics_http.MetricsApplication(self.settings, metrics), xheaders=False,
                                      idle_connection_timeout=self.settings.keep_alive or None)
        server.trusted_proxies = self.settings.trusted_proxies
        try:
            sockets = bind_sockets(self.settings.metrics_port or 0, address)
        except OSError as error:
            raise ConfigError("metrics_port", f"cannot listen on {address}:{self.settings.metrics_port}: "
                                              f"{error.strerror}") from None
        server.add_sockets(sockets)
        self.metrics_server = server
        self.metrics_port = sockets[0].getsockname()[1]
        log.info("metrics at http://%s:%d/metrics", address, self.metrics_port)

    async def _cleanup_loop(self) -> None:
        """Delete idle sessions every ``cleanup_interval`` seconds, on this event loop."""
        while True:
            try:
                await self.service.cleanup()
            except Exception as error:  # keep the loop alive through store outages
                log.warning("periodic cleanup failed: %s", type(error).__name__)
            await asyncio.sleep(self.settings.cleanup_interval)

    async def stop(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Stop accepting, let in-flight requests finish (up to ``grace`` s), close the parts."""
        if self._cleanup_task is not None:
            self._cleanup_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._cleanup_task
        if self.metrics_server is not None:
            self.metrics_server.stop()
            await self.metrics_server.close_all_connections()
        if self.server is not None:
            self.server.stop()
            self.service.end_watches()  # live displays let go at their next wake,
            await self.parts.notifier.close()  # which is now: long-lived requests end
            try:
                await asyncio.wait_for(self._drain(), grace)
            except TimeoutError:
                log.warning("requests still running after %.0fs; closing them", grace)
            await self.server.close_all_connections()
        await self.service.close()
        if self.crypto is not None:
            await self.crypto.close()
        await self.feedback.close()
        await self.parts.agent_auth.close()
        await self.parts.store.close()

    async def _drain(self) -> None:
        await self.app.in_flight.idle()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("connect-plugin")
    except PackageNotFoundError:
        return "unknown"
