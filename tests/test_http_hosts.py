"""The Host allow-list: a request naming a host this plugin does not serve gets 421 (DNS rebinding).

A page on an attacker's domain whose name has been made to resolve to this
server still names the attacker's domain in ``Host``; it must get nothing.
"""

from __future__ import annotations

import pytest

from connect_plugin.addresses import normalise_host
from tests.support import count_sessions, dtmf_of

CONTACT = "7c0a2f5e-3b1d-4e6f-9a8b-0c1d2e3f4a5b"
EVIL = "rebind.attacker.example"


def misdirected(response) -> bool:
    return response.status == 421 and response.json["error"] == "MisdirectedRequest"


@pytest.mark.gen_test(timeout=30)
async def test_a_foreign_host_gets_421_on_every_endpoint_and_nothing_is_stored(plugin, database_url):
    api = plugin.api
    dtmf = dtmf_of(await api.start("report_move"))
    await api.link(dtmf, CONTACT)
    foreign = {"Host": f"{EVIL}:{plugin.runtime.port}"}
    for method, path, body in [
        ("GET", f"/session_info/{CONTACT}", None),
        ("GET", f"/session_events/{CONTACT}", None),
        ("GET", f"/attribute-ui/?{CONTACT}", None),
        ("GET", "/amazon-connect-ui/", None),
        ("GET", "/amazon-connect-ui/config.js", None),
        ("GET", "/clean_db", None),
        ("GET", "/no/such/page", None),
        ("POST", "/start_communication", {"purpose": "report_move"}),
        ("POST", "/link_phone", {"dtmf": "0000000000", "sessionid": CONTACT}),
    ]:
        response = await api.call(method, path, body, headers=foreign)
        assert misdirected(response), (method, path, response.status)
        assert b"report_move" not in response.body
    assert await count_sessions(database_url) == 1
    assert (await api.info(CONTACT)).status == 200  # the plugin's own name still works


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("host", [
    "127.0.0.1", "127.0.0.1:1", "LOCALHOST", "localhost.:8443", "[::1]", "[0:0::1]:80", "127.8.9.10",
])
async def test_loopback_names_and_addresses_are_served_on_any_port(api, host):
    response = await api.call("GET", "/clean_db", headers={"Host": host})
    assert response.status == 200, response.body


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("host", [
    "agents.example.nl", "AGENTS.example.nl.", "agents.example.nl:443", "plugin.internal:8000", "plugin.internal.",
])
async def test_the_hosts_of_internal_and_external_url_are_served(plugin_factory, host):
    plugin = await plugin_factory(internal_url="http://plugin.internal:8000", external_url="https://agents.example.nl")
    response = await plugin.api.call("GET", "/clean_db", headers={"Host": host})
    assert response.status == 200


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("host", [
    EVIL, "agents.example.nl.evil.example", "example.nl", "10.0.0.5", "[2001:db8::1]", "agents.example.nl..",
    "0x7f.1",
])
async def test_other_hosts_are_misdirected(plugin_factory, host):
    plugin = await plugin_factory(external_url="https://agents.example.nl")
    response = await plugin.api.call("GET", "/clean_db", headers={"Host": host})
    assert misdirected(response), host


@pytest.mark.gen_test(timeout=30)
async def test_allowed_hosts_adds_names_and_a_star_accepts_every_host(plugin_factory):
    listed = await plugin_factory(allowed_hosts=["plugin.example.nl", "10.0.0.5", "2001:db8::1"])
    for host in ("plugin.example.nl", "Plugin.Example.NL.:8443", "10.0.0.5:8000", "[2001:db8:0::1]:80"):
        assert (await listed.api.call("GET", "/clean_db", headers={"Host": host})).status == 200, host
    assert misdirected(await listed.api.call("GET", "/clean_db", headers={"Host": EVIL}))
    anything = await plugin_factory(allowed_hosts=["*"])
    assert (await anything.api.call("GET", "/clean_db", headers={"Host": EVIL})).status == 200


@pytest.mark.gen_test(timeout=30)
async def test_health_answers_whatever_the_host_for_load_balancer_checks(api):
    response = await api.call("GET", "/health", headers={"Host": "10.0.3.17:8000"})
    assert response.status == 200
    assert response.json["status"] == "ok"


def test_host_names_are_compared_in_one_normal_form():
    assert normalise_host("Example.NL.:8443") == "example.nl"
    assert normalise_host("[0:0:0:0:0:0:0:1]:80") == "::1"
    assert normalise_host("::1") == "::1"
    for bad in ("", ".", "a..b", "a b", "[::1]x", "host:port", "[example.nl]", "-a.example", "a" * 64 + ".nl"):
        assert normalise_host(bad) is None, bad
