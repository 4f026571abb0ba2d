"""One RequestHandler per endpoint: JSON in, one service call, JSON out.

Handlers validate the shape of a request (``BadRequest`` names the field) and
leave every decision to ``service.FlowService``.  Errors render once, in
``BaseHandler.write_error``, as the protocol's JSON error bodies.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import re
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, cast

from tornado import web

from . import bodies
from .config import Secret
from .errors import (
    BadRequest,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    PluginError,
    Unauthorized,
    error_word,
)
from .logs import log_handler_exception
from .model import Agent
from .service import FlowService

if TYPE_CHECKING:
    from .app import PluginApplication

#: Contact ids (Amazon Connect ContactIds are UUIDs) and result codes as they
#: may appear in a URL path; anything else cannot name a session.
PATH_ID = r"([A-Za-z0-9_.\-]{1,256})"
_CONTACT_ID = re.compile(r"^[A-Za-z0-9_.\-]{1,256}$")
MAX_PURPOSE = 256


class InFlight:
    """Counts requests being handled, so a graceful stop can wait for them."""

    def __init__(self) -> None:
        self.count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        """A request started."""
        self.count += 1
        self._idle.clear()

    def leave(self) -> None:
        """A request ended."""
        self.count -= 1
        if self.count == 0:
            self._idle.set()

    async def idle(self) -> None:
        """Return once no request is being handled."""
        await self._idle.wait()


class BodyTypeCheck(Protocol):
    """Refuses (``UnsupportedMediaType``) a ``Content-Type`` a handler does not read."""

    def __call__(self, header: str | None) -> None: ...


class BaseHandler(web.RequestHandler):
    """What every endpoint shares: the service, body limits, JSON errors, no caching."""

    _counted = False
    #: Whether pages on ``settings.allowed_origins`` may read this endpoint's answers (CORS).
    cors = False
    #: The check of a POST's ``Content-Type`` (raises ``UnsupportedMediaType``), made by the
    #: application before the body is read; ``None``: any type.
    body_type_check: ClassVar[BodyTypeCheck | None] = None

    @property
    def app(self) -> PluginApplication:
        """This plugin's application: the service, the settings, the agent sign-in."""
        return cast("PluginApplication", self.application)

    @property
    def service(self) -> FlowService:
        """The flow service of this application."""
        return self.app.service

    def set_default_headers(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Content-Type-Options", "nosniff")
        if self.cors:
            self.set_header("Vary", "Origin")
            origin = self.request.headers.get("Origin", "")
            if origin.lower() in {o.lower() for o in self.app.config.allowed_origins}:
                self.set_header("Access-Control-Allow-Origin", origin)
                # A listed origin's display may send the agent's sign-in cookie (never "*" with this).
                self.set_header("Access-Control-Allow-Credentials", "true")

    def options(self, *args: str) -> None:
        """CORS preflight: ``GET`` only, for the origins ``set_default_headers`` allows."""
        if not self.cors:
            raise web.HTTPError(405)
        self.set_header("Access-Control-Allow-Methods", "GET")
        self.set_header("Access-Control-Allow-Headers", "Last-Event-ID")
        self.set_header("Access-Control-Max-Age", "600")
        self.set_status(204)
        self.finish()

    def prepare(self) -> None:
        self.app.in_flight.enter()
        self._counted = True
        if len(self.request.body) > self.app.config.max_body_size:
            raise PayloadTooLarge(f"request body over {self.app.config.max_body_size} bytes")

    def on_finish(self) -> None:
        self._leave()

    def on_connection_close(self) -> None:
        self._leave()

    def _leave(self) -> None:
        if self._counted:
            self._counted = False
            self.app.in_flight.leave()

    def send_json(self, payload: Any, status: int = 200) -> None:
        """Finish with a JSON body."""
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(payload))

    def json_object(self) -> dict[str, Any]:
        """The request body as a JSON object: ``415`` unless it is ``application/json``, else ``BadRequest``."""
        return bodies.json_object(self.request.headers.get("Content-Type"), self.request.body)

    @staticmethod
    def field(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
        """A string field of a JSON body; ``BadRequest`` naming it when missing or not a string."""
        value = body.get(name)
        if value is None:
            if required:
                raise BadRequest(f"missing field: {name}")
            return None
        if not isinstance(value, str):
            raise BadRequest(f"field {name} must be a string")
        return value

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(error, PluginError):
            self.set_status(error.status)
            for name, value in error.headers().items():
                self.set_header(name, value)
            body = error.body()
        else:
            body = {"error": error_word(status_code)}
        if self.get_status() == 405:
            self.set_header("Allow", allowed_methods(self))
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(body))

    def log_exception(self, typ: type[BaseException] | None, value: BaseException | None,
                      tb: TracebackType | None) -> None:
        log_handler_exception(self, typ, value, tb)


def allowed_methods(handler: web.RequestHandler) -> str:
    """The ``Allow`` header of a 405: the methods ``handler`` implements (RFC 9110, 15.5.6)."""
    names = [method for method in handler.SUPPORTED_METHODS
             if getattr(type(handler), method.lower(), None) is not getattr(web.RequestHandler, method.lower(), None)]
    if not getattr(handler, "cors", False):
        names = [method for method in names if method != "OPTIONS"]
    return ", ".join(names)


class CoreHandler(BaseHandler):
    """What the core calls: HTTP Basic with ``core_auth_user``/``core_auth_password`` when they are set."""

    def prepare(self) -> None:
        super().prepare()
        config = self.app.config
        if config.core_auth_user is None or config.core_auth_password is None:
            return
        scheme, _, encoded = self.request.headers.get("Authorization", "").partition(" ")
        try:
            user, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            user = password = ""
        # Both compared, always: the time taken says nothing about which one was wrong.
        right_user = hmac.compare_digest(user.encode(), config.core_auth_user.encode())
        right_password = hmac.compare_digest(password.encode(), config.core_auth_password.reveal().encode())
        if scheme.lower() != "basic" or not (right_user & right_password):
            raise Unauthorized("missing or wrong credentials", challenge='Basic realm="connect-plugin"')


class StartHandler(CoreHandler):
    """``POST /start_communication`` (from the core)."""

    body_type_check = staticmethod(bodies.require_json_type)

    async def post(self) -> None:
        body = self.json_object()
        purpose = self.field(body, "purpose")
        if not purpose or len(purpose) > MAX_PURPOSE or not purpose.isprintable():
            raise BadRequest(f"field purpose must be 1 to {MAX_PURPOSE} printable characters")
        auth_result = self.field(body, "auth_result", required=False)
        started = await self.service.start(purpose, auth_result.strip() if auth_result is not None else None)
        self.send_json(started.to_json())


class ResultHandler(BaseHandler):
    """``POST /session_result/<resultcode>`` (from an authentication plugin)."""

    body_type_check = staticmethod(bodies.require_token_type)

    async def post(self, result_code: str) -> None:
        try:
            token = self.request.body.decode("ascii").strip()
        except UnicodeDecodeError:
            raise BadRequest("body must be a compact JWE") from None
        if not token:
            raise BadRequest("body must be a compact JWE")
        await self.service.report_result(result_code, token)
        self.finish()


class AgentHandler(BaseHandler):
    """An endpoint that shows a citizen's data: only to a signed-in agent whom the rules allow."""

    async def require_agent(self, contact_id: str | None) -> Agent:
        """The agent behind this request, allowed to see ``contact_id``; else ``Unauthorized``/``Forbidden``."""
        auth = self.app.agent_auth
        agent = await auth.identify(self.request)
        if agent is None:
            raise Unauthorized("sign in as an agent first", challenge='Cookie realm="connect-plugin agents"',
                               login_url=auth.login_url(self.request))
        if not await auth.may_view(agent, contact_id):
            raise Forbidden("this agent may not see this data")
        return agent


class LambdaHandler(BaseHandler):
    """What the Amazon Connect Lambda calls: the bearer token when one is configured, a contact id."""

    body_type_check = staticmethod(bodies.require_json_type)

    def prepare(self) -> None:
        super().prepare()
        expected = self.app.config.link_phone_token
        if not isinstance(expected, Secret):  # unset on loopback, or "none" on purpose
            return
        given = self.request.headers.get("Authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.reveal().encode()):
            raise Unauthorized("missing or wrong bearer token")

    def contact_id(self, body: dict[str, Any]) -> str:
        """The ``sessionid`` field: an Amazon Connect ContactId."""
        contact_id = self.field(body, "sessionid")
        if not contact_id or not _CONTACT_ID.match(contact_id):
            raise BadRequest("field sessionid must be a contact id (letters, digits, - _ .; at most 256)")
        return contact_id


class LinkHandler(LambdaHandler):
    """``POST /link_phone`` (from the Lambda, while the caller is in the contact flow)."""

    async def post(self) -> None:
        body = self.json_object()
        dtmf = self.field(body, "dtmf")
        await self.service.link_phone(dtmf or "", self.contact_id(body))
        self.finish()


class EndCallHandler(LambdaHandler):
    """``POST /end_call`` (from the Lambda in the disconnect flow): the call is over."""

    async def post(self) -> None:
        await self.service.end_call(self.contact_id(self.json_object()))
        self.finish()


class InfoHandler(AgentHandler):
    """``GET /session_info/<contact id>`` (from the attribute display, for a signed-in agent)."""

    cors = True

    async def get(self, contact_id: str) -> None:
        agent = await self.require_agent(contact_id)
        info = await self.service.session_info(contact_id, viewer=agent)
        self.send_json(info.to_json())


class CleanHandler(CoreHandler):
    """``GET /clean_db``: delete idle sessions now."""

    async def get(self) -> None:
        await self.service.cleanup()
        self.finish()


class HealthHandler(BaseHandler):
    """``GET /health``: 200 when the store answers, 503 when it does not."""

    async def get(self) -> None:
        if await self.service.healthy():
            self.send_json({"status": "ok", "store": "up"})
        else:
            self.send_json({"error": "StoreUnavailable", "status": "unavailable", "store": "down"}, status=503)


class FallbackHandler(BaseHandler):
    """Every path no route matches: ``404 {"error": "NotFound"}``."""

    def prepare(self) -> None:
        raise NotFound()


@web.stream_request_body
class RefusalHandler(BaseHandler):
    """A request the application refused from its head alone (``PluginApplication.find_handler``).

    The refusal is answered as soon as the head has arrived; the body is
    neither waited for nor parsed (so a form body that Tornado would choke on
    never gets that far).
    """

    def initialize(self, error: PluginError) -> None:
        """The refusal to answer with."""
        self.error = error

    def prepare(self) -> None:
        raise self.error

    def data_received(self, chunk: bytes) -> None:
        """A refused request's body is dropped unread."""
