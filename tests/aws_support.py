"""What the tests of ``aws/`` share: loading the Lambda's files, Amazon Connect events, a stand-in plugin.

``aws/`` holds single files that Lambda (or a deployer) runs on their own, not a
package; :func:`load_aws_module` imports one the way Lambda does.  Events have
the shape of ``aws/test-event.json`` (Amazon Connect's documented
``ContactFlowEvent``).  :class:`StandIn` plays a plugin that misbehaves in ways
the real one cannot be made to on purpose: slow, failing, redirecting, or
refusing with ``429`` while its link failure budget is spent.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import ModuleType
from typing import Any

from tests.support import ROOT

AWS = ROOT / "aws"


def load_aws_module(name: str) -> ModuleType:
    """Import ``aws/<name>.py`` under its own name, as Lambda does: a single file, not part of a package."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, AWS / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module

#: The sample event a deployer uses in the Lambda console's *Test* tab.
SAMPLE_EVENT: dict[str, Any] = json.loads((AWS / "test-event.json").read_text())


def connect_event(contact_id: str | None, *, attribute: str | None = None, parameter: str | None = None,
                  attributes: dict[str, str] | None = None) -> dict[str, Any]:
    """An Amazon Connect ``ContactFlowEvent``: the sample event with this contact id and code(s).

    ``attribute`` is the contact attribute ``dtmf``; ``parameter`` the function
    input parameter ``dtmf``; ``None`` leaves each out.
    """
    event = copy.deepcopy(SAMPLE_EVENT)
    contact = event["Details"]["ContactData"]
    for key in ("ContactId", "InitialContactId", "PreviousContactId"):
        contact[key] = contact_id
    if contact_id is None:
        del contact["ContactId"]
    contact["Attributes"] = dict(attributes or {})
    if attribute is not None:
        contact["Attributes"]["dtmf"] = attribute
    event["Details"]["Parameters"] = {} if parameter is None else {"dtmf": parameter}
    return event


def new_contact() -> str:
    """A fresh Amazon Connect ContactId (a UUID)."""
    return str(uuid.uuid4())


def assert_string_map(result: Any) -> None:
    """What the flow's ``STRING_MAP`` validation accepts: a flat map of strings.

    Amazon Connect documents values of letters, digits, dashes and underscores.
    """
    assert isinstance(result, dict)
    assert all(isinstance(k, str) and isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9_-]+", v)
               for k, v in result.items())


class StandIn:
    """A tiny HTTP server on 127.0.0.1 playing a plugin that misbehaves: slow, failing, redirecting or refusing.

    It answers every POST with ``status``, the ``headers`` given and ``body`` (by
    default the plugin's error body for a 5xx, else ``{}``), after ``delay``
    seconds, and keeps what it received in ``requests``.
    """

    def __init__(self, status: int = 200, delay: float = 0.0, headers: dict[str, str] | None = None,
                 body: dict[str, Any] | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.release = threading.Event()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                stand_in.requests.append({"path": self.path, "headers": dict(self.headers),
                                          "body": self.rfile.read(length)})
                stand_in.release.wait(delay)
                answer = body if body is not None else {"error": "ServiceUnavailable"} if status >= 500 else {}
                data = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    for name, value in (headers or {}).items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up first: that is what the slow case tests

            do_GET = do_POST  # a followed redirect may arrive as a GET

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        """The ``/link_phone`` URL of this stand-in."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/link_phone"

    def close(self) -> None:
        """Stop serving and let any waiting answer go."""
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
