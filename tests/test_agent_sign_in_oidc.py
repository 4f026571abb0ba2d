"""``agent_auth = "oidc"`` over real HTTP against a real OpenID provider: what a browser without a sign-in,
with a forged, foreign or expired cookie, or with a valid one, gets from every route that shows data.

The whole sign-in through the provider's login page, in Chromium, is in
``tests/browser/test_agent_sign_in.py``; here the cookie is minted with the
deployment's secret, as a sign-in on another instance would have made it.
"""

from __future__ import annotations

import json
import logging
import time
from email.utils import parsedate_to_datetime
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse

from connect_plugin.model import Agent
from tests.fixtures.plugins import run_sync
from tests.sign_in_support import OpenIdProviderProcess, cookie_header
from tests.support import dtmf_of, free_port

CONTACT = "9c1e2d3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f"
ALICE = Agent(subject="alice", email="alice@gemeente.example", groups=("agents",))
BOB = Agent(subject="bob", email="bob@gemeente.example", groups=())


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Sign-in is about requests, not storage: SQLite is enough."""
    return sqlite_url


@pytest.fixture
def oidc_plugin(io_loop, plugin_factory, oidc_provider, mint):
    """A plugin that signs agents in at the test provider, with one linked call holding a verified result."""

    async def start():
        plugin = await plugin_factory(**oidc_provider.settings())
        started = await plugin.api.start("report_move")
        await plugin.api.post_result(started.json["attr_url"], mint(attributes={"fullname": "Jane Roe"}))
        await plugin.api.link(dtmf_of(started), CONTACT)
        return plugin

    return run_sync(io_loop, start)


async def fetch(plugin, path: str, headers: dict[str, str] | None = None, method: str = "GET") -> HTTPResponse:
    """One request, redirects not followed."""
    request = HTTPRequest(plugin.base_url + path, method=method, headers=headers or {}, follow_redirects=False,
                          body=b"" if method == "POST" else None, request_timeout=20)
    return await AsyncHTTPClient().fetch(request, raise_error=False)


def set_cookies(response: HTTPResponse) -> SimpleCookie:
    """The cookies a response sets."""
    jar: SimpleCookie = SimpleCookie()
    for value in response.headers.get_list("Set-Cookie"):
        jar.load(value)
    return jar


def expired(morsel) -> bool:
    """Whether a cookie is set to expire in the past (the browser drops it)."""
    return parsedate_to_datetime(morsel["expires"]).timestamp() < time.time()


def alice(oidc_provider, **kwargs) -> dict[str, str]:
    return cookie_header(ALICE, issuer=oidc_provider.issuer, **kwargs)


@pytest.mark.gen_test(timeout=60)
async def test_data_without_a_sign_in_is_401_with_where_to_sign_in(oidc_plugin):
    for path in (f"/session_info/{CONTACT}", f"/session_events/{CONTACT}"):
        response = await fetch(oidc_plugin, path)
        assert response.code == 401, path
        assert b"Jane Roe" not in response.body
        assert response.headers["Content-Type"] == "application/json"
        assert response.body.decode().startswith('{"error": "Unauthorized"')
        assert json.loads(response.body)["login_url"] == oidc_plugin.base_url + "/agent/login"


@pytest.mark.gen_test(timeout=60)
async def test_pages_send_a_browser_without_a_sign_in_to_sign_in_and_back(oidc_plugin):
    response = await fetch(oidc_plugin, f"/attribute-ui/?{CONTACT}")
    assert response.code == 302
    assert response.headers["Location"] == (
        f"{oidc_plugin.base_url}/agent/login?next=%2Fattribute-ui%2F%3F{CONTACT}")
    agent_page = await fetch(oidc_plugin, "/amazon-connect-ui/")
    assert agent_page.headers["Location"].endswith("/agent/login?next=%2Famazon-connect-ui%2F")


@pytest.mark.gen_test(timeout=60)
async def test_a_valid_sign_in_shows_the_data_and_is_audited_without_values(oidc_plugin, oidc_provider, caplog):
    caplog.set_level(logging.INFO, logger="connect_plugin")
    response = await fetch(oidc_plugin, f"/session_info/{CONTACT}", alice(oidc_provider))
    assert response.code == 200
    assert b"Jane Roe" in response.body
    page = await fetch(oidc_plugin, f"/attribute-ui/?{CONTACT}", alice(oidc_provider))
    assert page.code == 200
    audit = [r.getMessage() for r in caplog.records if r.name == "connect_plugin.audit"]
    assert audit == [f"agent alice@gemeente.example read the verified attributes of contact {CONTACT}"]
    assert "Jane Roe" not in caplog.text


@pytest.mark.gen_test(timeout=60)
async def test_a_signed_in_agent_outside_the_allowed_groups_is_403(oidc_plugin, oidc_provider):
    bob = cookie_header(BOB, issuer=oidc_provider.issuer)
    for path in (f"/session_info/{CONTACT}", f"/session_events/{CONTACT}", f"/attribute-ui/?{CONTACT}"):
        response = await fetch(oidc_plugin, path, bob)
        assert response.code == 403, path
        assert b"Jane Roe" not in response.body


@pytest.mark.gen_test(timeout=60)
async def test_forged_foreign_and_expired_cookies_are_401(oidc_plugin, oidc_provider):
    valid = alice(oidc_provider)["Cookie"]
    name, value = valid.split("=", 1)
    body, signature = value.rsplit("|", 1)
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    now = time.time()
    refused = {
        "garbage": f"{name}=not-a-signed-value",
        "tampered signature": f"{name}={body}|{flipped}",
        "another server's secret": cookie_header(ALICE, issuer=oidc_provider.issuer,
                                                 secret="another-deployment-entirely-0123456789abcdef")["Cookie"],
        "another issuer": cookie_header(ALICE, issuer="https://other-idp.example")["Cookie"],
        "expired": alice(oidc_provider, now=now - 7200, lifetime=3600)["Cookie"],
        "older than agent_session_hours": alice(oidc_provider, now=now - 13 * 3600, lifetime=24 * 3600)["Cookie"],
        "under another name": f"connect_plugin_other={value}",
    }
    for what, cookie in refused.items():
        for path in (f"/session_info/{CONTACT}", f"/session_events/{CONTACT}"):
            response = await fetch(oidc_plugin, path, {"Cookie": cookie})
            assert response.code == 401, (what, path)
            assert b"Jane Roe" not in response.body
        page = await fetch(oidc_plugin, f"/attribute-ui/?{CONTACT}", {"Cookie": cookie})
        assert page.code == 302, what
    assert (await fetch(oidc_plugin, f"/session_info/{CONTACT}", {"Cookie": valid})).code == 200


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("next_path", ["//evil.example/", "https://evil.example/", "/\\evil.example", "/\t/evil",
                                       "evil", "/a b", "http:/evil.example", "/\n/evil.example"])
async def test_login_refuses_a_next_that_leaves_this_server(oidc_plugin, next_path):
    response = await fetch(oidc_plugin, f"/agent/login?next={quote(next_path, safe='')}")
    assert response.code == 400, next_path
    # control characters in a query are refused before any route sees it (http_guard)
    assert (b"next must be a path on this server" in response.body
            or b"the query string holds control characters" in response.body)


@pytest.mark.gen_test(timeout=60)
async def test_login_sends_the_browser_to_the_provider_with_pkce_state_and_nonce(oidc_plugin, oidc_provider):
    response = await fetch(oidc_plugin, f"/agent/login?next=%2Fattribute-ui%2F%3F{CONTACT}")
    assert response.code == 302
    target = urlsplit(response.headers["Location"])
    assert f"{target.scheme}://{target.netloc}" == oidc_provider.issuer
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert query["response_type"] == "code"
    assert query["redirect_uri"] == oidc_plugin.base_url + "/agent/callback"
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 43
    assert len(query["nonce"]) >= 43
    assert query["scope"] == "openid email profile groups"
    login = set_cookies(response)["connect_plugin_login"]
    assert login["httponly"] is True
    assert login["samesite"] == "Lax"
    assert login["path"] == "/agent/"
    assert not login["secure"]  # plain http on loopback only
    again = await fetch(oidc_plugin, "/agent/login")
    assert parse_qs(urlsplit(again.headers["Location"]).query)["state"][0] != query["state"]


@pytest.mark.gen_test(timeout=60)
async def test_cookies_are_secure_with_host_prefixes_behind_https(plugin_factory, oidc_provider):
    plugin = await plugin_factory(**oidc_provider.settings(external_url="https://agents.gemeente.example"))
    response = await fetch(plugin, "/agent/login")
    login = set_cookies(response)["__Secure-connect_plugin_login"]
    assert login["secure"] is True
    assert login["httponly"] is True
    redirect_uri = parse_qs(urlsplit(response.headers["Location"]).query)["redirect_uri"][0]
    assert redirect_uri == "https://agents.gemeente.example/agent/callback"
    logout = await fetch(plugin, "/agent/logout")
    cleared = set_cookies(logout)["__Host-connect_plugin_agent"]
    assert cleared.value == ""
    assert cleared["secure"] is True
    assert cleared["path"] == "/"
    assert expired(cleared)


@pytest.mark.gen_test(timeout=60)
async def test_the_callback_refuses_an_answer_this_browser_did_not_ask_for(oidc_plugin):
    no_attempt = await fetch(oidc_plugin, "/agent/callback?code=abc&state=xyz")
    assert no_attempt.code == 400
    assert b"no sign-in was started in this browser" in no_attempt.body
    login = await fetch(oidc_plugin, "/agent/login")
    cookie = set_cookies(login)["connect_plugin_login"]
    header = {"Cookie": f"connect_plugin_login={cookie.value}"}
    wrong_state = await fetch(oidc_plugin, "/agent/callback?code=abc&state=not-the-one", header)
    assert wrong_state.code == 400
    assert b"(state)" in wrong_state.body
    assert set_cookies(wrong_state)["connect_plugin_login"].value == ""  # an attempt is used once
    assert "connect_plugin_agent" not in set_cookies(wrong_state)


@pytest.mark.gen_test(timeout=60)
async def test_a_refusal_by_the_provider_is_401_with_a_way_to_try_again(oidc_plugin, oidc_provider):
    login = await fetch(oidc_plugin, "/agent/login")
    state = parse_qs(urlsplit(login.headers["Location"]).query)["state"][0]
    cookie = set_cookies(login)["connect_plugin_login"]
    answer = await fetch(oidc_plugin, f"/agent/callback?error=access_denied&state={state}&iss={oidc_provider.issuer}",
                         {"Cookie": f"connect_plugin_login={cookie.value}"})
    assert answer.code == 401
    assert b"(access_denied)" in answer.body
    assert b"/agent/login" in answer.body


@pytest.mark.gen_test(timeout=60)
async def test_logout_clears_the_sign_in_and_ends_the_provider_session(oidc_plugin, oidc_provider, caplog):
    caplog.set_level(logging.INFO, logger="connect_plugin.audit")
    response = await fetch(oidc_plugin, "/agent/logout", alice(oidc_provider))
    assert response.code == 302
    assert response.headers["Location"].startswith(oidc_provider.issuer + "/session/end?client_id=")
    cleared = set_cookies(response)["connect_plugin_agent"]
    assert cleared.value == ""
    assert expired(cleared)
    assert "agent alice@gemeente.example signed out" in caplog.text


@pytest.mark.gen_test(timeout=120)
async def test_a_provider_down_at_start_is_found_when_an_agent_signs_in(plugin_factory, tmp_path):
    provider = OpenIdProviderProcess(["http://127.0.0.1:9/agent/callback"], port=free_port(), log_dir=tmp_path)
    plugin = await plugin_factory(**provider.settings())  # nothing listens at the issuer yet
    down = await fetch(plugin, "/agent/login")
    assert down.code == 503
    assert down.body.startswith(b'{"error": "ProviderUnavailable"')
    provider.start()
    try:
        up = await fetch(plugin, "/agent/login")
        assert up.code == 302
        assert up.headers["Location"].startswith(provider.issuer + "/auth?")
    finally:
        provider.stop()


@pytest.mark.gen_test(timeout=60)
async def test_listed_origins_may_send_credentials_others_get_nothing(plugin_factory, oidc_provider):
    plugin = await plugin_factory(**oidc_provider.settings(allowed_origins=["https://agents.gemeente.example"]))
    listed = await fetch(plugin, f"/session_info/{CONTACT}", {"Origin": "https://agents.gemeente.example"})
    assert listed.headers["Access-Control-Allow-Origin"] == "https://agents.gemeente.example"
    assert listed.headers["Access-Control-Allow-Credentials"] == "true"
    preflight = await fetch(plugin, f"/session_events/{CONTACT}", {"Origin": "https://agents.gemeente.example"},
                            method="OPTIONS")
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    other = await fetch(plugin, f"/session_info/{CONTACT}", {"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    assert "Access-Control-Allow-Credentials" not in other.headers


@pytest.mark.gen_test(timeout=60)
async def test_without_sign_in_nobody_is_audited(plugin_factory, mint, caplog):
    caplog.set_level(logging.INFO, logger="connect_plugin")
    plugin = await plugin_factory(agent_auth="none")
    started = await plugin.api.start("report_move")
    await plugin.api.post_result(started.json["attr_url"], mint())
    await plugin.api.link(dtmf_of(started), CONTACT)
    assert (await plugin.api.info(CONTACT)).status == 200
    assert [r for r in caplog.records if r.name == "connect_plugin.audit"] == []

