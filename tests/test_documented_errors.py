"""Every 4xx that the OpenAPI description documents, reached over real HTTP, with the body it documents.

One row per (operation, status): the settings the plugin runs with, the
request, and the status, ``error`` word and headers expected.  Each row starts
its own plugin on a fresh SQLite file, makes a live session where the request
needs one, sends the request, and checks the answer against the description's
schema for that status.  ``test_every_documented_client_error_has_a_row`` keeps
the table and the description in step.

Rows for statuses that other work adds are marked ``xfail(strict=True)``: they
fail today, and turn into failures (to remove the mark) once the feature lands.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012
from tornado.httputil import HTTPServerRequest

from connect_plugin.hookspecs import hookimpl
from connect_plugin.model import Agent
from tests.support import Api, Response, dtmf_of

LINK_TOKEN = "documented-errors-link-token"
CONTACT = "0c8e7f52-9d1a-4b3e-8f6a-5e2d1c0b9a87"
AGENT_HEADER = "X-Test-Agent"
OUTSIDER = "outsider"

#: Settings of the built-in sign-ins (issue 9); the provider's address answers nothing.
OIDC = {"agent_auth": "oidc", "oidc_issuer": "http://127.0.0.1:9/", "oidc_client_id": "connect-plugin",
        "oidc_client_secret": "client-secret-for-tests", "agent_cookie_secret": "cookie-secret-for-tests-0123456789",
        "oidc_allow_any_agent": True}
ALB = {"agent_auth": "alb", "oidc_allow_any_agent": True,
       "alb_signer_arn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/agents/0123456789abcdef"}
CORE_AUTH = {"core_auth_user": "core", "core_auth_password": "core-password-for-tests"}
METRICS_ON = {"metrics": True, "metrics_token": "metrics-token-for-tests-0123456789"}
WRONG_HOST = {"Host": "attacker.example"}

#: Documented statuses this table cannot reach, and where they are tested instead.
NOT_REACHED_HERE = {
    ("GET /agent/callback", 403): "needs a real OpenID provider's sign-in of an agent the rules refuse: "
                                  "issue 9's tests sign in through a real provider",
    ("POST /session_result/{resultcode}", 429): "needs 16 tokens held on the receipt threads: "
                                                "tests/test_decryptions.py holds them with a gate",
    ("POST /start_communication", 429): "the same receipt queue, for an inline auth_result: "
                                        "tests/test_decryptions.py",
}


# --------------------------------------------------------------------------- a stand-in agent sign-in


class HeaderSignIn:
    """An ``AgentAuth`` through the documented hook: the agent is whoever ``X-Test-Agent`` names.

    ``outsider`` is signed in but not allowed; with ``login_page`` a browser
    without a sign-in is sent to sign in (like oidc), else it gets 401 (like alb).
    """

    def __init__(self, login_page: bool) -> None:
        self.login_page = login_page

    async def start(self) -> None:
        """Nothing to prepare."""

    async def close(self) -> None:
        """Nothing to release."""

    def routes(self) -> Sequence[tuple[str, Any, dict[str, Any]]]:
        """No pages of its own."""
        return ()

    async def identify(self, request: HTTPServerRequest) -> Agent | None:
        """The agent named by the header, if any."""
        name = request.headers.get(AGENT_HEADER)
        return Agent(subject=name) if name else None

    async def may_view(self, agent: Agent, contact_id: str | None) -> bool:
        """Everyone but the outsider."""
        return agent.subject != OUTSIDER

    def login_url(self, request: HTTPServerRequest) -> str | None:
        """Where to sign in, for the mode that has a sign-in page."""
        return "/agent/login?next=/attribute-ui/" if self.login_page else None


class HeaderSignInPlugin:
    """Provides :class:`HeaderSignIn` for ``agent_auth = "test-login"`` or ``"test-header"``."""

    @hookimpl
    def connect_plugin_agent_auth(self, settings: Any) -> HeaderSignIn | None:
        if settings.agent_auth == "test-login":
            return HeaderSignIn(login_page=True)
        if settings.agent_auth == "test-header":
            return HeaderSignIn(login_page=False)
        return None


SIGN_IN = {"agent_auth": "test-login"}
SIGN_IN_NO_PAGE = {"agent_auth": "test-header"}


# --------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Row:
    """One documented error: the operation (as described), the status and word, and how to get it."""

    operation: str
    status: int
    word: str
    path: str = ""
    method: str = ""
    body: Any = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    before: Callable[[Api, dict[str, str]], Awaitable[None]] | None = None
    marks: tuple[Any, ...] = ()
    name: str = ""
    fields: tuple[str, ...] = ()

    def param(self) -> Any:
        label = self.name or f"{self.operation} {self.status}"
        return pytest.param(self, id=label, marks=self.marks)


def bearer(**extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {LINK_TOKEN}", **extra}


def agent(name: str) -> dict[str, str]:
    return {AGENT_HEADER: name}


async def spend_link_budget(api: Api, live: dict[str, str]) -> None:
    """Fail links until the plugin answers 429 (bounded)."""
    for attempt in range(300):
        response = await api.call("POST", "/link_phone", {"dtmf": f"9{attempt:09d}", "sessionid": f"guess-{attempt}"},
                                  headers=bearer())
        if response.status == 429:
            return


START = "POST /start_communication"
RESULT = "POST /session_result/{resultcode}"
LINK = "POST /link_phone"
END = "POST /end_call"
INFO = "GET /session_info/{contactid}"
EVENTS = "GET /session_events/{contactid}"
LINK_BODY = {"dtmf": "{dtmf}", "sessionid": CONTACT}
LARGE = "x" * 70_000

ROWS = [
    # POST /start_communication (the core)
    Row(START, 400, "BadRequest", body="{not json", content_type="application/json"),
    Row(START, 400, "BadRequest", body={"colour": "blue"}, name="start without purpose"),
    Row(START, 401, "Unauthorized", body={"purpose": "report_move"}, settings=CORE_AUTH),
    Row(START, 413, "PayloadTooLarge", body={"purpose": "report_move", "pad": LARGE}),
    Row(START, 413, "PayloadTooLarge", body={"purpose": "report_move", "pad": "x" * 300_000},
        name="start far over max_body_size"),
    Row(START, 415, "UnsupportedMediaType", body=json.dumps({"purpose": "report_move"}), content_type="text/plain"),
    Row(START, 421, "MisdirectedRequest", body={"purpose": "report_move"}, headers=WRONG_HOST),
    Row(START, 405, "MethodNotAllowed", method="GET"),
    # POST /session_result/{resultcode} (an authentication plugin)
    Row(RESULT, 400, "BadRequest", path="/session_result/{resultcode}", body="not-a-token",
        content_type="application/jwt"),
    Row(RESULT, 404, "NotFound", path="/session_result/NoSuchCode0000000000000000000000", body="{token}",
        content_type="application/jwt"),
    Row(RESULT, 404, "NotFound", path="/session_result/not%20a%20code", body="{token}",
        content_type="application/jwt", name="result for a path that names no code"),
    Row(RESULT, 413, "PayloadTooLarge", path="/session_result/{resultcode}", body=LARGE,
        content_type="application/jwt"),
    Row(RESULT, 415, "UnsupportedMediaType", path="/session_result/{resultcode}", body="{token}",
        content_type="application/x-www-form-urlencoded"),
    Row(RESULT, 421, "MisdirectedRequest", path="/session_result/{resultcode}", body="{token}",
        content_type="application/jwt", headers=WRONG_HOST),
    Row(RESULT, 405, "MethodNotAllowed", path="/session_result/{resultcode}", method="GET"),
    # POST /link_phone (the Lambda)
    Row(LINK, 400, "BadRequest", body={"dtmf": "{dtmf}"}, headers=bearer()),
    Row(LINK, 401, "Unauthorized", body=LINK_BODY),
    Row(LINK, 401, "Unauthorized", body=LINK_BODY, headers={"Authorization": "Bearer a-wrong-token-of-some-length"},
        name="link with a wrong bearer token"),
    Row(LINK, 404, "NotFound", body={"dtmf": "0000000000", "sessionid": CONTACT}, headers=bearer()),
    Row(LINK, 413, "PayloadTooLarge", body={**LINK_BODY, "pad": LARGE}, headers=bearer()),
    Row(LINK, 415, "UnsupportedMediaType", body=json.dumps(LINK_BODY), content_type="text/plain", headers=bearer()),
    Row(LINK, 421, "MisdirectedRequest", body=LINK_BODY, headers=bearer(**WRONG_HOST)),
    Row(LINK, 429, "TooManyRequests", body=LINK_BODY, headers=bearer(), before=spend_link_budget),
    Row(LINK, 405, "MethodNotAllowed", method="GET", headers=bearer()),
    # POST /end_call (the Lambda)
    Row(END, 400, "BadRequest", body={"session": CONTACT}, headers=bearer()),
    Row(END, 401, "Unauthorized", body={"sessionid": CONTACT}),
    Row(END, 404, "NotFound", body={"sessionid": "no-such-call"}, headers=bearer()),
    Row(END, 413, "PayloadTooLarge", body={"sessionid": CONTACT, "pad": LARGE}, headers=bearer()),
    Row(END, 415, "UnsupportedMediaType", body=json.dumps({"sessionid": CONTACT}), content_type="text/plain",
        headers=bearer()),
    Row(END, 421, "MisdirectedRequest", body={"sessionid": CONTACT}, headers=bearer(**WRONG_HOST)),
    Row(END, 405, "MethodNotAllowed", method="GET", headers=bearer()),
    # GET /session_info/{contactid} (the display)
    Row(INFO, 401, "Unauthorized", path=f"/session_info/{CONTACT}", settings=SIGN_IN, fields=("login_url",)),
    Row(INFO, 401, "Unauthorized", path=f"/session_info/{CONTACT}", settings=OIDC,
        fields=("login_url",), name="session_info without an oidc sign-in"),
    Row(INFO, 401, "Unauthorized", path=f"/session_info/{CONTACT}", settings=ALB,
        name="session_info without the load balancer's header"),
    Row(INFO, 403, "Forbidden", path=f"/session_info/{CONTACT}", settings=SIGN_IN, headers=agent(OUTSIDER)),
    Row(INFO, 404, "NotFound", path="/session_info/no-such-call"),
    Row(INFO, 404, "NotFound", path="/session_info/not%20a%20contact", name="session_info for a path that names none"),
    Row(INFO, 421, "MisdirectedRequest", path=f"/session_info/{CONTACT}", headers=WRONG_HOST),
    Row(INFO, 405, "MethodNotAllowed", path=f"/session_info/{CONTACT}", method="POST", body={}),
    # GET /session_events/{contactid} (the display, live)
    Row(EVENTS, 401, "Unauthorized", path=f"/session_events/{CONTACT}", settings=SIGN_IN),
    Row(EVENTS, 401, "Unauthorized", path=f"/session_events/{CONTACT}", settings=ALB,
        name="session_events without the load balancer's header"),
    Row(EVENTS, 403, "Forbidden", path=f"/session_events/{CONTACT}", settings=SIGN_IN, headers=agent(OUTSIDER)),
    Row(EVENTS, 404, "NotFound", path="/session_events/not%20a%20contact"),
    Row(EVENTS, 421, "MisdirectedRequest", path=f"/session_events/{CONTACT}", headers=WRONG_HOST),
    Row(EVENTS, 405, "MethodNotAllowed", path=f"/session_events/{CONTACT}", method="POST", body={}),
    # GET /display_labels (the display's words)
    Row("GET /display_labels", 401, "Unauthorized", settings=SIGN_IN, fields=("login_url",)),
    Row("GET /display_labels", 403, "Forbidden", settings=SIGN_IN, headers=agent(OUTSIDER)),
    Row("GET /display_labels", 421, "MisdirectedRequest", headers=WRONG_HOST),
    Row("GET /display_labels", 405, "MethodNotAllowed", method="POST", body={}),
    # operations
    Row("GET /clean_db", 401, "Unauthorized", settings=CORE_AUTH),
    Row("GET /clean_db", 421, "MisdirectedRequest", headers=WRONG_HOST),
    Row("GET /clean_db", 405, "MethodNotAllowed", method="POST", body={}),
    Row("GET /health", 405, "MethodNotAllowed", method="POST", body={}),
    Row("GET /openapi.json", 421, "MisdirectedRequest", headers=WRONG_HOST),
    Row("GET /openapi.json", 405, "MethodNotAllowed", method="POST", body={}),
    Row("GET /metrics", 401, "Unauthorized", settings=METRICS_ON),
    Row("GET /metrics", 421, "MisdirectedRequest", settings=METRICS_ON, headers=WRONG_HOST),
    Row("GET /metrics", 405, "MethodNotAllowed", settings=METRICS_ON, method="POST", body={}),
    # the pages
    Row("GET /attribute-ui/", 401, "Unauthorized", settings=SIGN_IN_NO_PAGE),
    Row("GET /attribute-ui/", 403, "Forbidden", settings=SIGN_IN, headers=agent(OUTSIDER)),
    Row("GET /attribute-ui/", 421, "MisdirectedRequest", headers=WRONG_HOST),
    Row("GET /attribute-ui/", 405, "MethodNotAllowed", method="POST", body={}),
    Row("GET /attribute-ui/{asset}", 401, "Unauthorized", path="/attribute-ui/display.js", settings=SIGN_IN_NO_PAGE),
    Row("GET /attribute-ui/{asset}", 403, "Forbidden", path="/attribute-ui/display.js", settings=SIGN_IN,
        headers=agent(OUTSIDER)),
    Row("GET /attribute-ui/{asset}", 403, "Forbidden", path="/attribute-ui/%2e%2e/__init__.py",
        name="a display file outside its folder"),
    Row("GET /attribute-ui/{asset}", 404, "NotFound", path="/attribute-ui/no-such-file.js"),
    Row("GET /attribute-ui/{asset}", 421, "MisdirectedRequest", path="/attribute-ui/display.js", headers=WRONG_HOST),
    Row("GET /attribute-ui/{asset}", 405, "MethodNotAllowed", path="/attribute-ui/display.js", method="POST",
        body={}),
    Row("GET /amazon-connect-ui/", 401, "Unauthorized", settings=SIGN_IN_NO_PAGE),
    Row("GET /amazon-connect-ui/", 403, "Forbidden", settings=SIGN_IN, headers=agent(OUTSIDER)),
    Row("GET /amazon-connect-ui/", 421, "MisdirectedRequest", headers=WRONG_HOST),
    Row("GET /amazon-connect-ui/", 405, "MethodNotAllowed", method="POST", body={}),
    Row("GET /amazon-connect-ui/{asset}", 401, "Unauthorized", path="/amazon-connect-ui/agent.js",
        settings=SIGN_IN_NO_PAGE),
    Row("GET /amazon-connect-ui/{asset}", 403, "Forbidden", path="/amazon-connect-ui/agent.js", settings=SIGN_IN,
        headers=agent(OUTSIDER)),
    Row("GET /amazon-connect-ui/{asset}", 404, "NotFound", path="/amazon-connect-ui/no-such-file.js"),
    Row("GET /amazon-connect-ui/{asset}", 421, "MisdirectedRequest", path="/amazon-connect-ui/agent.js",
        headers=WRONG_HOST),
    Row("GET /amazon-connect-ui/{asset}", 405, "MethodNotAllowed", path="/amazon-connect-ui/agent.js", method="POST",
        body={}),
    Row("GET /amazon-connect-ui/config.js", 421, "MisdirectedRequest", headers=WRONG_HOST),
    Row("GET /amazon-connect-ui/config.js", 405, "MethodNotAllowed", method="POST", body={}),
    # agent sign-in (agent_auth = "oidc")
    Row("GET /agent/login", 421, "MisdirectedRequest", settings=OIDC, headers=WRONG_HOST),
    Row("GET /agent/login", 405, "MethodNotAllowed", settings=OIDC, method="DELETE"),
    Row("GET /agent/callback", 400, "BadRequest", settings=OIDC),
    Row("GET /agent/callback", 421, "MisdirectedRequest", settings=OIDC, headers=WRONG_HOST),
    Row("GET /agent/callback", 405, "MethodNotAllowed", settings=OIDC, method="DELETE"),
    Row("GET /agent/logout", 421, "MisdirectedRequest", settings=OIDC, headers=WRONG_HOST),
    Row("GET /agent/logout", 405, "MethodNotAllowed", settings=OIDC, method="DELETE"),
]


# --------------------------------------------------------------------------- the description's side


def described() -> dict[str, Any]:
    """The description as installed with the package."""
    return json.loads(files("connect_plugin").joinpath("openapi.json").read_text(encoding="utf-8"))


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def documented_response(description: dict[str, Any], operation: str, status: int) -> tuple[str, dict[str, Any]]:
    """The JSON pointer and object of the response the description gives ``operation`` for ``status``."""
    if status == 405:
        pointer = "#/components/responses/MethodNotAllowed"
    else:
        method, path = operation.split(" ", 1)
        item_pointer = f"#/paths/{escape(path)}"
        item = description["paths"][path]
        if "$ref" in item:
            item_pointer = item["$ref"]
        pointer = f"{item_pointer}/{method.lower()}/responses/{status}"
        response = resolve(description, pointer)
        if "$ref" in response:
            pointer = response["$ref"]
    return pointer, resolve(description, pointer)


def resolve(description: dict[str, Any], pointer: str) -> Any:
    node: Any = description
    for token in pointer.removeprefix("#/").split("/"):
        node = node[token.replace("~1", "/").replace("~0", "~")]
    return node


def check_against_description(row: Row, response: Response) -> None:
    """The status's documented body schema and required headers hold for ``response``."""
    description = described()
    pointer, documented = documented_response(description, row.operation, row.status)
    registry = Registry().with_resource("urn:connect-plugin:openapi", DRAFT202012.create_resource(description))
    schema_ref = f"urn:connect-plugin:openapi{pointer}/content/{escape('application/json')}/schema"
    Draft202012Validator({"$ref": schema_ref}, registry=registry).validate(response.json)
    for name, header in documented.get("headers", {}).items():
        if resolve(description, header["$ref"]).get("required") if "$ref" in header else header.get("required"):
            assert name in response.headers, f"documented header {name} missing"


def documented_client_errors() -> set[tuple[str, int]]:
    """Every (operation, 4xx status) the description documents, and 405 for every path."""
    description = described()
    out = set()
    for path, item in description["paths"].items():
        if "$ref" in item:
            item = resolve(description, item["$ref"])
        for method in ("get", "post"):
            if method in item:
                operation = f"{method.upper()} {path}"
                out.add((operation, 405))
                out.update((operation, int(s)) for s in item[method]["responses"] if s.startswith("4"))
    return out


# --------------------------------------------------------------------------- the tests


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Errors do not depend on the store: SQLite only."""
    return sqlite_url


def test_every_documented_client_error_has_a_row():
    rows = {(row.operation, row.status) for row in ROWS}
    missing = documented_client_errors() - rows - set(NOT_REACHED_HERE)
    assert sorted(missing) == []
    assert sorted(rows - documented_client_errors()) == []


def fill(value: Any, live: dict[str, str]) -> Any:
    """``{resultcode}``, ``{dtmf}`` and ``{token}`` in a row's path or body, from a live session."""
    if isinstance(value, str):
        for key, replacement in live.items():
            value = value.replace("{" + key + "}", replacement)
        return value
    if isinstance(value, dict):
        return {key: fill(item, live) for key, item in value.items()}
    return value


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("row", [row.param() for row in ROWS])
async def test_documented_client_error(row: Row, plugin_factory, mint):
    plugin = await plugin_factory(link_phone_token=LINK_TOKEN, hook_plugins=[HeaderSignInPlugin()], **row.settings)
    api = plugin.api
    core = row.settings.get("core_auth_user"), row.settings.get("core_auth_password")
    # The live session is made by the core, with its credentials when the row sets them.
    core_headers = {"Authorization": "Basic " + base64.b64encode(":".join(core).encode()).decode()} if all(core) else {}
    started = await api.call("POST", "/start_communication", {"purpose": "report_move"}, headers=core_headers)
    live = {"dtmf": dtmf_of(started), "resultcode": started.json["attr_url"].rsplit("/", 1)[1], "token": mint()}
    if row.before is not None:
        await row.before(api, live)
    method, described_path = (row.method or row.operation.split(" ", 1)[0]), row.operation.split(" ", 1)[1]
    path = fill(row.path or described_path, live)
    body = fill(row.body, live)
    headers = dict(row.headers)
    raw: str | None = None
    if isinstance(body, str):
        raw = body
        headers.setdefault("Content-Type", row.content_type or "application/json")
    elif body is not None:
        raw = json.dumps(body)
        headers.setdefault("Content-Type", row.content_type or "application/json")
    if raw is None and method in ("POST", "PUT"):
        raw = ""
    response = await api.call(method, path, raw=raw, headers=headers)
    assert response.status == row.status, response.body[:300]
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json["error"] == row.word
    assert set(row.fields) <= set(response.json)
    check_against_description(row, response)
    for secret in (live["dtmf"], live["resultcode"], live["token"], LINK_TOKEN):
        assert secret not in response.body.decode("utf-8", "replace")
