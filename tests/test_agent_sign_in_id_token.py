"""The ID token check (``agent_auth/provider.py``) against tokens no honest provider would send.

A provider's discovery document and JWKS are served over local HTTP from
real keys; the tokens are signed with real keys (or deliberately not).  The
honest path, with a real provider, is in ``test_agent_sign_in_oidc.py`` and
the browser tests.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from connect_plugin.agent_auth.provider import Metadata, OpenIdProvider, ProviderUnavailable, SignInRefused
from connect_plugin.config import Secret
from tests.fixtures.plugins import run_sync

CLIENT = "plugin-client"
NONCE = "the-nonce-of-this-sign-in"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class FakeProviderDocuments:
    """A discovery document and a JWKS, served from 127.0.0.1 (the metadata a provider publishes)."""

    def __init__(self) -> None:
        self.port = 0
        self.algorithms: list[str] = ["RS256", "HS256", "none"]
        self.issuer_override: str | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def document(self) -> dict[str, Any]:
        return {"issuer": self.issuer_override or self.issuer, "authorization_endpoint": f"{self.issuer}/auth",
                "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
                "id_token_signing_alg_values_supported": self.algorithms}

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
        return {"keys": [{**jwk, "kid": "key-1", "use": "sig"}]}


@pytest.fixture
def documents(io_loop):
    served = FakeProviderDocuments()

    class Discovery(web.RequestHandler):
        def get(self) -> None:
            self.finish(served.document())

    class Keys(web.RequestHandler):
        def get(self) -> None:
            self.finish(served.jwks())

    sockets = bind_sockets(0, "127.0.0.1")
    served.port = sockets[0].getsockname()[1]

    async def listen():
        server = HTTPServer(web.Application([(r"/.well-known/openid-configuration", Discovery),
                                             (r"/jwks", Keys)]))
        server.add_sockets(sockets)
        return server

    server = run_sync(io_loop, listen)
    yield served
    server.stop()


def provider_for(documents) -> OpenIdProvider:
    return OpenIdProvider(documents.issuer, CLIENT, Secret("secret"), leeway=60)


def claims(documents, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": documents.issuer, "aud": CLIENT, "sub": "alice", "iat": now, "exp": now + 300, "nonce": NONCE}
    return {k: v for k, v in {**base, **changes}.items() if v is not None}


def signed(payload: dict[str, Any], key=KEY, kid: str = "key-1", algorithm: str = "RS256") -> str:
    return jwt.encode(payload, key, algorithm=algorithm, headers={"kid": kid})


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@pytest.mark.gen_test(timeout=30)
async def test_an_honest_id_token_gives_its_claims(documents):
    provider = provider_for(documents)
    assert (await provider.verify(signed(claims(documents)), NONCE))["sub"] == "alice"
    metadata = await provider.metadata()
    assert metadata.algorithms == ("RS256",)  # HS256 and none offered, never accepted


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize(("what", "changes"), [
    ("another nonce", {"nonce": "an-earlier-sign-in"}),
    ("no nonce", {"nonce": None}),
    ("another audience", {"aud": "someone-else"}),
    ("another issuer", {"iss": "https://evil.example"}),
    ("expired", {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}),
    ("no expiry", {"exp": None}),
    ("no subject", {"sub": None}),
    ("several audiences, we are not the party", {"aud": [CLIENT, "other"], "azp": "other"}),
])
async def test_a_dishonest_id_token_is_refused(documents, what, changes):
    with pytest.raises(SignInRefused):
        await provider_for(documents).verify(signed(claims(documents, **changes)), NONCE)


@pytest.mark.gen_test(timeout=30)
async def test_a_token_signed_with_another_key_is_refused(documents):
    with pytest.raises(SignInRefused):
        await provider_for(documents).verify(signed(claims(documents), key=OTHER_KEY), NONCE)
    with pytest.raises(SignInRefused):
        await provider_for(documents).verify(signed(claims(documents), key=OTHER_KEY, kid="unknown"), NONCE)


@pytest.mark.gen_test(timeout=30)
async def test_unsigned_and_hmac_tokens_are_refused_even_when_the_provider_lists_them(documents):
    payload = claims(documents)
    unsigned = jwt.encode(payload, None, algorithm="none", headers={"kid": "key-1"})
    public_pem = KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{b64(json.dumps({'alg': 'HS256', 'kid': 'key-1'}).encode())}.{b64(json.dumps(payload).encode())}"
    confused = f"{signing_input}.{b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())}"
    for token in (unsigned, confused):
        with pytest.raises(SignInRefused):
            await provider_for(documents).verify(token, NONCE)


@pytest.mark.gen_test(timeout=30)
async def test_an_algorithm_the_provider_does_not_list_is_refused(documents):
    documents.algorithms = ["ES256"]
    with pytest.raises(SignInRefused):
        await provider_for(documents).verify(signed(claims(documents)), NONCE)  # RS256


@pytest.mark.gen_test(timeout=30)
async def test_a_discovery_document_for_another_issuer_is_not_used(documents):
    documents.issuer_override = "https://evil.example"
    with pytest.raises(ProviderUnavailable):
        await provider_for(documents).metadata()


def test_metadata_needs_a_public_key_algorithm_and_https_endpoints_for_an_https_issuer():
    issuer = "https://login.example.nl"
    good = {"issuer": issuer, "authorization_endpoint": f"{issuer}/a", "token_endpoint": f"{issuer}/t",
            "jwks_uri": f"{issuer}/k"}
    assert Metadata.parse(good, issuer).algorithms == ("RS256",)  # the default when none are listed
    assert Metadata.parse({**good, "token_endpoint_auth_methods_supported": ["client_secret_post"]},
                          issuer).token_auth == "client_secret_post"
    for broken in ({**good, "id_token_signing_alg_values_supported": ["HS256", "none"]},
                   {**good, "token_endpoint": "http://login.example.nl/t"},
                   {**good, "jwks_uri": None}, ["not", "an", "object"]):
        with pytest.raises(ProviderUnavailable):
            Metadata.parse(broken, issuer)

