"""What a browser gets from the pages and the live stream around the edges of an agent's sign-in."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import pytest

from connect_plugin.hookspecs import hookimpl
from connect_plugin.model import Agent
from tests.sse_client import EventStream
from tests.support import dtmf_of

CONTACT = "6d1e2f3a-4b5c-4d6e-8f70-91a2b3c4d5e6"


class ShortSignIn:
    """An ``AgentAuth``: ``X-Agent`` names the agent, signed in for ``seconds`` more; no header: not signed in."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    @hookimpl
    def connect_plugin_agent_auth(self, settings: Any) -> ShortSignIn:
        return self

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def routes(self) -> Sequence[tuple[str, Any, dict[str, Any]]]:
        return ()

    async def identify(self, request: Any) -> Agent | None:
        name = request.headers.get("X-Agent")
        return Agent(subject=name, expires_at=time.time() + self.seconds) if name else None

    async def may_view(self, agent: Agent, contact_id: str | None) -> bool:
        return True

    def login_url(self, request: Any) -> str | None:
        return "/agent/login"


@pytest.mark.gen_test(timeout=30)
async def test_a_live_stream_ends_when_the_agents_sign_in_does(plugin_factory):
    plugin = await plugin_factory(hook_plugins=[ShortSignIn(seconds=1.5)], events_keepalive=60)
    started = await plugin.api.start("report_move")
    assert (await plugin.api.link(dtmf_of(started), CONTACT)).status == 200
    stream = await EventStream.open(plugin.base_url, f"/session_events/{CONTACT}", {"X-Agent": "agent-1"})
    assert stream.status == 200
    assert (await stream.next_event("session")).json["state"] == "waiting"
    # The keepalive is a minute away: only the end of the sign-in ends the stream this soon.
    assert await stream.ends(timeout=15)
    stream.close()


@pytest.mark.gen_test
async def test_a_stream_of_a_sign_in_without_an_end_stays_open(plugin_factory):
    plugin = await plugin_factory(hook_plugins=[ShortSignIn(seconds=3600)], events_keepalive=60)
    started = await plugin.api.start("report_move")
    await plugin.api.link(dtmf_of(started), CONTACT)
    stream = await EventStream.open(plugin.base_url, f"/session_events/{CONTACT}", {"X-Agent": "agent-1"})
    await stream.next_event("session")
    assert not await stream.ends(timeout=2)
    stream.close()


@pytest.mark.gen_test
async def test_the_display_in_a_frame_comes_without_a_sign_in_so_it_can_ask_for_one(plugin_factory):
    plugin = await plugin_factory(hook_plugins=[ShortSignIn(seconds=60)])
    framed = await plugin.api.call("GET", "/attribute-ui/?x", headers={"Sec-Fetch-Dest": "iframe"})
    assert framed.status == 200
    assert b"<html" in framed.body.lower()
    data = await plugin.api.call("GET", f"/session_info/{CONTACT}", headers={"Sec-Fetch-Dest": "iframe"})
    assert data.status == 401  # the page, yes; the data, no


@pytest.mark.gen_test
@pytest.mark.parametrize(("path", "dest"), [("/attribute-ui/", "document"), ("/attribute-ui/", None),
                                            ("/amazon-connect-ui/", "iframe"), ("/amazon-connect-ui/", "document")])
async def test_other_page_loads_without_a_sign_in_go_to_sign_in(plugin_factory, path, dest):
    plugin = await plugin_factory(hook_plugins=[ShortSignIn(seconds=60)])
    headers = {"Sec-Fetch-Dest": dest} if dest else {}
    from tornado.httpclient import HTTPRequest

    request = HTTPRequest(plugin.base_url + path, headers=headers, follow_redirects=False)
    response = await plugin.api.http.fetch(request, raise_error=False)
    assert response.code == 302
    assert response.headers["Location"] == "/agent/login"
