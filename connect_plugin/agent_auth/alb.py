"""``agent_auth = "alb"``: behind an AWS Application Load Balancer that signs agents in itself.

A listener rule with an ``authenticate-oidc`` or ``authenticate-cognito``
action signs the agent in at the identity provider and forwards each request
with the agent's claims in the ``x-amzn-oidc-data`` header.  Anyone who reaches
the plugin some other way can send that header too, so it is trusted only
after the checks AWS documents:

* it is an ES256 JWT (any other ``alg`` is refused before anything else);
* its header's ``signer`` is exactly ``alb_signer_arn`` (our load balancer);
* its signature verifies with the public key AWS publishes for its ``kid`` at
  ``alb_key_url`` (by default ``https://public-keys.auth.elb.<region>.amazonaws.com/<kid>``,
  the region taken from the ARN); keys are fetched once per ``kid`` and kept;
* it has not expired (``exp`` in its header, and in its claims when there).

PyJWT does the verification.  The load balancer encodes the token's parts in
base64url *with* padding and signs them that way; PyJWT reads padded parts and
verifies the signature over the parts exactly as received, so such tokens
verify as they are (nothing here re-encodes or strips anything).

The claims then go through the same rules as ``oidc`` (``rules.py``).  There
is no sign-in page here: without a valid header the answer is 401 (the load
balancer itself sends browsers to the identity provider).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.httputil import HTTPServerRequest

from ..config import Settings
from ..config.agent_values import ALB_ARN
from ..model import Agent
from .rules import ClaimRules

log = logging.getLogger(__name__)

HEADER = "x-amzn-oidc-data"
DEFAULT_KEY_URL = "https://public-keys.auth.elb.{region}.amazonaws.com/{kid}"
MAX_TOKEN = 16 * 1024  # the load balancer refuses claims over 11 KB
_KID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
KEY_TIMEOUT = 5.0
MAX_KEYS = 64  # kept public keys; the load balancer rotates through a few
MISSING_KEY_SECONDS = 60.0  # an unknown kid is not asked for again within this


class AlbKeys:
    """The load balancer's public keys by ``kid``, fetched once each and kept."""

    def __init__(self, url_template: str, region: str) -> None:
        self.url_template = url_template
        self.region = region
        self._keys: OrderedDict[str, ec.EllipticCurvePublicKey] = OrderedDict()
        self._missing: dict[str, float] = {}
        self._pending: dict[str, asyncio.Future[ec.EllipticCurvePublicKey | None]] = {}
        self._http: AsyncHTTPClient | None = None

    def url(self, kid: str) -> str:
        """Where the key with this id is published."""
        return self.url_template.replace("{region}", self.region).replace("{kid}", kid)

    async def get(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        """The P-256 public key for ``kid``, or ``None`` when there is none (or it cannot be fetched now)."""
        key = self._keys.get(kid)
        if key is not None:
            return key
        if time.monotonic() - self._missing.get(kid, -MISSING_KEY_SECONDS) < MISSING_KEY_SECONDS:
            return None
        pending = self._pending.get(kid)
        if pending is None:  # concurrent requests with a new kid share one fetch
            pending = self._pending[kid] = asyncio.ensure_future(self._fetch(kid))
            pending.add_done_callback(lambda _: self._pending.pop(kid, None))
        return await asyncio.shield(pending)

    async def _fetch(self, kid: str) -> ec.EllipticCurvePublicKey | None:
        if self._http is None:
            self._http = AsyncHTTPClient(force_instance=True, max_body_size=64 * 1024)
        request = HTTPRequest(self.url(kid), connect_timeout=KEY_TIMEOUT, request_timeout=KEY_TIMEOUT,
                              follow_redirects=False, headers={"User-Agent": "connect-plugin agent sign-in"})
        try:
            answer = await self._http.fetch(request, raise_error=False)
        except (TimeoutError, OSError, HTTPClientError) as error:
            log.warning("alb: the key server does not answer (%s)", type(error).__name__)
            return None  # not remembered as missing: the next request tries again
        key = _p256_key(answer.body) if answer.code == 200 else None
        if key is None:
            log.warning("alb: no usable public key for a key id (key server answered %d)", answer.code)
            self._missing[kid] = time.monotonic()
            return None
        self._keys[kid] = key
        while len(self._keys) > MAX_KEYS:
            self._keys.popitem(last=False)
        return key

    def close(self) -> None:
        """Release the HTTP client."""
        if self._http is not None:
            self._http.close()
            self._http = None


def _p256_key(pem: bytes | None) -> ec.EllipticCurvePublicKey | None:
    try:
        key = load_pem_public_key(pem or b"")
    except (ValueError, TypeError):
        return None
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key
    return None


class AlbSignIn:
    """An ``AgentAuth`` that trusts the load balancer's signed ``x-amzn-oidc-data`` header, once checked."""

    mode = "alb"

    def __init__(self, settings: Settings) -> None:
        match = ALB_ARN.match(settings.alb_signer_arn)
        assert match is not None  # the settings checked it
        self.signer = settings.alb_signer_arn
        self.leeway = float(settings.token_leeway)
        self.rules = ClaimRules.from_settings(settings)
        self.keys = AlbKeys(settings.alb_key_url or DEFAULT_KEY_URL, match["region"])

    def __repr__(self) -> str:
        return f"AlbSignIn(signer={self.signer!r})"

    async def start(self) -> None:
        """Nothing to prepare: keys are fetched when a token names them."""

    async def close(self) -> None:
        """Release the key fetcher's HTTP client."""
        self.keys.close()

    def routes(self) -> Sequence[tuple[str, Any, dict[str, Any]]]:
        """No sign-in pages: the load balancer has them."""
        return ()

    async def identify(self, request: HTTPServerRequest) -> Agent | None:
        """The agent in a valid ``x-amzn-oidc-data`` header; ``None`` without one."""
        token = request.headers.get(HEADER)
        if not token:
            return None
        claims = await self.verified_claims(token.strip())
        return self.rules.agent(claims) if claims is not None else None

    async def verified_claims(self, token: str) -> dict[str, Any] | None:
        """The claims of a load balancer's token that passes every check, else ``None`` (and why, logged)."""
        if len(token) > MAX_TOKEN:
            return _refused("too large")
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError, TypeError):
            return _refused("not a JWT")
        if header.get("alg") != "ES256":
            return _refused("alg is not ES256")
        if header.get("signer") != self.signer:
            return _refused("signed by another load balancer")
        kid = header.get("kid")
        if not isinstance(kid, str) or not _KID.match(kid):
            return _refused("no usable kid")
        key = await self.keys.get(kid)
        if key is None:
            return _refused("no public key for its kid")
        try:
            decoded = jwt.decode_complete(token, key, algorithms=["ES256"], leeway=self.leeway,
                                          options={"verify_aud": False})
        except jwt.ExpiredSignatureError:
            return _refused("expired")
        except (jwt.PyJWTError, ValueError, TypeError):  # whatever a crafted token provokes: a refusal
            return _refused("bad signature or claims")
        verified = decoded["header"]
        if verified.get("signer") != self.signer or not self._unexpired(verified.get("exp")):
            return _refused("expired or signed by another load balancer")
        payload = decoded["payload"]
        return payload if isinstance(payload, dict) else _refused("claims are not an object")

    def _unexpired(self, exp: Any) -> bool:
        if isinstance(exp, str) and exp.isdigit():
            exp = int(exp)
        if isinstance(exp, bool) or not isinstance(exp, int | float):
            return False
        return exp + self.leeway > time.time()

    async def may_view(self, agent: Agent, contact_id: str | None) -> bool:
        """The claim rules decide; every allowed agent may see every call's data."""
        return self.rules.allows(agent)

    def login_url(self, request: HTTPServerRequest) -> str | None:
        """None: browsers get 401; the load balancer's own rule sends them to sign in."""
        return None


def _refused(reason: str) -> dict[str, Any] | None:
    """``None``, after logging why the header was refused (never the header itself)."""
    log.info("alb: x-amzn-oidc-data refused: %s", reason)
    return None
