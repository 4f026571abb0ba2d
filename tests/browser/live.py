"""A real plugin for synchronous browser tests, and a blocking client for its protocol endpoints.

Playwright's sync API blocks the test's thread, so the plugin (the same
``Runtime`` that ``connect-plugin serve`` runs) serves from an event loop of
its own in a background thread.  It can be stopped and started again on the
same port and database, as a restarted server would be.
"""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any

from tornado.netutil import bind_sockets

from connect_plugin.app import Runtime
from connect_plugin.config import load_settings
from connect_plugin.plugins import make_manager
from tests.support import dtmf_of


class LivePlugin:
    """``Runtime`` on its own loop in a thread, on a fixed port; ``start``/``stop`` as often as needed.

    ``hook_plugins`` are registered with the plugin manager at every start, as
    an installed plugin would be (e.g. an ``AgentAuth`` of a test's own).
    """

    def __init__(self, config: Path, port: int, hook_plugins: Sequence[object] = ()) -> None:
        self.config = config
        self.port = port
        self.hook_plugins = tuple(hook_plugins)
        self.runtime: Runtime | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """Where the plugin serves."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def origin(self) -> str:
        """The plugin's origin, as a browser names it in ``Origin`` headers."""
        return self.base_url

    def start(self) -> LivePlugin:
        """Read the settings, listen on the port and serve until ``stop``."""
        sockets = bind_sockets(self.port, "127.0.0.1")
        loop = self._loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=serve, name=f"plugin:{self.port}", daemon=True)
        self._thread.start()

        async def begin() -> Runtime:
            pm = make_manager()
            for extra in self.hook_plugins:  # the same objects again after a restart
                pm.register(extra)
            runtime = Runtime(load_settings(self.config, environ={}), pm)
            await runtime.start(sockets)
            return runtime

        self.runtime = self.call(begin())
        return self

    def call(self, coro: Coroutine[Any, Any, Any], timeout: float = 30.0) -> Any:
        """Run a coroutine on the plugin's loop and return its result."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self) -> None:
        """Stop gracefully (open streams end, in-flight requests finish), then end the thread."""
        if self.runtime is None or self._loop is None or self._thread is None:
            return
        self.call(self.runtime.stop(grace=5))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self.runtime = self._loop = self._thread = None


class Calls:
    """The protocol's calls from the core, an authentication plugin and the Lambda, blocking."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """One request; the status and body, also for error statuses."""
        request = urllib.request.Request(self.base_url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def start(self, purpose: str, auth_result: str | None = None) -> dict[str, str]:
        """``POST /start_communication``; the answer."""
        body: dict[str, str] = {"purpose": purpose}
        if auth_result is not None:
            body["auth_result"] = auth_result
        status, answer = self.request("POST", "/start_communication", json.dumps(body).encode(),
                                      {"Content-Type": "application/json"})
        assert status == 200, answer
        return json.loads(answer)

    def post_result(self, attr_url: str, token: str) -> None:
        """``POST /session_result/<code>`` as an authentication plugin does."""
        path = "/session_result/" + attr_url.rsplit("/session_result/", 1)[1]
        status, answer = self.request("POST", path, token.encode(), {"Content-Type": "application/jwt"})
        assert status == 200, answer

    def link(self, started: dict[str, str], contact_id: str) -> None:
        """``POST /link_phone`` with the code from a start answer, as the Lambda does."""
        dtmf = dtmf_of(started)
        body = json.dumps({"dtmf": dtmf, "sessionid": contact_id}).encode()
        status, answer = self.request("POST", "/link_phone", body, {"Content-Type": "application/json"})
        assert status == 200, answer

    def linked(self, purpose: str, contact_id: str, auth_result: str | None = None) -> dict[str, str]:
        """A session for ``purpose`` linked to the call ``contact_id``; the start answer."""
        started = self.start(purpose, auth_result)
        self.link(started, contact_id)
        return started
