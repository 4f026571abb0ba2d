"""Compact JWE (RFC 7516), limited to what the ID Contact ecosystem's producers send.

The recipient key's kind decides the key management family, never the token:

- ``RSA`` keys: ``RSA-OAEP`` (RFC 7518 4.3: OAEP with SHA-1 and MGF1-SHA-1) or
  ``RSA-OAEP-256`` (OAEP with SHA-256 and MGF1-SHA-256);
- ``EC`` (P-256) keys: ``ECDH-ES`` direct key agreement (RFC 7518 4.6), with
  the Concat KDF over ``enc``, ``apu`` and ``apv`` and as many bits as ``enc``
  needs.

Content encryption is one of :data:`CONTENT_ENCRYPTIONS`: ``A128CBC-HS256``,
``A192CBC-HS384``, ``A256CBC-HS512`` (RFC 7518 5.2) or ``A128GCM``,
``A192GCM``, ``A256GCM`` (RFC 7518 5.3).  Everything else (``none``, ``dir``,
``RSA1_5``, key wrapping, ``zip``, ``crit``) is refused.  Every refusal is an
:class:`~connect_plugin.errors.InvalidToken` whose detail never quotes the
token.  A wrong key, a flipped bit or a bad tag all read as the same "cannot
decrypt", so that the answer is no oracle for the key or the padding.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from Crypto.Cipher import AES, PKCS1_OAEP
from Crypto.Hash import SHA1, SHA256
from Crypto.Protocol.DH import key_agreement
from Crypto.PublicKey import ECC
from Crypto.Random import get_random_bytes
from Crypto.Util.Padding import pad, unpad

from .errors import InvalidToken
from .keys import PrivateKey, PublicKey


@dataclass(frozen=True)
class ContentEncryption:
    """One ``enc`` value: its content key, IV and tag sizes, and how it works.

    ``hash`` names the HMAC hash of an AES_CBC_HMAC_SHA2 algorithm (RFC 7518
    5.2: the key's first half is the MAC key, the second the AES key); it is
    ``None`` for AES GCM.
    """

    name: str
    key_bytes: int
    iv_bytes: int
    tag_bytes: int
    hash: str | None = None


#: Every accepted ``enc``, in the order of RFC 7518's table.
CONTENT_ENCRYPTIONS: dict[str, ContentEncryption] = {
    spec.name: spec
    for spec in (
        ContentEncryption("A128CBC-HS256", 32, 16, 16, "sha256"),
        ContentEncryption("A192CBC-HS384", 48, 16, 24, "sha384"),
        ContentEncryption("A256CBC-HS512", 64, 16, 32, "sha512"),
        ContentEncryption("A128GCM", 16, 12, 16),
        ContentEncryption("A192GCM", 24, 12, 16),
        ContentEncryption("A256GCM", 32, 12, 16),
    )
}
#: The ``alg`` values each key kind accepts; the first is what minting uses by default.
KEY_MANAGEMENT: dict[str, tuple[str, ...]] = {"RSA": ("RSA-OAEP", "RSA-OAEP-256"), "EC": ("ECDH-ES",)}
DEFAULT_ENC = "A128CBC-HS256"

# P-256 (FIPS 186-4 D.1.2.3): y^2 = x^3 - 3x + b over GF(p).
P256_P = 2**256 - 2**224 + 2**192 + 2**96 - 1
P256_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B

_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_OAEP_HASH = {"RSA-OAEP": SHA1, "RSA-OAEP-256": SHA256}
_REFUSED_ALGS = {
    "none": "unencrypted tokens (alg none) are refused",
    "RSA1_5": "RSA1_5 key encryption is refused (padding-oracle prone)",
    "dir": "direct use of a shared key (alg dir) is refused",
}
_CANNOT_DECRYPT = "the token cannot be decrypted with the configured key"


# --------------------------------------------------------------------------- encoding


def b64url_encode(data: bytes) -> str:
    """Base64url without padding (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: object, what: str) -> bytes:
    """Strict base64url: no padding, no stray characters, no non-canonical trailing bits.

    ``text`` may be anything a header held: only a string can pass.  ``what``
    names the part for the refusal's detail.
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


# --------------------------------------------------------------------------- content encryption


def content_encryption(enc: str) -> ContentEncryption:
    """The accepted content encryption called ``enc``, else ``ValueError`` (for minting)."""
    spec = CONTENT_ENCRYPTIONS.get(enc)
    if spec is None:
        raise ValueError(f"enc must be one of {', '.join(CONTENT_ENCRYPTIONS)}")
    return spec


def _cbc_hmac_tag(hash_name: str, tag_bytes: int, mac_key: bytes, aad: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    al = struct.pack(">Q", len(aad) * 8)
    return hmac.new(mac_key, aad + iv + ciphertext + al, hash_name).digest()[:tag_bytes]


def encrypt_content(enc: str, cek: bytes, iv: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """Encrypt with ``enc`` (RFC 7518 5.2.2.1 or 5.3): ``(ciphertext, tag)``."""
    spec = content_encryption(enc)
    if len(cek) != spec.key_bytes or len(iv) != spec.iv_bytes:
        raise ValueError(f"{enc} needs a {spec.key_bytes}-byte key and a {spec.iv_bytes}-byte IV")
    if spec.hash is None:
        return AES.new(cek, AES.MODE_GCM, nonce=iv, mac_len=spec.tag_bytes).update(aad).encrypt_and_digest(plaintext)
    half = spec.key_bytes // 2
    ciphertext = AES.new(cek[half:], AES.MODE_CBC, iv=iv).encrypt(pad(plaintext, 16))
    return ciphertext, _cbc_hmac_tag(spec.hash, spec.tag_bytes, cek[:half], aad, iv, ciphertext)


def decrypt_content(enc: str, cek: bytes, iv: bytes, ciphertext: bytes, aad: bytes, tag: bytes) -> bytes:
    """Check the tag and decrypt (RFC 7518 5.2.2.2 or 5.3); any failure is one ``cannot_decrypt``.

    For AES_CBC_HMAC_SHA2 the tag is checked, in constant time, before any
    decryption or unpadding.
    """
    spec = content_encryption(enc)
    if spec.hash is None:
        cipher = AES.new(cek, AES.MODE_GCM, nonce=iv, mac_len=spec.tag_bytes).update(aad)
        try:
            return cipher.decrypt_and_verify(ciphertext, tag)
        except ValueError:
            raise InvalidToken("cannot_decrypt", _CANNOT_DECRYPT) from None
    half = spec.key_bytes // 2
    if not hmac.compare_digest(_cbc_hmac_tag(spec.hash, spec.tag_bytes, cek[:half], aad, iv, ciphertext), tag):
        raise InvalidToken("cannot_decrypt", _CANNOT_DECRYPT)
    try:
        return unpad(AES.new(cek[half:], AES.MODE_CBC, iv=iv).decrypt(ciphertext), 16)
    except ValueError:
        # Only a producer that authenticated garbage gets here: the tag was good.
        raise InvalidToken("cannot_decrypt", _CANNOT_DECRYPT) from None


# --------------------------------------------------------------------------- key management


def concat_kdf(z: bytes, algorithm_id: str, key_bits: int, apu: bytes = b"", apv: bytes = b"") -> bytes:
    """The Concat KDF of NIST SP 800-56A with SHA-256, with OtherInfo as RFC 7518 4.6.2 lays it out."""

    def prefixed(data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + data

    other_info = prefixed(algorithm_id.encode("ascii")) + prefixed(apu) + prefixed(apv) + struct.pack(">I", key_bits)
    out = b""
    counter = 1
    while len(out) * 8 < key_bits:
        out += hashlib.sha256(struct.pack(">I", counter) + z + other_info).digest()
        counter += 1
    return out[: key_bits // 8]


def ecdh_es_key(private: Any, public: Any, apu: bytes = b"", apv: bytes = b"", *, enc: str = DEFAULT_ENC) -> bytes:
    """The ECDH-ES direct-agreement content key for ``enc``: the Concat KDF over the shared secret Z.

    The recipient passes its static private key and the sender's ``epk``; the
    sender its ephemeral private key and the recipient's public key.  The
    KDF's AlgorithmID is ``enc`` and its keydatalen ``enc``'s key size.
    """
    z = key_agreement(static_priv=private, static_pub=public, kdf=lambda secret: secret)
    return concat_kdf(z, enc, content_encryption(enc).key_bytes * 8, apu, apv)


def _oaep(key: Any, alg: str) -> Any:
    # MGF1 uses the same hash as OAEP itself, as both RSA-OAEP variants require.
    return PKCS1_OAEP.new(key, hashAlgo=_OAEP_HASH[alg])


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


def check_header(header: Mapping[str, Any], kind: str) -> tuple[str, ContentEncryption]:
    """Refuse any header that asks for more than this module does for a ``kind`` key.

    Returns the accepted ``alg`` and the ``enc``'s :class:`ContentEncryption`.
    Details name the refused thing by our own words, never by the header's text.
    """
    alg = header.get("alg")
    accepted = KEY_MANAGEMENT[kind]
    if not isinstance(alg, str) or alg not in accepted:
        raise InvalidToken("unsupported", _alg_refusal(alg, kind))
    enc = header.get("enc")
    spec = CONTENT_ENCRYPTIONS.get(enc) if isinstance(enc, str) else None
    if spec is None:
        raise InvalidToken("unsupported", f"the content encryption is not one of {', '.join(CONTENT_ENCRYPTIONS)}")
    if "zip" in header:
        raise InvalidToken("unsupported", "compressed tokens (zip) are refused")
    if "crit" in header:
        raise InvalidToken("unsupported", "critical header extensions (crit) are not understood")
    return alg, spec


def _alg_refusal(alg: Any, kind: str) -> str:
    if not isinstance(alg, str):
        return "the key management algorithm (alg) is missing or not a string"
    if alg in _REFUSED_ALGS:
        return _REFUSED_ALGS[alg]
    if alg.endswith("KW"):
        return "key wrapping (A*KW, A*GCMKW, ECDH-ES+A*KW, PBES2) is refused"
    other = "EC" if kind == "RSA" else "RSA"
    if alg in KEY_MANAGEMENT[other]:
        return f"the key management algorithm is for {other} keys; the configured key is {kind}"
    return f"the key management algorithm is not {' or '.join(KEY_MANAGEMENT[kind])}, those for the {kind} key"


def decrypt(token: str, key: PrivateKey) -> tuple[dict[str, Any], bytes]:
    """Decrypt a compact JWE for ``key``: ``(protected header, plaintext)``, or InvalidToken."""
    header_b64, ek_b64, iv_b64, ct_b64, tag_b64 = split_compact(token, 5, "JWE")
    header = json_object(b64url_decode(header_b64, "JWE header"), "JWE header")
    alg, spec = check_header(header, key.kind)
    encrypted_key = b64url_decode(ek_b64, "JWE encrypted key")
    iv = b64url_decode(iv_b64, "JWE IV")
    ciphertext = b64url_decode(ct_b64, "JWE ciphertext")
    tag = b64url_decode(tag_b64, "JWE authentication tag")
    if len(iv) != spec.iv_bytes:
        raise InvalidToken("malformed", f"the JWE IV is not {spec.iv_bytes} bytes, as its content encryption needs")
    if len(tag) != spec.tag_bytes:
        raise InvalidToken(
            "malformed", f"the JWE authentication tag is not {spec.tag_bytes} bytes, as its content encryption needs"
        )
    if spec.hash is not None and (not ciphertext or len(ciphertext) % 16):
        raise InvalidToken("malformed", "the JWE ciphertext is not a whole number of AES blocks")

    if key.kind == "RSA":
        cek = _unwrap_rsa_oaep(key, alg, encrypted_key, spec.key_bytes)
    else:
        if encrypted_key:
            raise InvalidToken("malformed", "an ECDH-ES token must have an empty encrypted key")
        epk = epk_from_jwk(header.get("epk"))
        apu = b64url_decode(header["apu"], "apu header") if "apu" in header else b""
        apv = b64url_decode(header["apv"], "apv header") if "apv" in header else b""
        try:
            cek = ecdh_es_key(key.key, epk, apu, apv, enc=spec.name)
        except ValueError:  # a shared point at infinity; cannot happen on a validated P-256 point
            cek = get_random_bytes(spec.key_bytes)
    return header, decrypt_content(spec.name, cek, iv, ciphertext, header_b64.encode("ascii"), tag)


def _unwrap_rsa_oaep(key: PrivateKey, alg: str, encrypted_key: bytes, key_bytes: int) -> bytes:
    # RFC 7516 section 11.5: on a failed unwrap go on with a random key, so that
    # every failure ends at the tag check, in the same time and with one answer.
    try:
        cek = _oaep(key.key, alg).decrypt(encrypted_key)
    except (ValueError, TypeError):
        cek = b""
    return cek if len(cek) == key_bytes else get_random_bytes(key_bytes)


def encrypt(
    plaintext: bytes,
    key: PublicKey,
    header: Mapping[str, Any] | None = None,
    *,
    alg: str | None = None,
    enc: str = DEFAULT_ENC,
    apu: bytes | None = None,
    apv: bytes | None = None,
) -> str:
    """Encrypt ``plaintext`` to ``key`` as a compact JWE.

    ``alg`` must be one of those for the key's kind (default: the first,
    ``RSA-OAEP`` or ``ECDH-ES``), ``enc`` one of :data:`CONTENT_ENCRYPTIONS`;
    anything else is a ``ValueError``.  ``header`` holds extra protected
    members (``typ``, ``cty``) placed before ``enc`` and ``alg``; ``apu`` and
    ``apv`` are for EC keys only.
    """
    accepted = KEY_MANAGEMENT[key.kind]
    alg = alg or accepted[0]
    if alg not in accepted:
        raise ValueError(f"alg for an {key.kind} key must be one of {', '.join(accepted)}")
    spec = content_encryption(enc)
    if key.kind == "RSA" and (apu is not None or apv is not None):
        raise ValueError("apu and apv are for ECDH-ES (EC keys) only")
    protected: dict[str, Any] = dict(header or {})
    protected.update({"enc": enc, "alg": alg})
    if key.kind == "RSA":
        cek = get_random_bytes(spec.key_bytes)
        encrypted_key = _oaep(key.key, alg).encrypt(cek)
    else:
        ephemeral = ECC.generate(curve="P-256")
        protected["epk"] = epk_to_jwk(ephemeral.public_key())
        if apu is not None:
            protected["apu"] = b64url_encode(apu)
        if apv is not None:
            protected["apv"] = b64url_encode(apv)
        cek = ecdh_es_key(ephemeral, key.key, apu or b"", apv or b"", enc=enc)
        encrypted_key = b""
    header_b64 = b64url_encode(json.dumps(protected, separators=(",", ":")).encode("utf-8"))
    iv = get_random_bytes(spec.iv_bytes)
    ciphertext, tag = encrypt_content(enc, cek, iv, plaintext, header_b64.encode("ascii"))
    return ".".join([header_b64] + [b64url_encode(part) for part in (encrypted_key, iv, ciphertext, tag)])
