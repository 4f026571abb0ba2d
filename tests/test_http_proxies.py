"""Forwarded client addresses: believed only from ``trusted_proxies``, never from any client that sends them."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from connect_plugin.addresses import parse_network
from connect_plugin.http_guard import ProxyAwareHTTPServer
from tests.support import Api

SPOOF = {"X-Forwarded-For": "198.51.100.66", "X-Real-Ip": "198.51.100.77", "X-Forwarded-Proto": "https"}


class Echo(RequestHandler):
    def get(self) -> None:
        self.finish({"ip": self.request.remote_ip, "protocol": self.request.protocol})


@pytest.fixture
def echo_server(io_loop):
    """``start(*trusted)``: the plugin's HTTP server class around an app that says who it thinks the client is."""
    servers = []

    def start(*trusted: str) -> Api:
        sockets = bind_sockets(0, "127.0.0.1")
        server = ProxyAwareHTTPServer(Application([(r"/", Echo)]), xheaders=False)
        server.trusted_proxies = tuple(parse_network(t) for t in trusted)
        server.add_sockets(sockets)
        servers.append(server)
        return Api(f"http://127.0.0.1:{sockets[0].getsockname()[1]}")

    yield start
    for server in servers:
        server.stop()


async def seen(api: Api, headers: dict[str, str]) -> dict[str, str]:
    return (await api.call("GET", "/", headers=headers)).json


@pytest.mark.gen_test(timeout=30)
async def test_without_trusted_proxies_forwarded_headers_are_ignored(echo_server):
    api = echo_server()
    assert await seen(api, SPOOF) == {"ip": "127.0.0.1", "protocol": "http"}


@pytest.mark.gen_test(timeout=30)
async def test_headers_from_a_peer_that_is_not_a_trusted_proxy_are_ignored(echo_server):
    api = echo_server("10.0.0.0/8", "2001:db8::/32")
    assert await seen(api, SPOOF) == {"ip": "127.0.0.1", "protocol": "http"}


@pytest.mark.gen_test(timeout=30)
async def test_a_trusted_proxy_names_the_client_and_the_scheme(echo_server):
    api = echo_server("127.0.0.1")
    assert await seen(api, SPOOF) == {"ip": "198.51.100.66", "protocol": "https"}


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize(("forwarded_for", "client"), [
    ("203.0.113.9", "203.0.113.9"),
    # A client's own X-Forwarded-For is kept by proxies, which append: only the right end is believed.
    ("1.1.1.1, 203.0.113.9", "203.0.113.9"),
    ("1.1.1.1, 203.0.113.9, 10.0.0.2", "203.0.113.9"),
    ("10.0.0.3, 10.0.0.2", "10.0.0.3"),  # every hop a trusted proxy: the first of them
    ("2001:DB8:0::7", "2001:db8::7"),
    ("not-an-address", "127.0.0.1"),
    ("1.1.1.1, junk", "127.0.0.1"),
])
async def test_x_forwarded_for_is_read_from_the_right_past_trusted_proxies(echo_server, forwarded_for, client):
    api = echo_server("127.0.0.1", "10.0.0.0/8")
    assert (await seen(api, {"X-Forwarded-For": forwarded_for, "X-Real-Ip": "198.51.100.77"}))["ip"] == client


@pytest.mark.gen_test(timeout=30)
async def test_x_real_ip_counts_only_without_x_forwarded_for(echo_server):
    api = echo_server("127.0.0.0/8")
    assert (await seen(api, {"X-Real-Ip": "203.0.113.5"}))["ip"] == "203.0.113.5"
    assert (await seen(api, {"X-Real-Ip": "bogus"}))["ip"] == "127.0.0.1"
    assert (await seen(api, {"X-Forwarded-Proto": "gopher"}))["protocol"] == "http"


@pytest.mark.gen_test(timeout=30)
async def test_the_next_request_on_a_kept_alive_connection_starts_from_the_peer_again(echo_server):
    api = echo_server("127.0.0.1")
    port = int(api.base_url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answers = []
    try:
        for extra in ("X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n", ""):
            writer.write(f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode())
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            answers.append(json.loads(await reader.readexactly(length)))
    finally:
        writer.close()
    assert answers == [{"ip": "203.0.113.9", "protocol": "https"}, {"ip": "127.0.0.1", "protocol": "http"}]


@pytest.mark.gen_test(timeout=30)
async def test_the_plugin_logs_the_connection_address_unless_a_trusted_proxy_forwards(plugin_factory, caplog):
    caplog.set_level(logging.INFO, logger="tornado.access")
    direct = await plugin_factory()
    await direct.api.call("GET", "/health", headers=SPOOF)
    assert "198.51.100" not in caplog.text
    assert "/health" in caplog.text
    assert caplog.records[-1].getMessage().endswith(" 127.0.0.1")
    behind = await plugin_factory(trusted_proxies=["127.0.0.1/32"])
    await behind.api.call("GET", "/health", headers=SPOOF)
    assert caplog.records[-1].getMessage().endswith(" 198.51.100.66")
