"""``agent_auth = "alb"``: the load balancer's ``x-amzn-oidc-data`` header, trusted only once checked.

Keys are real P-256 keys served over local HTTP as AWS serves them by ``kid``;
tokens are made as the load balancer makes them (padded base64url parts).
AWS itself is the one thing not run here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.fixtures.plugins import run_sync
from tests.sign_in_support import ALB_ARN, alb_token
from tests.support import dtmf_of

CONTACT = "5b0e7c1d-2a3f-4e5d-8c9b-0a1b2c3d4e5f"
ALICE = {"sub": "alice-sub", "email": "alice@gemeente.example", "email_verified": "true",
         "groups": ["agents"], "exp": int(time.time()) + 600, "iss": "https://idp.example"}


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Sign-in is about requests, not storage: SQLite is enough."""
    return sqlite_url


@pytest.fixture
def alb_plugin(io_loop, plugin_factory, alb_key_server, mint):
    """A plugin in ``alb`` mode with one linked call holding a verified result."""

    async def start():
        plugin = await plugin_factory(agent_auth="alb", alb_signer_arn=ALB_ARN,
                                      alb_key_url=alb_key_server.url_template, oidc_allowed_groups=["agents"])
        started = await plugin.api.start("report_move")
        await plugin.api.post_result(started.json["attr_url"], mint(attributes={"fullname": "Jane Roe"}))
        await plugin.api.link(dtmf_of(started), CONTACT)
        return plugin

    return run_sync(io_loop, start)


def base64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


async def info_with(plugin, token: str | None):
    headers = {"x-amzn-oidc-data": token} if token is not None else {}
    return await plugin.api.call("GET", f"/session_info/{CONTACT}", headers=headers)


@pytest.mark.gen_test(timeout=30)
async def test_a_valid_header_from_our_load_balancer_shows_the_attributes(alb_plugin, alb_key_server, caplog):
    caplog.set_level(logging.INFO, logger="connect_plugin")
    key = alb_key_server.new_key("kid-1")
    response = await info_with(alb_plugin, alb_token(key, "kid-1", ALICE))
    assert response.status == 200
    assert response.json["auth_result"]["attributes"] == {"fullname": "Jane Roe"}
    audit = [r.getMessage() for r in caplog.records if r.name == "connect_plugin.audit"]
    assert audit == [f"agent alice@gemeente.example read the verified attributes of contact {CONTACT}"]
    assert "Jane Roe" not in caplog.text


@pytest.mark.gen_test(timeout=30)
async def test_an_unpadded_token_verifies_as_well(alb_plugin, alb_key_server):
    key = alb_key_server.new_key("kid-1")
    assert (await info_with(alb_plugin, alb_token(key, "kid-1", ALICE, padded=False))).status == 200


@pytest.mark.gen_test(timeout=30)
async def test_the_public_key_is_fetched_once_per_kid(alb_plugin, alb_key_server):
    key = alb_key_server.new_key("kid-1")
    for _ in range(3):
        assert (await info_with(alb_plugin, alb_token(key, "kid-1", ALICE))).status == 200
    assert alb_key_server.hits == {"kid-1": 1}


@pytest.mark.gen_test(timeout=30)
async def test_no_header_is_401_without_a_login_url(alb_plugin):
    response = await info_with(alb_plugin, None)
    assert response.status == 401
    assert response.json == {"error": "Unauthorized", "detail": "sign in as an agent first"}


@pytest.mark.gen_test(timeout=30)
async def test_a_header_signed_for_another_load_balancer_is_401(alb_plugin, alb_key_server):
    key = alb_key_server.new_key("kid-1")
    other = ALB_ARN.replace("0123456789abcdef", "fedcba9876543210")
    assert (await info_with(alb_plugin, alb_token(key, "kid-1", ALICE, signer=other))).status == 401
    assert alb_key_server.hits == {}  # refused before any key was fetched


@pytest.mark.gen_test(timeout=30)
async def test_a_header_signed_with_another_key_is_401(alb_plugin, alb_key_server):
    alb_key_server.new_key("kid-1")
    stranger = ec.generate_private_key(ec.SECP256R1())
    assert (await info_with(alb_plugin, alb_token(stranger, "kid-1", ALICE))).status == 401


@pytest.mark.gen_test(timeout=30)
async def test_a_kid_the_key_server_does_not_know_is_401(alb_plugin, alb_key_server):
    stranger = ec.generate_private_key(ec.SECP256R1())
    assert (await info_with(alb_plugin, alb_token(stranger, "kid-unknown", ALICE))).status == 401


@pytest.mark.gen_test(timeout=30)
async def test_an_expired_header_is_401(alb_plugin, alb_key_server):
    key = alb_key_server.new_key("kid-1")
    assert (await info_with(alb_plugin, alb_token(key, "kid-1", ALICE, lifetime=-3600))).status == 401


@pytest.mark.gen_test(timeout=30)
async def test_expired_claims_in_a_fresh_header_are_401(alb_plugin, alb_key_server):
    key = alb_key_server.new_key("kid-1")
    stale = {**ALICE, "exp": int(time.time()) - 3600}
    assert (await info_with(alb_plugin, alb_token(key, "kid-1", stale))).status == 401


@pytest.mark.gen_test(timeout=30)
async def test_an_algorithm_other_than_es256_is_401(alb_plugin, alb_key_server):
    alb_key_server.new_key("kid-1")
    public_pem = alb_key_server.keys["kid-1"]
    # The classic confusion: the public key used as an HMAC secret (PyJWT will not make this; so by hand).
    parts = [{"alg": "HS256", "kid": "kid-1", "signer": ALB_ARN, "exp": int(time.time()) + 120}, ALICE]
    signing_input = ".".join(base64url(json.dumps(part).encode()) for part in parts)
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    hs256 = f"{signing_input}.{base64url(mac)}"
    assert (await info_with(alb_plugin, hs256)).status == 401
    p384 = ec.generate_private_key(ec.SECP384R1())
    alb_key_server.keys["kid-384"] = p384.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    es384 = jwt.encode(ALICE, p384, algorithm="ES384",
                       headers={"kid": "kid-384", "signer": ALB_ARN, "exp": int(time.time()) + 120})
    assert (await info_with(alb_plugin, es384)).status == 401
    unsigned = jwt.encode(ALICE, None, algorithm="none", headers={"kid": "kid-1", "signer": ALB_ARN})
    assert (await info_with(alb_plugin, unsigned)).status == 401


@pytest.mark.gen_test(timeout=30)
async def test_garbage_in_the_header_is_401(alb_plugin):
    for value in ("x", "a.b.c", "e30.e30.", "x" * 20000):
        assert (await info_with(alb_plugin, value)).status == 401, value


@pytest.mark.gen_test(timeout=30)
async def test_an_agent_outside_the_allowed_groups_is_403(alb_plugin, alb_key_server):
    key = alb_key_server.new_key("kid-1")
    outsider = {**ALICE, "sub": "bob-sub", "email": "bob@gemeente.example", "groups": ["sales"]}
    response = await info_with(alb_plugin, alb_token(key, "kid-1", outsider))
    assert response.status == 403
    assert response.json["error"] == "Forbidden"


@pytest.mark.gen_test(timeout=30)
async def test_the_live_channel_is_guarded_the_same_way(alb_plugin, alb_key_server):
    alb_key_server.new_key("kid-1")
    denied = await alb_plugin.api.call("GET", f"/session_events/{CONTACT}")
    assert denied.status == 401
    forged = await alb_plugin.api.call("GET", f"/session_events/{CONTACT}", headers={
        "x-amzn-oidc-data": alb_token(ec.generate_private_key(ec.SECP256R1()), "kid-1", ALICE)})
    assert forged.status == 401
    assert alb_key_server.hits == {"kid-1": 1}


@pytest.mark.gen_test(timeout=30)
async def test_pages_answer_401_not_a_redirect(alb_plugin, alb_key_server):
    for path in (f"/attribute-ui/?{CONTACT}", "/amazon-connect-ui/"):
        response = await alb_plugin.api.call("GET", path)
        assert response.status == 401, path
    key = alb_key_server.new_key("kid-1")
    signed_in = await alb_plugin.api.call("GET", f"/attribute-ui/?{CONTACT}",
                                          headers={"x-amzn-oidc-data": alb_token(key, "kid-1", ALICE)})
    assert signed_in.status == 200
