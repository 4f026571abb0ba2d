"""Schemathesis hooks for ``tox -e api``: real codes and tokens, so that fuzzing reaches the whole flow.

Loaded by Schemathesis itself (``SCHEMATHESIS_HOOKS``, set by ``run.py``), in
its own process.  Generated data alone rarely gets past ``404``: a random result
code or DTMF code names no session, a random contact id no call.  So, for a
share of the *schema-valid* cases of these operations (every second one,
counted per operation), a live value replaces the generated one:

* ``POST /start_communication``: a valid inline ``auth_result`` (every third case
  that carries one), and a ``purpose`` made printable where the generator drew
  characters that ``str.isprintable`` refuses (the schema's pattern cannot say
  "printable" in a JSON Schema regex; it names the control characters only);
* ``POST /session_result/{resultcode}``: a fresh session's result code, and a
  valid token for it (``200``), or the generated token (``400``);
* ``POST /link_phone``: a fresh session's DTMF code (``200``); the contact ids
  linked this way are kept for the following;
* ``POST /end_call``, ``GET /session_info/{contactid}``, ``GET
  /session_events/{contactid}``: a linked contact id (sessions waiting, verified
  and failed are made at start);
* ``GET /attribute-ui/{asset}``, ``GET /amazon-connect-ui/{asset}``: a file that exists.

Schema-violating (negative) cases are never touched.  Failures the project knows
about and has not fixed yet (``run.KNOWN_GAPS``, passed in
``$CONNECT_PLUGIN_API_KNOWN_GAPS``) are dropped from the run and written to
``$CONNECT_PLUGIN_API_GAPS``; ``run.py`` fails when one of them no longer
happens, so that list is kept honest.
"""

from __future__ import annotations

import itertools
import json
import os
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

import schemathesis

from connect_plugin import keys, tokens
from connect_plugin.model import AuthResult

BASE_URL = os.environ["CONNECT_PLUGIN_API_URL"]
KEY_DIR = Path(os.environ["CONNECT_PLUGIN_API_KEYS"])
LINK_TOKEN = os.environ["CONNECT_PLUGIN_API_TOKEN"]
GAPS_FILE = os.environ.get("CONNECT_PLUGIN_API_GAPS")
#: name -> [Schemathesis failure code, text in its message, why]
KNOWN_GAPS: dict[str, list[str]] = json.loads(os.environ.get("CONNECT_PLUGIN_API_KNOWN_GAPS", "{}"))

ASSETS = {
    "/attribute-ui/{asset}": ["index.html", "display.js", "display.css", "favicon.svg", "strings.json", "config.js"],
    "/amazon-connect-ui/{asset}": ["index.html", "agent.js", "agent.css", "favicon.svg"],
}

_counters: defaultdict[str, itertools.count[int]] = defaultdict(itertools.count)
_linked: list[str] = []


# --------------------------------------------------------------------------- talking to the plugin


def _post(path: str, body: bytes, content_type: str, bearer: str | None = None) -> tuple[int, bytes]:
    headers = {"Content-Type": content_type}
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    request = urllib.request.Request(BASE_URL + path, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # loopback only
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _keys() -> tuple[keys.PublicKey, keys.PrivateKey]:
    encrypt = keys.load_public_key("RSA", (KEY_DIR / "plugin-encrypt.pub.pem").read_text())
    sign = keys.load_private_key("RSA", (KEY_DIR / "auth-sign.key.pem").read_text())
    return encrypt, sign


ENCRYPT_KEY, SIGN_KEY = _keys()


def valid_token(status: str = "succes") -> str:
    """A token the plugin accepts, as an authentication plugin makes it."""
    attributes = {"email": "jane@example.com", "fullname": "Jane Doe"} if status == "succes" else None
    return tokens.make_auth_result(AuthResult(status, attributes), ENCRYPT_KEY, SIGN_KEY)


def new_session() -> tuple[str, str]:
    """A fresh session: its DTMF code and its result code."""
    status, body = _post("/start_communication", json.dumps({"purpose": "report_move"}).encode(), "application/json")
    if status != 200:
        raise RuntimeError(f"start_communication answered {status}")
    started = json.loads(body)
    return started["client_url"].rsplit(",", 1)[1], started["attr_url"].rsplit("/", 1)[1]


def linked_session(contact_id: str, result: str | None) -> None:
    """A session linked to ``contact_id``, with a result (``succes``/``failed``) or waiting for one."""
    dtmf, result_code = new_session()
    if result is not None:
        status, _ = _post(f"/session_result/{result_code}", valid_token(result).encode(), "application/jwt")
        assert status == 200, status
    link = json.dumps({"dtmf": dtmf, "sessionid": contact_id}).encode()
    status, _ = _post("/link_phone", link, "application/json", bearer=LINK_TOKEN)
    assert status == 200, status
    _linked.append(contact_id)


for _contact, _result in (("api-waiting", None), ("api-verified", "succes"), ("api-failed", "failed")):
    linked_session(_contact, _result)


# --------------------------------------------------------------------------- hooks


@schemathesis.serializer("application/jwt")
def _jwt_body(ctx: Any, value: Any) -> bytes:
    """The result endpoint takes the token itself as the body, as authentication plugins send it."""
    return value.encode("utf-8") if isinstance(value, str) else json.dumps(value).encode("utf-8")


def _positive(case: Any) -> bool:
    meta = getattr(case, "meta", None)
    return meta is not None and meta.generation.mode.is_positive


def _turn(case: Any) -> int:
    return next(_counters[f"{case.method} {case.operation.path}"])


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Put live codes, tokens and contact ids into a share of the schema-valid cases."""
    if not _positive(case):
        return
    path = case.operation.path
    method = case.method.upper()
    turn = _turn(case)
    if (method, path) == ("POST", "/start_communication"):
        _tidy_start(case, turn)
    elif turn % 2:
        return
    elif (method, path) == ("POST", "/session_result/{resultcode}"):
        case.path_parameters["resultcode"] = new_session()[1]
        if turn % 4 == 0:
            case.body = valid_token()
    elif (method, path) == ("POST", "/link_phone") and isinstance(case.body, dict):
        case.body["dtmf"] = new_session()[0]
    elif (method, path) == ("POST", "/end_call") and isinstance(case.body, dict):
        case.body["sessionid"] = _linked[turn % len(_linked)]
    elif method == "GET" and path in ("/session_info/{contactid}", "/session_events/{contactid}"):
        case.path_parameters["contactid"] = _linked[turn % len(_linked)]
    elif method == "GET" and path in ASSETS:
        files = ASSETS[path]
        case.path_parameters["asset"] = files[turn % len(files)]


def _tidy_start(case: Any, turn: int) -> None:
    body = case.body
    if not isinstance(body, dict):
        return
    purpose = body.get("purpose")
    if isinstance(purpose, str) and not purpose.isprintable():
        body["purpose"] = "".join(c if c.isprintable() else "x" for c in purpose)
    if isinstance(body.get("auth_result"), str) and turn % 3 == 0:
        body["auth_result"] = valid_token()


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    """Remember contact ids that a fuzzed ``/link_phone`` really linked."""
    if case.operation.path == "/link_phone" and response.status_code == 200 and isinstance(case.body, dict):
        contact = case.body.get("sessionid")
        if isinstance(contact, str) and contact not in _linked:
            _linked.append(contact)


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """Keep every failure but the known gaps; note each known gap met in ``$CONNECT_PLUGIN_API_GAPS``."""
    for name, (code, text, _why) in KNOWN_GAPS.items():
        if failure.code == code and text in failure.message:
            if GAPS_FILE:
                with open(GAPS_FILE, "a", encoding="utf-8") as out:
                    out.write(f"{name}\t{case.method} {case.operation.path}\n")
            return False
    return True
