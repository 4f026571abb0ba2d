"""The auth-result token: a compact JWE (``jwe``, pycryptodome) around a compact JWS (PyJWT).

Reading: decrypt with the plugin's decryption key, take the JWS from the
payload ``{"njwt": ...}``, verify it with the authentication plugins'
signature key, check the claims against a :class:`TokenPolicy`.  The
configured keys' kinds alone decide the algorithm families (RSA: ``RSA-OAEP``
or ``RSA-OAEP-256``, and ``RS256``; EC P-256: ``ECDH-ES`` and ``ES256``).
Every refusal is an :class:`~connect_plugin.errors.InvalidToken` whose
``reason`` is one of :data:`REFUSAL_REASONS` and whose detail names the kind
of failure and never quotes the token.

Minting is the inverse, with the headers the ecosystem's producers send; the
``connect-plugin token`` command and the tests use it.  See ``docs/tokens.md``.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from typing import Any

import jwt

from . import jwe
from .errors import InvalidToken
from .keys import PrivateKey, PublicKey
from .model import STATUS_FAILED, STATUS_SUCCESS, AuthResult

#: Every ``InvalidToken.reason``: a closed set, fit for metric labels.
REFUSAL_REASONS: tuple[str, ...] = (
    "too_large",  # over MAX_TOKEN_BYTES, refused before any parsing
    "malformed",  # not a well-formed JWE, payload or JWS: segments, base64url, JSON, part sizes
    "unsupported",  # an algorithm, a header member or a typ that is not accepted
    "cannot_decrypt",  # not for the configured key, or changed on the way
    "bad_signature",  # the JWS does not verify with the configured key
    "bad_claims",  # a claim missing (status, exp) or of the wrong type
    "expired",  # exp (plus leeway) has passed
    "not_yet_valid",  # iat or nbf later than now plus leeway: the producer's clock is ahead
    "lifetime",  # exp - iat or exp - now over the policy's max_lifetime
    "wrong_issuer",  # iss is not the expected issuer
    "wrong_audience",  # aud does not name the expected audience
    "replayed",  # this signed result was accepted before (raised by the flow service)
)

MAX_TOKEN_BYTES = 64 * 1024
JWS_ALG_FOR_KIND = {"RSA": "RS256", "EC": "ES256"}
_JWS_ALGORITHMS = {kind: jwt.get_algorithm_by_name(alg) for kind, alg in JWS_ALG_FOR_KIND.items()}
SUBJECT = "id-contact-attributes"
STATUSES = (STATUS_SUCCESS, STATUS_FAILED)
_WHITESPACE = " \t\r\n"


@dataclass(frozen=True)
class TokenPolicy:
    """What a token must satisfy on receipt, beyond its cryptography and claim types.

    ``leeway``: seconds of clock skew allowed on ``exp``, ``iat``, ``nbf`` and
    the lifetime cap.  ``max_lifetime``: the most seconds ``exp`` may lie after
    ``iat``, and after now.  ``issuer``: when set, ``iss`` must equal it.
    ``audience``: when set, ``aud`` (a string or a list of strings) must name it.
    """

    leeway: float = 60
    max_lifetime: float = 3600
    issuer: str | None = None
    audience: str | None = None

    def __post_init__(self) -> None:
        for name in ("leeway", "max_lifetime"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{name} must be a number of seconds")
        if self.leeway < 0:
            raise ValueError("leeway must not be negative")
        if self.max_lifetime <= 0:
            raise ValueError("max_lifetime must be positive")
        for name in ("issuer", "audience"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value):
                raise ValueError(f"{name} must be a non-empty string or None")


@dataclass(frozen=True)
class VerifiedToken:
    """A token accepted on receipt.

    ``expires_at`` is its ``exp``.  ``replay_key`` is the hex SHA-256 of the
    JWS signing input (protected header and payload as sent): the same for
    every token that carries this signed result, however it is re-encrypted
    (anyone with the plugin's public key can wrap a JWS in a fresh JWE) and
    whatever its signature bytes (ECDSA signatures are malleable).
    """

    result: AuthResult
    expires_at: float
    replay_key: str


DEFAULT_POLICY = TokenPolicy()


# --------------------------------------------------------------------------- reading


def read_verified(
    token: str | bytes,
    decryption_key: PrivateKey,
    signature_key: PublicKey,
    policy: TokenPolicy,
    *,
    now: float,
) -> VerifiedToken:
    """Decrypt, verify and check a token on receipt, at time ``now``; or InvalidToken.

    The caller keeps ``replay_key`` (until ``expires_at`` plus the leeway) to
    refuse the same result twice with reason ``replayed``.
    """
    claims, replay_key = _open(token, decryption_key, signature_key)
    check_claims(claims, policy, now=now)
    result = _result_of(claims)
    if result.attributes is None:
        # No attributes, nothing worth replaying; and producers sign identical "failed"
        # results within one second identically.  Keyed by the token as received, two
        # such results for two sessions are both accepted, the same token twice is not.
        replay_key = hashlib.sha256(b"jwe:" + _as_text(token).encode("ascii")).hexdigest()
    return VerifiedToken(result, float(claims["exp"]), replay_key)


def read_auth_result(
    token: str | bytes,
    decryption_key: PrivateKey,
    signature_key: PublicKey,
    policy: TokenPolicy | None = None,
    *,
    check_expiry: bool = True,
    now: float | None = None,
) -> AuthResult:
    """Decrypt, verify and check an auth-result token; the result it carries, or InvalidToken.

    With ``check_expiry`` the claims are checked against ``policy`` (default
    :data:`DEFAULT_POLICY`) at ``now`` (default: the clock).
    ``check_expiry=False`` is for re-reading a stored result that was checked
    when it arrived: the cryptography and the claim types are checked, the
    time, lifetime, issuer and audience rules are not.
    """
    claims = read_claims(token, decryption_key, signature_key, policy, check_expiry=check_expiry, now=now)
    return _result_of(claims)


def read_claims(
    token: str | bytes,
    decryption_key: PrivateKey,
    signature_key: PublicKey,
    policy: TokenPolicy | None = None,
    *,
    check_expiry: bool = True,
    now: float | None = None,
) -> dict[str, Any]:
    """Like :func:`read_auth_result`, but every claim of the JWS (for ``token --decode``)."""
    claims, _replay_key = _open(token, decryption_key, signature_key)
    check_claims(claims, policy, check_expiry=check_expiry, now=now)
    return claims


def _open(token: str | bytes, decryption_key: PrivateKey, signature_key: PublicKey) -> tuple[dict[str, Any], str]:
    """Decrypt and verify: the JWS claims (not yet checked) and the replay key."""
    text = _as_text(token)
    _header, plaintext = jwe.decrypt(text, decryption_key)
    payload = jwe.json_object(plaintext, "JWE payload")
    njwt = payload.get("njwt")
    if not isinstance(njwt, str):
        raise InvalidToken("malformed", "the JWE payload has no string njwt member")
    return _verify_jws(njwt, signature_key)


def _result_of(claims: dict[str, Any]) -> AuthResult:
    return AuthResult(
        status=claims["status"],
        attributes=dict(claims["attributes"]) if claims.get("attributes") is not None else None,
        session_url=claims.get("session_url"),
    )


def _as_text(token: str | bytes) -> str:
    if not isinstance(token, str | bytes):
        raise InvalidToken("malformed", "the token is not text")
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidToken("too_large", f"the token is over {MAX_TOKEN_BYTES // 1024} KiB")
    if isinstance(token, bytes):
        if not token.isascii():
            raise InvalidToken("malformed", "the token is not ASCII")
        token = token.decode("ascii")
    elif not token.isascii():
        raise InvalidToken("malformed", "the token is not ASCII")
    # A trailing newline from a file or a shell is not worth a refusal.
    return token.strip(_WHITESPACE)


def _verify_jws(njwt: str, key: PublicKey) -> tuple[dict[str, Any], str]:
    header_b64, payload_b64, signature_b64 = jwe.split_compact(njwt, 3, "JWS")
    header = jwe.json_object(jwe.b64url_decode(header_b64, "JWS header"), "JWS header")
    _check_jws_header(header, key.kind)
    payload = jwe.b64url_decode(payload_b64, "JWS payload")
    signature = jwe.b64url_decode(signature_b64, "JWS signature")
    # PyJWT's algorithm object for the key's kind, the one algorithm we accept,
    # checks the signature over the signing input exactly as sent (RFC 7515 5.2).
    # Strict base64url makes that text the only encoding of these bytes, so its
    # hash identifies the signed content.
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    try:
        valid = _JWS_ALGORITHMS[key.kind].verify(signing_input, key.crypto_key, signature)
    except (jwt.PyJWTError, ValueError, TypeError):
        valid = False
    if not valid:
        raise InvalidToken("bad_signature", "the signature does not verify with the configured key")
    return jwe.json_object(payload, "JWS claims"), hashlib.sha256(signing_input).hexdigest()


def _check_jws_header(header: dict[str, Any], kind: str) -> None:
    alg = header.get("alg")
    expected = JWS_ALG_FOR_KIND[kind]
    if alg != expected:
        if alg == "none":
            raise InvalidToken("unsupported", "unsigned tokens (alg none) are refused")
        if isinstance(alg, str) and alg.startswith("HS"):
            raise InvalidToken("unsupported", "HMAC-signed tokens are refused")
        raise InvalidToken("unsupported", f"the signature algorithm is not {expected}, the one for the {kind} key")
    if "crit" in header or "b64" in header:
        raise InvalidToken("unsupported", "JWS header extensions (crit, b64) are not understood")
    if "typ" in header and not is_jwt_type(header["typ"]):
        raise InvalidToken("unsupported", "the JWS typ is not JWT")


def is_jwt_type(typ: Any) -> bool:
    """Whether a ``typ`` header value names the JWT media type, compared as RFC 7515 4.1.9 says.

    A value without ``/`` is read with ``application/`` before it, and media
    types compare case-insensitively: ``JWT``, ``jwt`` and ``application/jwt``
    all match.  Parameters, spaces and anything non-ASCII do not.
    """
    if not isinstance(typ, str) or not typ.isascii():
        return False
    media_type = typ.lower()
    if "/" not in media_type:
        media_type = "application/" + media_type
    return media_type == "application/jwt"


def check_claims(
    claims: dict[str, Any],
    policy: TokenPolicy | None = None,
    *,
    check_expiry: bool = True,
    now: float | None = None,
) -> None:
    """Refuse claims of the wrong type and, unless ``check_expiry`` is false, any that break ``policy``."""
    if not isinstance(claims.get("status"), str) or claims["status"] not in STATUSES:
        raise InvalidToken("bad_claims", "status is not succes or failed")
    attributes = claims.get("attributes")
    if attributes is not None and not (
        isinstance(attributes, dict) and all(isinstance(value, str) for value in attributes.values())
    ):
        raise InvalidToken("bad_claims", "attributes is not an object of strings")
    for name in ("session_url", "sub", "iss"):
        if claims.get(name) is not None and not isinstance(claims[name], str):
            raise InvalidToken("bad_claims", f"{name} is not a string")
    audience = _audience(claims)
    exp = _numeric_date(claims, "exp")
    iat = _numeric_date(claims, "iat")
    nbf = _numeric_date(claims, "nbf")
    if exp is None:
        raise InvalidToken("bad_claims", "exp is missing")
    if not check_expiry:
        return
    policy = policy or DEFAULT_POLICY
    now = time.time() if now is None else now
    leeway = policy.leeway
    if now >= exp + leeway:
        raise InvalidToken("expired", "the token has expired")
    if iat is not None and iat > now + leeway:
        raise InvalidToken("not_yet_valid", "the token was issued in the future (iat)")
    if nbf is not None and nbf > now + leeway:
        raise InvalidToken("not_yet_valid", "the token is not valid yet (nbf)")
    if iat is not None and exp - iat > policy.max_lifetime:
        raise InvalidToken("lifetime", f"exp is more than {policy.max_lifetime:g} s after iat")
    if exp - now > policy.max_lifetime + leeway:
        raise InvalidToken("lifetime", f"exp is more than {policy.max_lifetime:g} s ahead")
    if policy.issuer is not None and claims.get("iss") != policy.issuer:
        raise InvalidToken("wrong_issuer", "iss is not the expected issuer")
    if policy.audience is not None and policy.audience not in audience:
        raise InvalidToken("wrong_audience", "aud does not name the expected audience")


def _audience(claims: dict[str, Any]) -> list[str]:
    """``aud`` as a list (RFC 7519 4.1.3: a string or an array of strings), else ``bad_claims``."""
    aud = claims.get("aud")
    if aud is None:
        return []
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list) and all(isinstance(item, str) for item in aud):
        return aud
    raise InvalidToken("bad_claims", "aud is not a string or a list of strings")


def _numeric_date(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    try:
        # float() of a huge int overflows (and JSON allows 4300-digit ints): that too is no date.
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(float(value)):
            raise OverflowError
    except OverflowError:
        raise InvalidToken("bad_claims", f"{name} is not a number of seconds") from None
    return value


# --------------------------------------------------------------------------- minting


def make_auth_result(
    result: AuthResult,
    encryption_key: PublicKey,
    signing_key: PrivateKey,
    *,
    now: float | None = None,
    lifetime: int = 300,
    alg: str | None = None,
    enc: str = jwe.DEFAULT_ENC,
    issuer: str | None = None,
    audience: str | None = None,
) -> str:
    """Sign ``result`` with ``signing_key`` and encrypt it to ``encryption_key``: a compact token.

    Same headers and claims as the ecosystem's producers: JWE ``typ``/``cty``
    ``JWT``, payload ``{"njwt": <JWS>}``, JWS ``typ`` ``JWT``, ``sub``,
    ``iat`` and ``exp`` = ``iat`` + ``lifetime``; ``iss`` and ``aud`` only when
    given.  ``alg`` and ``enc`` as :func:`jwe.encrypt` takes them (default
    ``RSA-OAEP`` or ``ECDH-ES``, and ``A128CBC-HS256``); a bad one is a ``ValueError``.
    """
    claims: dict[str, Any] = {"sub": SUBJECT, "status": result.status}
    if result.attributes is not None:
        claims["attributes"] = dict(result.attributes)
    if result.session_url is not None:
        claims["session_url"] = result.session_url
    if issuer is not None:
        claims["iss"] = issuer
    if audience is not None:
        claims["aud"] = audience
    issued = int(time.time() if now is None else now)
    claims.update({"iat": issued, "exp": issued + lifetime})
    try:
        check_claims(claims, check_expiry=False)
    except InvalidToken:
        raise ValueError("not a valid AuthResult (status, attributes, session_url) or issuer/audience") from None
    jws = jwt.api_jws.encode(
        json.dumps(claims, separators=(",", ":")).encode("utf-8"),
        signing_key.crypto_key,
        algorithm=JWS_ALG_FOR_KIND[signing_key.kind],
        headers={"typ": "JWT"},
        sort_headers=False,
    )
    payload = json.dumps({"njwt": jws}, separators=(",", ":")).encode("utf-8")
    return jwe.encrypt(payload, encryption_key, {"typ": "JWT", "cty": "JWT"}, alg=alg, enc=enc)
