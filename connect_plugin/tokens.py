"""The auth-result token: a compact JWE (``jwe``, pycryptodome) around a compact JWS (PyJWT).

Reading: decrypt with the plugin's decryption key, take the JWS from the
payload ``{"njwt": ...}``, verify it with the authentication plugins'
signature key, check the claims.  The configured keys' kinds alone decide
the algorithms (RSA: ``RSA-OAEP`` and ``RS256``; EC P-256: ``ECDH-ES`` and
``ES256``).  Every refusal is an :class:`~connect_plugin.errors.InvalidToken`
whose detail names the kind of failure and never quotes the token.

Minting is the inverse, with the headers the ecosystem's producers send; the
``connect-plugin token`` command and the tests use it.  See ``docs/tokens.md``.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import jwt

from . import jwe
from .errors import InvalidToken
from .keys import PrivateKey, PublicKey
from .model import STATUS_FAILED, STATUS_SUCCESS, AuthResult

MAX_TOKEN_BYTES = 64 * 1024
JWS_ALG_FOR_KIND = {"RSA": "RS256", "EC": "ES256"}
_JWS_ALGORITHMS = {kind: jwt.get_algorithm_by_name(alg) for kind, alg in JWS_ALG_FOR_KIND.items()}
SUBJECT = "id-contact-attributes"
STATUSES = (STATUS_SUCCESS, STATUS_FAILED)
_WHITESPACE = " \t\r\n"


# --------------------------------------------------------------------------- reading


def read_auth_result(
    token: str | bytes,
    decryption_key: PrivateKey,
    signature_key: PublicKey,
    *,
    check_expiry: bool = True,
    leeway: float = 60,
    now: float | None = None,
) -> AuthResult:
    """Decrypt, verify and check an auth-result token; the result it carries, or InvalidToken.

    ``check_expiry=False`` skips the time checks (``exp``, ``iat``, ``nbf``): for
    re-reading a stored result that was checked when it arrived.
    """
    claims = read_claims(
        token, decryption_key, signature_key, check_expiry=check_expiry, leeway=leeway, now=now
    )
    return AuthResult(
        status=claims["status"],
        attributes=dict(claims["attributes"]) if claims.get("attributes") is not None else None,
        session_url=claims.get("session_url"),
    )


def read_claims(
    token: str | bytes,
    decryption_key: PrivateKey,
    signature_key: PublicKey,
    *,
    check_expiry: bool = True,
    leeway: float = 60,
    now: float | None = None,
) -> dict[str, Any]:
    """Like :func:`read_auth_result`, but every claim of the JWS (for ``token --decode``)."""
    text = _as_text(token)
    _header, plaintext = jwe.decrypt(text, decryption_key)
    payload = jwe.json_object(plaintext, "JWE payload")
    njwt = payload.get("njwt")
    if not isinstance(njwt, str):
        raise InvalidToken("malformed", "the JWE payload has no string njwt member")
    claims = _verify_jws(njwt, signature_key)
    check_claims(claims, check_expiry=check_expiry, leeway=leeway, now=now)
    return claims


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


def _verify_jws(njwt: str, key: PublicKey) -> dict[str, Any]:
    header_b64, payload_b64, signature_b64 = jwe.split_compact(njwt, 3, "JWS")
    header = jwe.json_object(jwe.b64url_decode(header_b64, "JWS header"), "JWS header")
    _check_jws_header(header, key.kind)
    payload = jwe.b64url_decode(payload_b64, "JWS payload")
    signature = jwe.b64url_decode(signature_b64, "JWS signature")
    # PyJWT's algorithm object for the key's kind, the one algorithm we accept,
    # checks the signature over the signing input exactly as sent (RFC 7515 5.2).
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    try:
        valid = _JWS_ALGORITHMS[key.kind].verify(signing_input, key.crypto_key, signature)
    except (jwt.PyJWTError, ValueError, TypeError):
        valid = False
    if not valid:
        raise InvalidToken("bad_signature", "the signature does not verify with the configured key")
    return jwe.json_object(payload, "JWS claims")


def _check_jws_header(header: dict[str, Any], kind: str) -> None:
    alg = header.get("alg")
    expected = JWS_ALG_FOR_KIND[kind]
    if alg == expected:
        if "crit" in header or "b64" in header:
            raise InvalidToken("unsupported", "JWS header extensions (crit, b64) are not understood")
        return
    if alg == "none":
        raise InvalidToken("unsupported", "unsigned tokens (alg none) are refused")
    if isinstance(alg, str) and alg.startswith("HS"):
        raise InvalidToken("unsupported", "HMAC-signed tokens are refused")
    raise InvalidToken("unsupported", f"the signature algorithm is not {expected}, the one for the {kind} key")


def check_claims(
    claims: dict[str, Any], *, check_expiry: bool = True, leeway: float = 60, now: float | None = None
) -> None:
    """Refuse claims of the wrong type, and (unless ``check_expiry`` is false) outside their time."""
    if not isinstance(claims.get("status"), str) or claims["status"] not in STATUSES:
        raise InvalidToken("bad_claims", "status is not succes or failed")
    attributes = claims.get("attributes")
    if attributes is not None and not (
        isinstance(attributes, dict) and all(isinstance(value, str) for value in attributes.values())
    ):
        raise InvalidToken("bad_claims", "attributes is not an object of strings")
    for name in ("session_url", "sub"):
        if claims.get(name) is not None and not isinstance(claims[name], str):
            raise InvalidToken("bad_claims", f"{name} is not a string")
    exp = _numeric_date(claims, "exp")
    iat = _numeric_date(claims, "iat")
    nbf = _numeric_date(claims, "nbf")
    if exp is None:
        raise InvalidToken("bad_claims", "exp is missing")
    if not check_expiry:
        return
    now = time.time() if now is None else now
    if now >= exp + leeway:
        raise InvalidToken("expired", "the token has expired")
    if iat is not None and iat > now + leeway:
        raise InvalidToken("bad_claims", "the token was issued in the future (iat)")
    if nbf is not None and nbf > now + leeway:
        raise InvalidToken("bad_claims", "the token is not valid yet (nbf)")


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
) -> str:
    """Sign ``result`` with ``signing_key`` and encrypt it to ``encryption_key``: a compact token.

    Same headers and claims as the ecosystem's producers: JWE ``typ``/``cty``
    ``JWT``, payload ``{"njwt": <JWS>}``, JWS ``typ`` ``JWT``, ``sub``,
    ``iat`` and ``exp`` = ``iat`` + ``lifetime``.
    """
    claims: dict[str, Any] = {"sub": SUBJECT, "status": result.status}
    if result.attributes is not None:
        claims["attributes"] = dict(result.attributes)
    if result.session_url is not None:
        claims["session_url"] = result.session_url
    issued = int(time.time() if now is None else now)
    claims.update({"iat": issued, "exp": issued + lifetime})
    try:
        check_claims(claims, check_expiry=False)
    except InvalidToken:
        raise ValueError("not a valid AuthResult: status, attributes or session_url of the wrong type") from None
    jws = jwt.api_jws.encode(
        json.dumps(claims, separators=(",", ":")).encode("utf-8"),
        signing_key.crypto_key,
        algorithm=JWS_ALG_FOR_KIND[signing_key.kind],
        headers={"typ": "JWT"},
        sort_headers=False,
    )
    payload = json.dumps({"njwt": jws}, separators=(",", ":")).encode("utf-8")
    return jwe.encrypt(payload, encryption_key, {"typ": "JWT", "cty": "JWT"})
