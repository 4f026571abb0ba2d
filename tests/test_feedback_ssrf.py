"""Session feedback cannot be turned against the inside of the network (server-side request forgery).

A token's ``session_url`` chooses where the server POSTs.  Listeners here are
plain TCP servers on 127.0.0.1 that record every connection: "receives
nothing" means no connection was made at all.  Names that must resolve to
loopback use a stub resolver (the DNS is the edge these tests cannot run);
addresses outside loopback are only ever judged, never connected to.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket

import pytest
from tornado.netutil import Resolver

from connect_plugin.addresses import is_public_address
from connect_plugin.feedback import AddressRefused, FeedbackPolicy, FeedbackResolver, SessionFeedback
from tests.support import dtmf_of

CONTACT = "5f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
LINK_TOKEN = "lambda-shared-secret-0123456789"


class Listener:
    """A TCP listener on 127.0.0.1 that answers ``status`` and records each connection's request line."""

    def __init__(self, status: str = "200 OK", extra: str = "") -> None:
        self.requests: list[str] = []
        self.connections = 0
        self.status = status
        self.extra = extra
        self.arrived = asyncio.Event()

    async def start(self) -> Listener:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.requests.append(head.split(b"\r\n", 1)[0].decode())
            writer.write(f"HTTP/1.1 {self.status}\r\n{self.extra}Content-Length: 0\r\nConnection: close\r\n\r\n"
                         .encode())
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self.arrived.set()

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def listener(io_loop):
    """A recording listener on 127.0.0.1, in the test's event loop."""
    server = io_loop.run_sync(Listener().start)
    asyncio.set_event_loop(io_loop.asyncio_loop)
    yield server
    server.close()


class StubDNS(Resolver):
    """Answers every name with the given addresses (the DNS an attacker controls), counting questions."""

    def initialize(self, *addresses: str) -> None:  # type: ignore[override]
        self.addresses = addresses
        self.questions = 0

    async def resolve(self, host: str, port: int, family: socket.AddressFamily = socket.AF_UNSPEC):
        self.questions += 1
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, (a, port)) for a in self.addresses]


async def logged(caplog, text: str, count: int = 1, seconds: float = 10.0) -> None:
    """Wait (bounded) until ``text`` has been logged ``count`` times."""
    for _ in range(int(seconds / 0.02)):
        if sum(text in record.getMessage() for record in caplog.records) >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never logged {count}x: {text}\n{caplog.text}")


async def call_with_feedback(plugin, mint, session_url: str) -> None:
    """A whole call whose result asks for feedback: linked (user_active), then ended (logout)."""
    api = plugin.api
    started = await api.start("report_move", auth_result=mint(session_url=session_url))
    assert (await api.link(dtmf_of(started), CONTACT, token=LINK_TOKEN)).status == 200
    ended = await api.call("POST", "/end_call", {"sessionid": CONTACT},
                           headers={"Authorization": f"Bearer {LINK_TOKEN}"})
    assert ended.status == 200


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("scheme_host", ["http://127.0.0.1", "https://127.0.0.1", "https://localhost",
                                         "http://[::ffff:127.0.0.1]", "https://[::ffff:127.0.0.1]"])
async def test_a_loopback_listener_receives_nothing_by_default(plugin_factory, mint, listener, caplog, scheme_host):
    caplog.set_level(logging.INFO, logger="connect_plugin.feedback")
    plugin = await plugin_factory(link_phone_token=LINK_TOKEN)
    await call_with_feedback(plugin, mint, f"{scheme_host}:{listener.port}/internal/admin")
    await logged(caplog, "refused", count=2)  # user_active and logout, both refused
    await plugin.runtime.feedback.close()
    assert listener.connections == 0
    assert (await plugin.api.info(CONTACT)).status == 200  # the call itself went on


@pytest.mark.gen_test(timeout=60)
async def test_a_listed_host_receives_feedback_over_plain_http(plugin_factory, mint, listener, caplog):
    caplog.set_level(logging.INFO, logger="connect_plugin.feedback")
    plugin = await plugin_factory(link_phone_token=LINK_TOKEN, feedback_hosts=["127.0.0.1"])
    await call_with_feedback(plugin, mint, f"http://127.0.0.1:{listener.port}/session/abc")
    await logged(caplog, "sent to 127.0.0.1", count=2)
    assert sorted(listener.requests) == ["POST /session/abc?type=logout HTTP/1.1",
                                         "POST /session/abc?type=user_active HTTP/1.1"]


@pytest.mark.gen_test(timeout=60)
async def test_only_listed_hosts_receive_once_feedback_hosts_is_set(plugin_factory, mint, listener, caplog):
    caplog.set_level(logging.INFO, logger="connect_plugin.feedback")
    plugin = await plugin_factory(link_phone_token=LINK_TOKEN, feedback_hosts=["auth.example.nl"])
    await call_with_feedback(plugin, mint, f"http://127.0.0.1:{listener.port}/session/abc")
    await logged(caplog, "not in feedback_hosts", count=2)
    assert listener.connections == 0


@pytest.mark.gen_test(timeout=30)
async def test_a_name_that_resolves_to_loopback_is_refused_at_the_connection(io_loop, listener, caplog):
    caplog.set_level(logging.INFO, logger="connect_plugin.feedback")
    dns = StubDNS("127.0.0.1")
    feedback = SessionFeedback(resolver=dns)
    feedback.send(f"https://rebind.attacker.example:{listener.port}/s", "logout")
    await logged(caplog, "refused: not a public address")
    await feedback.close()
    assert dns.questions == 1  # the one answer checked is the one the connection would use
    assert listener.connections == 0


@pytest.mark.gen_test(timeout=30)
async def test_a_listed_name_is_reached_at_whatever_address_it_has(io_loop, listener, caplog):
    caplog.set_level(logging.INFO, logger="connect_plugin.feedback")
    feedback = SessionFeedback(hosts=("auth.internal",), resolver=StubDNS("127.0.0.1"))
    feedback.send(f"http://auth.internal:{listener.port}/s/1", "logout")
    await logged(caplog, "sent to auth.internal")
    await feedback.close()
    assert listener.requests == ["POST /s/1?type=logout HTTP/1.1"]


@pytest.mark.gen_test(timeout=30)
async def test_redirects_are_not_followed(io_loop, caplog):
    caplog.set_level(logging.INFO, logger="connect_plugin.feedback")
    target = await Listener().start()
    redirector = await Listener("302 Found", f"Location: http://127.0.0.1:{target.port}/admin\r\n").start()
    try:
        feedback = SessionFeedback(hosts=("127.0.0.1",))
        feedback.send(f"http://127.0.0.1:{redirector.port}/s", "logout")
        await logged(caplog, "answered 302")
        await feedback.close()
        assert redirector.connections == 1
        assert target.connections == 0
    finally:
        target.close()
        redirector.close()


@pytest.mark.gen_test(timeout=30)
async def test_the_resolver_keeps_only_allowed_addresses_and_never_metadata(io_loop):
    open_policy = FeedbackPolicy()
    mixed = FeedbackResolver(policy=open_policy, resolver=StubDNS("10.1.2.3", "93.184.215.14", "::1",
                                                                  "2606:4700::1111"))
    answers = await mixed.resolve("www.example.nl", 443)
    assert [address[0] for _, address in answers] == ["93.184.215.14", "2606:4700::1111"]
    listed = FeedbackPolicy(("169.254.169.254", "metadata.internal", "auth.internal"))
    for name in ("169.254.169.254", "metadata.internal"):
        with pytest.raises(AddressRefused):
            await FeedbackResolver(policy=listed, resolver=StubDNS("169.254.169.254", "fd00:ec2::254")).resolve(
                name, 80)
    inside = await FeedbackResolver(policy=listed, resolver=StubDNS("10.0.0.8")).resolve("auth.internal", 80)
    assert inside == [(socket.AF_INET, ("10.0.0.8", 80))]


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254", "169.254.170.2", "100.64.0.1",
    "100.100.100.200", "0.0.0.0", "255.255.255.255", "224.0.0.251", "239.255.255.250", "192.0.2.1", "198.18.0.1",
    "240.0.0.1", "::", "::1", "fe80::1", "fd00:ec2::254", "fc00::1", "ff02::1", "2001:db8::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1",
    "2002:c0a8:101::1",
])
def test_internal_addresses_are_never_public(address):
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "2a00:1450:4001::200e",
                                     "::ffff:93.184.215.14", "64:ff9b::808:808"])
def test_public_addresses_are_public(address):
    assert is_public_address(ipaddress.ip_address(address))


def test_plain_http_to_an_unlisted_host_is_refused_before_any_lookup():
    policy = FeedbackPolicy()
    assert policy.url_problem("http://auth.example.nl/s") == "plain http goes only to hosts in feedback_hosts"
    assert policy.url_problem("https://auth.example.nl/s") is None
    assert FeedbackPolicy(("Auth.Example.NL.",)).url_problem("http://auth.example.nl:8080/s") is None


@pytest.mark.parametrize("session_url", ["http://[::1/x", "http://auth.example.nl:99999/s", "http://a:abc/s",
                                         "https://exa mple.nl/s", "https:///s", "ftp://auth.example.nl/s"])
def test_a_session_url_that_is_no_sound_url_is_skipped_without_an_error(io_loop, session_url, caplog):
    caplog.set_level(logging.INFO, logger="connect_plugin.feedback")
    feedback = SessionFeedback(hosts=("auth.example.nl",))
    io_loop.run_sync(lambda: _send_now(feedback, session_url))
    assert "skipped" in caplog.text or "refused" in caplog.text
    assert not feedback._pending


async def _send_now(feedback: SessionFeedback, session_url: str) -> None:
    feedback.send(session_url, "logout")
