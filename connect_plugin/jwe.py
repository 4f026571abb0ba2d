"""Compact JWE (RFC 7516), limited to what the ID Contact ecosystem uses.

Key management is decided by the recipient key's kind, never by the token:

- ``RSA`` keys: ``RSA-OAEP`` (RFC 7518 4.3: OAEP with SHA-1 and MGF1-SHA-1);
- ``EC`` (P-256) keys: ``ECDH-ES`` direct key agreement (RFC 7518 4.6), with
  the Concat KDF over ``enc``, ``apu`` and ``apv``.

Content encryption is ``A128CBC-HS256`` only (RFC 7518 5.2.3).  Everything
else (``zip``, ``crit``, other ``alg`` or ``enc`` values) is refused.  Every
refusal is an :class:`~connect_plugin.errors.InvalidToken` whose detail never
quotes the token.  A wrong key, a flipped bit or a bad tag all read as the same
"cannot decrypt", so that the answer is no oracle for the key or the padding.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import struct
from collections.abc import Mapping
from hashlib import sha256
from typing import Any

from Crypto.Cipher import AES, PKCS1_OAEP
from Crypto.Hash import SHA1
from Crypto.Protocol.DH import key_agreement
from Crypto.PublicKey import ECC
from Crypto.Random import get_random_bytes
from Crypto.Util.Padding import pad, unpad

from .errors import InvalidToken
from .keys import PrivateKey, PublicKey

ENC = "A128CBC-HS256"
ALG_FOR_KIND = {"RSA": "RSA-OAEP", "EC": "ECDH-ES"}
CEK_BYTES = 32  # A128CBC-HS256: 16 bytes of HMAC key, then 16 of AES key
IV_BYTES = 16
TAG_BYTES = 16

# P-256 (FIPS 186-4 D.1.2.3): y^2 = x^3 - 3x + b over GF(p).
P256_P = 2**256 - 2**224 + 2**192 + 2**96 - 1
P256_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B

_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_REFUSED_ALGS = {
    "none": "unencrypted tokens (alg none) are refused",
    "RSA1_5": "RSA1_5 key encryption is refused (padding-oracle prone)",
    "dir": "direct use of a shared key (alg dir) is refused",
}


# --------------------------------------------------------------------------- encoding


def b64url_encode(data: bytes) -> str:
    """Base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str, what: str) -> bytes:
    """Strict base64url: no padding, no stray characters, no non-canonical trailing bits.

    ``what`` names the part for the refusal's detail.
    """
    if not isinstance(text, str) or not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise InvalidToken("malformed", f"the {what} is not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("malformed", f"the {what} is not base64url") from None
    if b64url_encode(data) != text:
        raise InvalidToken("malformed", f"the {what} is not canonical base64url")
    return data


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate member")
    return out


def _no_constants(_name: str) -> Any:
    raise ValueError("NaN and Infinity are not JSON")


def json_object(data: bytes, what: str) -> dict[str, Any]:
    """Parse strict JSON (UTF-8, no duplicate members, no NaN/Infinity) that must be an object."""
    try:
        value = json.loads(
            data.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constants
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidToken("malformed", f"the {what} is not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidToken("malformed", f"the {what} is not a JSON object")
    return value


def split_compact(token: str, parts: int, what: str) -> list[str]:
    """The dot-separated segments of a compact serialization; exactly ``parts`` of them."""
    segments = token.split(".")
    if len(segments) != parts:
        raise InvalidToken("malformed", f"the {what} does not have {parts} dot-separated segments")
    return segments


# --------------------------------------------------------------------------- primitives


def concat_kdf(z: bytes, algorithm_id: str, key_bits: int, apu: bytes = b"", apv: bytes = b"") -> bytes:
    """The Concat KDF of NIST SP 800-56A with SHA-256, with OtherInfo as RFC 7518 4.6.2 lays it out."""

    def prefixed(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + data

    other_info = prefixed(algorithm_id.encode("ascii")) + prefixed(apu) + prefixed(apv) + struct.pack(">I", key_bits)
    out = b""
    counter = 1
    while len(out) * 8 < key_bits:
        out += sha256(struct.pack(">I", counter) + z + other_info).digest()
        counter += 1
    return out[: key_bits // 8]


def _cbc_hs256_tag(mac_key: bytes, aad: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    al = struct.pack(">Q", len(aad) * 8)
    return hmac.new(mac_key, aad + iv + ciphertext + al, sha256).digest()[:TAG_BYTES]


def cbc_hs256_encrypt(cek: bytes, iv: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """AES_128_CBC_HMAC_SHA_256 (RFC 7518 5.2.2.1): ``(ciphertext, tag)``."""
    if len(cek) != CEK_BYTES or len(iv) != IV_BYTES:
        raise ValueError("A128CBC-HS256 needs a 32-byte key and a 16-byte IV")
    ciphertext = AES.new(cek[16:], AES.MODE_CBC, iv=iv).encrypt(pad(plaintext, 16))
    return ciphertext, _cbc_hs256_tag(cek[:16], aad, iv, ciphertext)


def cbc_hs256_decrypt(cek: bytes, iv: bytes, ciphertext: bytes, aad: bytes, tag: bytes) -> bytes:
    """AES_128_CBC_HMAC_SHA_256 (RFC 7518 5.2.2.2): the tag is checked, in constant time, first."""
    expected = _cbc_hs256_tag(cek[:16], aad, iv, ciphertext)
    if not hmac.compare_digest(expected, tag):
        raise InvalidToken("cannot_decrypt", "the token cannot be decrypted with the configured key")
    try:
        return unpad(AES.new(cek[16:], AES.MODE_CBC, iv=iv).decrypt(ciphertext), 16)
    except ValueError:
        # Only a producer that authenticated garbage gets here: the tag was good.
        raise InvalidToken("cannot_decrypt", "the token cannot be decrypted with the configured key") from None


def ecdh_es_key(
    private: Any, public: Any, apu: bytes = b"", apv: bytes = b"", *, enc: str = ENC, key_bits: int = 256
) -> bytes:
    """The ECDH-ES direct-agreement content key: the Concat KDF over the shared secret Z.

    The recipient passes its static private key and the sender's ``epk``; the
    sender its ephemeral private key and the recipient's public key.
    """
    z = key_agreement(static_priv=private, static_pub=public, kdf=lambda secret: secret)
    return concat_kdf(z, enc, key_bits, apu, apv)


def _oaep(key: Any) -> Any:
    return PKCS1_OAEP.new(key, hashAlgo=SHA1)


# --------------------------------------------------------------------------- the epk


def epk_from_jwk(jwk: Any) -> Any:
    """A validated P-256 public key from an ``epk`` header member, else ``malformed``.

    Validates the JWK form (``kty`` EC, ``crv`` P-256, 32-byte ``x`` and ``y``,
    no private part) and that the point lies on P-256 (invalid-curve attacks).
    """
    if not isinstance(jwk, dict):
        raise InvalidToken("malformed", "the epk header is not a JWK object")
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise InvalidToken("unsupported", "the epk header is not an EC P-256 key")
    if "d" in jwk:
        raise InvalidToken("malformed", "the epk header carries a private key")
    coords = []
    for name in ("x", "y"):
        raw = b64url_decode(jwk.get(name), f"epk {name} coordinate")
        if len(raw) != 32:
            raise InvalidToken("malformed", f"the epk {name} coordinate is not 32 bytes")
        coords.append(int.from_bytes(raw, "big"))
    x, y = coords
    if not (x < P256_P and y < P256_P and (y * y - (x * x * x - 3 * x + P256_B)) % P256_P == 0):
        raise InvalidToken("malformed", "the epk header is not a point on P-256")
    try:
        return ECC.construct(curve="P-256", point_x=x, point_y=y)
    except ValueError:
        raise InvalidToken("malformed", "the epk header is not a point on P-256") from None


def epk_to_jwk(key: Any) -> dict[str, str]:
    """The public JWK of a P-256 key, for an ``epk`` header member."""
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64url_encode(int(key.pointQ.x).to_bytes(32, "big")),
        "y": b64url_encode(int(key.pointQ.y).to_bytes(32, "big")),
    }


# --------------------------------------------------------------------------- JWE


def check_header(header: Mapping[str, Any], kind: str) -> None:
    """Refuse any header that asks for more than this module does for a ``kind`` key."""
    alg = header.get("alg")
    expected = ALG_FOR_KIND[kind]
    if alg != expected:
        if isinstance(alg, str) and alg in _REFUSED_ALGS:
            raise InvalidToken("unsupported", _REFUSED_ALGS[alg])
        raise InvalidToken("unsupported", f"the key management algorithm is not {expected}, the one for the {kind} key")
    if header.get("enc") != ENC:
        raise InvalidToken("unsupported", f"the content encryption is not {ENC}")
    if "zip" in header:
        raise InvalidToken("unsupported", "compressed tokens (zip) are refused")
    if "crit" in header:
        raise InvalidToken("unsupported", "critical header extensions (crit) are not understood")


def decrypt(token: str, key: PrivateKey) -> tuple[dict[str, Any], bytes]:
    """Decrypt a compact JWE for ``key``: ``(protected header, plaintext)``, or InvalidToken."""
    header_b64, ek_b64, iv_b64, ct_b64, tag_b64 = split_compact(token, 5, "JWE")
    header = json_object(b64url_decode(header_b64, "JWE header"), "JWE header")
    check_header(header, key.kind)
    encrypted_key = b64url_decode(ek_b64, "JWE encrypted key")
    iv = b64url_decode(iv_b64, "JWE IV")
    ciphertext = b64url_decode(ct_b64, "JWE ciphertext")
    tag = b64url_decode(tag_b64, "JWE authentication tag")
    if len(iv) != IV_BYTES:
        raise InvalidToken("malformed", "the JWE IV is not 16 bytes")
    if len(tag) != TAG_BYTES:
        raise InvalidToken("malformed", "the JWE authentication tag is not 16 bytes")
    if not ciphertext or len(ciphertext) % 16:
        raise InvalidToken("malformed", "the JWE ciphertext is not a whole number of AES blocks")

    if key.kind == "RSA":
        cek = _unwrap_rsa_oaep(key, encrypted_key)
    else:
        if encrypted_key:
            raise InvalidToken("malformed", "an ECDH-ES token must have an empty encrypted key")
        epk = epk_from_jwk(header.get("epk"))
        apu = b64url_decode(header["apu"], "apu header") if "apu" in header else b""
        apv = b64url_decode(header["apv"], "apv header") if "apv" in header else b""
        try:
            cek = ecdh_es_key(key.key, epk, apu, apv)
        except ValueError:  # a shared point at infinity; cannot happen on a validated P-256 point
            cek = get_random_bytes(CEK_BYTES)
    return header, cbc_hs256_decrypt(cek, iv, ciphertext, header_b64.encode("ascii"), tag)


def _unwrap_rsa_oaep(key: PrivateKey, encrypted_key: bytes) -> bytes:
    # RFC 7516 section 11.5: on a failed unwrap go on with a random key, so that
    # every failure ends at the tag check, in the same time and with one answer.
    try:
        cek = _oaep(key.key).decrypt(encrypted_key)
    except (ValueError, TypeError):
        cek = b""
    return cek if len(cek) == CEK_BYTES else get_random_bytes(CEK_BYTES)


def encrypt(
    plaintext: bytes,
    key: PublicKey,
    header: Mapping[str, Any] | None = None,
    *,
    apu: bytes | None = None,
    apv: bytes | None = None,
) -> str:
    """Encrypt ``plaintext`` to ``key`` as a compact JWE.

    ``header`` holds extra protected members (``typ``, ``cty``) placed before
    ``enc`` and ``alg``; ``apu``/``apv`` apply to EC keys only.
    """
    protected: dict[str, Any] = dict(header or {})
    protected.update({"enc": ENC, "alg": ALG_FOR_KIND[key.kind]})
    if key.kind == "RSA":
        cek = get_random_bytes(CEK_BYTES)
        encrypted_key = _oaep(key.key).encrypt(cek)
    else:
        ephemeral = ECC.generate(curve="P-256")
        protected["epk"] = epk_to_jwk(ephemeral.public_key())
        if apu is not None:
            protected["apu"] = b64url_encode(apu)
        if apv is not None:
            protected["apv"] = b64url_encode(apv)
        cek = ecdh_es_key(ephemeral, key.key, apu or b"", apv or b"")
        encrypted_key = b""
    header_b64 = b64url_encode(json.dumps(protected, separators=(",", ":")).encode("utf-8"))
    iv = get_random_bytes(IV_BYTES)
    ciphertext, tag = cbc_hs256_encrypt(cek, iv, plaintext, header_b64.encode("ascii"))
    return ".".join([header_b64] + [b64url_encode(part) for part in (encrypted_key, iv, ciphertext, tag)])
