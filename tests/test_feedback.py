"""Session feedback: the plugin tells the authentication plugin's session_url about the call, from the server."""

from __future__ import annotations

import asyncio

import pytest
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from connect_plugin.feedback import feedback_url
from tests.support import dtmf_of

CONTACT = "fee0dbac-0000-4000-8000-000000000001"
LINK_TOKEN = "lambda-shared-secret-0123456789"
#: The receivers here listen on loopback, which feedback reaches only when it is listed.
LOOPBACK_RECEIVERS = ["127.0.0.1"]


@pytest.fixture
def plugin(io_loop, plugin_factory):
    """A plugin that may post feedback to the loopback receivers of these tests."""
    return io_loop.run_sync(lambda: plugin_factory(feedback_hosts=LOOPBACK_RECEIVERS), timeout=60)


class Receiver:
    """A stand-in authentication plugin's session endpoint, on loopback, recording what it is told."""

    def __init__(self, status: int = 200) -> None:
        self.calls: list[tuple[str, str]] = []
        self.arrived = asyncio.Event()
        receiver = self

        class Session(RequestHandler):
            def post(self, session: str) -> None:
                receiver.calls.append((session, self.get_query_argument("type", "")))
                receiver.arrived.set()
                self.set_status(status)

        sockets = bind_sockets(0, "127.0.0.1")
        self.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
        self.server = HTTPServer(Application([(r"/session/(\w+)", Session)]))
        self.server.add_sockets(sockets)

    async def next_call(self, timeout: float = 5.0) -> tuple[str, str]:
        await asyncio.wait_for(self.arrived.wait(), timeout)
        self.arrived.clear()
        return self.calls[-1]


@pytest.fixture
def receiver(io_loop):
    r = Receiver()
    yield r
    r.server.stop()


def test_feedback_url_adds_the_type_and_refuses_other_schemes():
    assert feedback_url("https://auth.example.nl/s/1?x=2", "logout") == "https://auth.example.nl/s/1?x=2&type=logout"
    assert feedback_url("https://auth.example.nl/s/1?type=old", "user_active").endswith("?type=user_active")
    assert feedback_url("file:///etc/passwd", "logout") is None
    assert feedback_url("javascript:alert(1)", "logout") is None


@pytest.mark.gen_test
async def test_linking_a_call_reports_user_active(api, mint, receiver):
    token = mint(session_url=f"{receiver.url}/session/abc")
    started = await api.start("report_move", auth_result=token)
    assert receiver.calls == []  # no call yet: nothing to report
    assert (await api.link(dtmf_of(started), CONTACT)).status == 200
    assert await receiver.next_call() == ("abc", "user_active")


@pytest.mark.gen_test
async def test_result_arriving_during_the_call_reports_user_active(api, mint, receiver):
    started = (await api.start("report_move")).json
    await api.link(dtmf_of(started), CONTACT)
    await api.post_result(started["attr_url"], mint(session_url=f"{receiver.url}/session/late"))
    assert await receiver.next_call() == ("late", "user_active")


@pytest.mark.gen_test
async def test_end_of_the_call_reports_logout(plugin_factory, mint, receiver):
    plugin = await plugin_factory(link_phone_token=LINK_TOKEN, feedback_hosts=LOOPBACK_RECEIVERS)
    api = plugin.api
    started = await api.start("report_move", auth_result=mint(session_url=f"{receiver.url}/session/done"))
    await api.link(dtmf_of(started), CONTACT, token=LINK_TOKEN)
    await receiver.next_call()
    unauthorized = await api.call("POST", "/end_call", {"sessionid": CONTACT})
    assert unauthorized.status == 401
    ended = await api.call("POST", "/end_call", {"sessionid": CONTACT},
                           headers={"Authorization": f"Bearer {LINK_TOKEN}"})
    assert ended.status == 200
    assert await receiver.next_call() == ("done", "logout")


@pytest.mark.gen_test
async def test_end_of_an_unknown_call_is_404(api):
    response = await api.call("POST", "/end_call", {"sessionid": CONTACT})
    assert response.status == 404
    assert response.json == {"error": "NotFound"}


@pytest.mark.gen_test
async def test_a_result_without_session_url_sends_nothing(api, mint, receiver):
    started = await api.start("report_move", auth_result=mint())
    await api.link(dtmf_of(started), CONTACT)
    await api.call("POST", "/end_call", {"sessionid": CONTACT})
    await asyncio.sleep(0.3)
    assert receiver.calls == []


@pytest.mark.gen_test
async def test_an_absent_receiver_never_fails_the_call(api, mint):
    from tests.support import free_port

    token = mint(session_url=f"http://127.0.0.1:{free_port()}/session/gone")
    started = await api.start("report_move", auth_result=token)
    assert (await api.link(dtmf_of(started), CONTACT)).status == 200
    assert (await api.call("POST", "/end_call", {"sessionid": CONTACT})).status == 200
    assert (await api.info(CONTACT)).status == 200


@pytest.mark.gen_test
async def test_session_info_still_carries_the_session_url_as_the_protocol_says(api, mint, receiver):
    token = mint(session_url=f"{receiver.url}/session/abc")
    started = await api.start("report_move", auth_result=token)
    await api.link(dtmf_of(started), CONTACT)
    assert (await api.info(CONTACT)).json["auth_result"]["session_url"] == f"{receiver.url}/session/abc"
