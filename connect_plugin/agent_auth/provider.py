"""Talking to an OpenID provider: discovery, the token endpoint, and checking the ID token.

* **Discovery**: ``<oidc_issuer>/.well-known/openid-configuration``, fetched with
  Tornado's asynchronous client, kept, and fetched again on the next sign-in
  when the provider did not answer before (so the plugin starts while the
  provider is down, and sign-in works once it is back).
* **Token endpoint**: the authorization code and the PKCE verifier, with the
  client secret (HTTP Basic, or in the form when the provider only takes that).
* **ID token**: PyJWT with its ``PyJWKClient``: signature by a key from the
  provider's ``jwks_uri``, ``iss``, ``aud`` (and ``azp``), ``exp``/``iat`` and
  ``nonce``.  Algorithms are the provider's, less ``none`` and every HMAC one.
  ``PyJWKClient`` fetches keys synchronously, so the check runs in a thread.

No token, code or secret is ever logged or put in an error message.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import jwt
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from ..config import Secret
from ..errors import BadRequest, PluginError

log = logging.getLogger(__name__)

#: ID token algorithms we accept when the provider offers them: public-key signatures only.
ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
TIMEOUT = 5.0  # seconds for any one request to the provider
MAX_RESPONSE = 1024 * 1024
METADATA_LIFETIME = 24 * 3600.0  # refreshed on the next sign-in after this
USER_AGENT = "connect-plugin agent sign-in"
BASIC = "client_secret_basic"  # the OAuth client authentication method


class ProviderUnavailable(PluginError):
    """The identity provider did not answer, or answered nonsense; sign-in may work again later."""

    status = 503
    word = "ProviderUnavailable"


class SignInRefused(BadRequest):
    """The provider's answer to this sign-in does not hold up (the detail says which check failed)."""


@dataclass(frozen=True)
class Metadata:
    """What the plugin uses from the provider's discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: tuple[str, ...]
    #: ``client_secret_basic`` or ``client_secret_post``.
    token_auth: str
    end_session_endpoint: str | None = None
    #: The provider adds ``iss`` to its answers (RFC 9207): the callback must carry the right one.
    iss_in_response: bool = False

    @classmethod
    def parse(cls, document: Any, issuer: str) -> Metadata:
        """Check a discovery document for ``issuer``; raise ``ProviderUnavailable`` naming what is wrong."""
        if not isinstance(document, dict):
            raise ProviderUnavailable("the provider's discovery document is not a JSON object")
        if document.get("issuer") != issuer:
            raise ProviderUnavailable("the provider's discovery document names another issuer than oidc_issuer")
        https = urlsplit(issuer).scheme == "https"
        endpoints: dict[str, str] = {}
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri", "end_session_endpoint"):
            value = document.get(name)
            if value is None and name == "end_session_endpoint":
                continue
            parts = urlsplit(value) if isinstance(value, str) else None
            if parts is None or parts.scheme not in ("https", "http") or not parts.netloc or (
                    https and parts.scheme != "https"):
                raise ProviderUnavailable(f"the provider's discovery document has no usable {name}")
            endpoints[name] = str(value)
        offered = document.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = tuple(a for a in ASYMMETRIC if isinstance(offered, list) and a in offered)
        if not algorithms:
            raise ProviderUnavailable("the provider signs ID tokens with no public-key algorithm we accept")
        methods = document.get("token_endpoint_auth_methods_supported") or [BASIC]
        token_auth = BASIC if BASIC in methods else "client_secret_post"
        return cls(issuer=issuer, algorithms=algorithms, token_auth=token_auth,
                   authorization_endpoint=endpoints["authorization_endpoint"],
                   token_endpoint=endpoints["token_endpoint"], jwks_uri=endpoints["jwks_uri"],
                   end_session_endpoint=endpoints.get("end_session_endpoint"),
                   iss_in_response=document.get("authorization_response_iss_parameter_supported") is True)


class OpenIdProvider:
    """One OpenID provider, as this plugin's client: ``oidc_issuer``, ``oidc_client_id``, the secret."""

    def __init__(self, issuer: str, client_id: str, client_secret: Secret, leeway: float) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self._secret = client_secret
        self.leeway = leeway
        self._metadata: Metadata | None = None
        self._fetched_at = 0.0
        self._keys: jwt.PyJWKClient | None = None
        self._lock = asyncio.Lock()
        self._http: AsyncHTTPClient | None = None

    def __repr__(self) -> str:
        return f"OpenIdProvider(issuer={self.issuer!r}, client_id={self.client_id!r})"

    @property
    def http(self) -> AsyncHTTPClient:
        """This provider's HTTP client (made on first use, on the running event loop)."""
        if self._http is None:
            self._http = AsyncHTTPClient(force_instance=True, max_body_size=MAX_RESPONSE)
        return self._http

    def close(self) -> None:
        """Release the HTTP client."""
        if self._http is not None:
            self._http.close()
            self._http = None

    @property
    def known(self) -> Metadata | None:
        """The metadata if it has been fetched (no network)."""
        return self._metadata

    async def metadata(self) -> Metadata:
        """The provider's metadata: fetched once, again after a day, and again after a failure."""
        if self._metadata is not None and time.monotonic() - self._fetched_at < METADATA_LIFETIME:
            return self._metadata
        async with self._lock:  # one fetch at a time; the others use its result
            if self._metadata is not None and time.monotonic() - self._fetched_at < METADATA_LIFETIME:
                return self._metadata
            try:
                document = await self._get_json(self.issuer + "/.well-known/openid-configuration")
                metadata = Metadata.parse(document, self.issuer)
            except ProviderUnavailable as error:
                log.warning("OpenID provider %s: %s", self.issuer, error.detail)
                if self._metadata is not None:  # a failed refresh keeps what worked
                    return self._metadata
                raise
            if self._keys is None or self._metadata is None or self._metadata.jwks_uri != metadata.jwks_uri:
                self._keys = jwt.PyJWKClient(metadata.jwks_uri, cache_jwk_set=True, lifespan=3600,
                                             timeout=TIMEOUT, headers={"User-Agent": USER_AGENT})
            self._metadata, self._fetched_at = metadata, time.monotonic()
            log.info("OpenID provider %s: metadata read (ID token algorithms %s)", self.issuer,
                     ", ".join(metadata.algorithms))
            return metadata

    async def redeem(self, code: str, verifier: str, redirect_uri: str) -> str:
        """Exchange an authorization code (with its PKCE verifier) for the ID token."""
        metadata = await self.metadata()
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "code_verifier": verifier}
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
        secret = self._secret.reveal()
        if metadata.token_auth == BASIC:  # RFC 6749 2.3.1: each part form-encoded first
            pair = f"{quote(self.client_id, safe='')}:{quote(secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        else:
            form |= {"client_id": self.client_id, "client_secret": secret}
        answer = await self._send(HTTPRequest(metadata.token_endpoint, method="POST", body=urlencode(form),
                                              headers=headers, **_limits()))
        if answer.code != 200:
            raise SignInRefused(f"the identity provider refused the sign-in ({_oauth_error(answer.body)})")
        try:
            id_token = json.loads(answer.body).get("id_token")
        except (ValueError, AttributeError):
            id_token = None
        if not isinstance(id_token, str) or not id_token:
            raise SignInRefused("the identity provider's token answer holds no ID token")
        return id_token

    async def verify(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The claims of an ID token, after every check; ``SignInRefused`` naming the first that failed."""
        metadata = await self.metadata()
        assert self._keys is not None
        return await asyncio.to_thread(self._verify, self._keys, metadata.algorithms, id_token, nonce)

    def _verify(self, keys: jwt.PyJWKClient, algorithms: tuple[str, ...], id_token: str,
                nonce: str) -> dict[str, Any]:
        try:
            key = keys.get_signing_key_from_jwt(id_token)
            claims = jwt.decode(id_token, key.key, algorithms=list(algorithms), audience=self.client_id,
                                issuer=self.issuer, leeway=self.leeway,
                                options={"require": ["iss", "aud", "exp", "iat", "sub"]})
        except jwt.PyJWKClientConnectionError:
            raise ProviderUnavailable("the provider's signing keys could not be fetched") from None
        except (jwt.PyJWTError, ValueError, TypeError) as error:  # whatever a crafted token provokes
            raise SignInRefused(f"the ID token was refused ({type(error).__name__})") from None
        given = claims.get("nonce")
        if not isinstance(given, str) or not hmac.compare_digest(given.encode(), nonce.encode()):
            raise SignInRefused("the ID token was refused (its nonce is not this sign-in's)")
        audience = claims["aud"]
        if isinstance(audience, list) and len(audience) > 1 and claims.get("azp") != self.client_id:
            raise SignInRefused("the ID token was refused (issued to another party: azp)")
        return claims

    async def _get_json(self, url: str) -> Any:
        answer = await self._send(HTTPRequest(url, headers={"Accept": "application/json"}, **_limits()))
        if answer.code != 200:
            raise ProviderUnavailable(f"the provider answered {answer.code} at {urlsplit(url).path}")
        try:
            return json.loads(answer.body)
        except ValueError:
            raise ProviderUnavailable(f"the provider's answer at {urlsplit(url).path} is not JSON") from None

    async def _send(self, request: HTTPRequest) -> Any:
        request.headers["User-Agent"] = USER_AGENT
        try:
            return await self.http.fetch(request, raise_error=False)
        except (TimeoutError, OSError, HTTPClientError):
            raise ProviderUnavailable("the identity provider does not answer; try again shortly") from None


def _limits() -> dict[str, Any]:
    return {"connect_timeout": TIMEOUT, "request_timeout": TIMEOUT, "follow_redirects": False}


def _oauth_error(body: bytes | None) -> str:
    """The OAuth ``error`` code of a refusal (a short token such as ``invalid_grant``), nothing else."""
    try:
        error = json.loads(body or b"{}").get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, str) and error.isascii() and error.replace("_", "").isalnum() and len(error) <= 64:
        return error
    return "no reason given"
