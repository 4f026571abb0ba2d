"""Plain helpers for the token tests: build tokens the way a producer would, or deliberately wrong.

Everything is real crypto.  The key-set fixtures (``rsa_keys``, ``ec_keys``,
``stranger_*_key``) live in ``tests/fixtures/tokens.py``; this module holds
functions only, for test modules to import.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from connect_plugin import jwe, tokens
from connect_plugin.errors import InvalidToken
from connect_plugin.keys import PrivateKey, PublicKey
from tests.support import KeySet

NOW = 1_615_879_800  # the protocol document's example iat

#: Every accepted (key kind, alg, enc) combination.
COMBINATIONS = [
    (kind, alg, enc) for kind, algs in jwe.KEY_MANAGEMENT.items() for alg in algs for enc in jwe.CONTENT_ENCRYPTIONS
]


def combination_id(combination: tuple[str, str, str]) -> str:
    """A readable pytest id: ``RSA-OAEP-256+A256GCM``."""
    return f"{combination[1]}+{combination[2]}"


def claims(**overrides: Any) -> dict[str, Any]:
    """Producer-style claims issued at NOW, valid for five minutes; ``None`` drops a claim."""
    out: dict[str, Any] = {
        "sub": "id-contact-attributes",
        "status": "succes",
        "attributes": {"email": "jane@example.com"},
        "iat": NOW,
        "exp": NOW + 300,
    }
    out.update(overrides)
    return {k: v for k, v in out.items() if v is not None}


def sign_jws(header: dict[str, Any], payload: bytes, key: PrivateKey) -> str:
    """A compact JWS with exactly ``header``, signed RS256 or ES256 by ``key`` (whatever the header says)."""
    signing_input = jwe.b64url_encode(json.dumps(header).encode()) + "." + jwe.b64url_encode(payload)
    if key.kind == "RSA":
        signature = key.crypto_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    else:
        r, s = decode_dss_signature(key.crypto_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return signing_input + "." + jwe.b64url_encode(signature)


def jws_for(keys: KeySet, claim_set: dict[str, Any] | None = None, **header: Any) -> str:
    """A producer's JWS over ``claim_set`` (default :func:`claims`), extra header members allowed."""
    alg = "RS256" if keys.sign.kind == "RSA" else "ES256"
    body = json.dumps(claims() if claim_set is None else claim_set).encode()
    return sign_jws({"typ": "JWT", "alg": alg, **header}, body, keys.sign)


def seal(payload: Any, key: PublicKey, *, alg: str | None = None, enc: str = jwe.DEFAULT_ENC, **header: Any) -> str:
    """Encrypt a JSON payload (or raw bytes) to ``key`` as a producer-style JWE."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return jwe.encrypt(data, key, {"typ": "JWT", "cty": "JWT", **header}, alg=alg, enc=enc)


def token_for(
    keys: KeySet, claim_set: dict[str, Any] | None = None, *, alg: str | None = None, enc: str = jwe.DEFAULT_ENC
) -> str:
    """A complete, valid-by-construction auth-result token over ``claim_set``."""
    return seal({"njwt": jws_for(keys, claim_set)}, keys.encrypt, alg=alg, enc=enc)


def header_of(compact: str) -> dict[str, Any]:
    """The decoded protected header of a compact JWE or JWS."""
    return json.loads(jwe.b64url_decode(compact.split(".")[0], "header"))


def with_header(token: str, **changes: Any) -> str:
    """``token`` with its protected header changed (``None`` removes a member); the tag then no longer fits."""
    segments = token.split(".")
    header = header_of(token)
    header.update(changes)
    header = {k: v for k, v in header.items() if v is not None}
    segments[0] = jwe.b64url_encode(json.dumps(header).encode())
    return ".".join(segments)


def flip_bit(token: str, segment: int, byte: int, bit: int = 0) -> str:
    """``token`` with one bit flipped in the decoded bytes of one segment (negative ``byte`` from the end)."""
    segments = token.split(".")
    raw = bytearray(jwe.b64url_decode(segments[segment], "segment"))
    raw[byte] ^= 1 << bit
    segments[segment] = jwe.b64url_encode(bytes(raw))
    return ".".join(segments)


def assert_clean_refusal(error: InvalidToken, reason: str, token: str | bytes) -> None:
    """The refusal has ``reason`` (one of the closed set), and nothing in it quotes the token or a segment of it."""
    assert error.reason == reason, (error.reason, error.detail)
    assert error.reason in tokens.REFUSAL_REASONS
    text = f"{error.detail} {error} {error!r} {error.body()}"
    token_text = token.decode("ascii", "replace") if isinstance(token, bytes) else token
    for part in [token_text, *token_text.replace(".", " ").split()]:
        if len(part) >= 8:
            assert part not in text
    assert error.status == 400
    assert error.__cause__ is None
