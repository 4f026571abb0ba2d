"""An agent sign-in for the browser tests whose verdict the test switches: signed in, signed out, refused."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from tornado.httputil import HTTPServerRequest

from connect_plugin.config import Settings
from connect_plugin.hookspecs import hookimpl
from connect_plugin.model import Agent


class SwitchableSignIn:
    """An ``AgentAuth`` registered through the hook; ``verdict`` is ``signed_in``, ``signed_out`` or ``forbidden``."""

    mode = "test"

    def __init__(self, *, with_login_url: bool = True, verdict: str = "signed_in", cookie: str | None = None) -> None:
        self.verdict = verdict
        self.with_login_url = with_login_url
        self.cookie = cookie  # when set, only a request carrying this cookie is signed in

    @hookimpl
    def connect_plugin_agent_auth(self, settings: Settings) -> SwitchableSignIn:
        """Provide this object as the plugin's agent sign-in (registered with ``hook_plugins=``)."""
        return self

    async def start(self) -> None:
        """Nothing to prepare."""

    async def close(self) -> None:
        """Nothing to release."""

    def routes(self) -> Sequence[tuple[str, Any, dict[str, Any]]]:
        """No sign-in pages: the tests only look at where the display sends the agent."""
        return ()

    async def identify(self, request: HTTPServerRequest) -> Agent | None:
        """No agent when signed out (``401``) or without the cookie asked for, else always the same one."""
        if self.verdict == "signed_out" or (self.cookie is not None and self.cookie not in request.cookies):
            return None
        return Agent(subject="agent-7", email="agent7@example.nl")

    async def may_view(self, agent: Agent, contact_id: str | None) -> bool:
        """Refused (``403``) a call's data when ``forbidden``; the pages stay open."""
        return self.verdict != "forbidden" or contact_id is None

    def login_url(self, request: HTTPServerRequest) -> str | None:
        """Like an OpenID Connect mode: this server's sign-in, back to the request after."""
        if not self.with_login_url:
            return None
        return f"{request.protocol}://{request.host}/agent/login?next={quote(request.path, safe='')}"
