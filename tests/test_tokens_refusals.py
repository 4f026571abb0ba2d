"""Every refusal issue 3 lists, one test each (some parametrized over variants).

Each asserts the InvalidToken reason, and that neither the detail nor the
message quotes the token (``assert_clean_refusal``).  Tokens are built with
real crypto: by our own minting, by jwcrypto, or by hand where a producer
would never go.
"""

from __future__ import annotations

import base64
import hmac
import json

import pytest
from jwcrypto import jwe as jc_jwe
from jwcrypto import jwk as jc_jwk

from connect_plugin import jwe, tokens
from connect_plugin.errors import InvalidToken
from connect_plugin.keys import PrivateKey
from connect_plugin.model import AuthResult
from tests.support import KeySet
from tests.token_support import (
    NOW,
    assert_clean_refusal,
    claims,
    flip_bit,
    jws_for,
    seal,
    sign_jws,
    token_for,
    with_header,
)

CANNOT_DECRYPT = "cannot_decrypt"
B64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def refuse(token: str | bytes, keys: KeySet, reason: str, **options: object) -> InvalidToken:
    """Read ``token`` with ``keys`` at NOW; assert a clean refusal for ``reason``."""
    with pytest.raises(InvalidToken) as caught:
        tokens.read_auth_result(token, keys.decrypt, keys.verify, now=NOW + 10, **options)
    assert_clean_refusal(caught.value, reason, token)
    return caught.value


def jc_encrypt(payload: bytes, keys: KeySet, **header: str) -> str:
    """A JWE made by jwcrypto with exactly the given alg/enc/zip, whatever we think of them."""
    protected = {"typ": "JWT", "cty": "JWT", **header}
    token = jc_jwe.JWE(payload, json.dumps(protected), algs=[protected["alg"], protected["enc"]])
    token.add_recipient(jc_jwk.JWK.from_pem(keys.encrypt.pem.encode()))
    return token.serialize(compact=True)


def njwt_payload(keys: KeySet) -> bytes:
    return json.dumps({"njwt": jws_for(keys)}).encode()


# --------------------------------------------------------------------------- algorithms


@pytest.mark.parametrize("alg", ["none", "dir", "A128KW", "PBES2-HS256+A128KW"])
def test_jwe_alg_without_public_key_crypto_is_refused(rsa_keys: KeySet, alg: str) -> None:
    refuse(with_header(token_for(rsa_keys), alg=alg), rsa_keys, "unsupported")


def test_jwe_alg_missing_is_refused(rsa_keys: KeySet) -> None:
    refuse(with_header(token_for(rsa_keys), alg=None), rsa_keys, "unsupported")


def test_rsa1_5_is_refused(rsa_keys: KeySet) -> None:
    refuse(jc_encrypt(njwt_payload(rsa_keys), rsa_keys, alg="RSA1_5", enc="A128CBC-HS256"), rsa_keys, "unsupported")


def test_rsa_oaep_256_is_refused_for_an_rsa_key(rsa_keys: KeySet) -> None:
    token = jc_encrypt(njwt_payload(rsa_keys), rsa_keys, alg="RSA-OAEP-256", enc="A128CBC-HS256")
    refuse(token, rsa_keys, "unsupported")


def test_ecdh_es_token_is_refused_by_an_rsa_configured_plugin(rsa_keys: KeySet, ec_keys: KeySet) -> None:
    token = token_for(KeySet(ec_keys.decrypt, rsa_keys.sign))
    refuse(token, rsa_keys, "unsupported")


def test_rsa_oaep_token_is_refused_by_an_ec_configured_plugin(rsa_keys: KeySet, ec_keys: KeySet) -> None:
    token = token_for(KeySet(rsa_keys.decrypt, ec_keys.sign))
    refuse(token, ec_keys, "unsupported")


def test_ecdh_es_with_key_wrap_is_refused(ec_keys: KeySet) -> None:
    token = jc_encrypt(njwt_payload(ec_keys), ec_keys, alg="ECDH-ES+A128KW", enc="A128CBC-HS256")
    refuse(token, ec_keys, "unsupported")


@pytest.mark.parametrize("enc", ["A128GCM", "A256GCM", "A256CBC-HS512", "A192CBC-HS384"])
def test_other_content_encryption_is_refused(rsa_keys: KeySet, enc: str) -> None:
    refuse(jc_encrypt(njwt_payload(rsa_keys), rsa_keys, alg="RSA-OAEP", enc=enc), rsa_keys, "unsupported")


def test_compressed_token_is_refused(rsa_keys: KeySet) -> None:
    token = jc_encrypt(njwt_payload(rsa_keys), rsa_keys, alg="RSA-OAEP", enc="A128CBC-HS256", zip="DEF")
    refuse(token, rsa_keys, "unsupported")


def test_unknown_critical_jwe_header_is_refused(rsa_keys: KeySet) -> None:
    # Validly encrypted: only the crit member is wrong.
    token = seal({"njwt": jws_for(rsa_keys)}, rsa_keys.encrypt, crit=["x-policy"], **{"x-policy": "strict"})
    refuse(token, rsa_keys, "unsupported")


def test_jws_alg_none_is_refused(rsa_keys: KeySet) -> None:
    header = jwe.b64url_encode(b'{"typ":"JWT","alg":"none"}')
    unsigned = header + "." + jwe.b64url_encode(json.dumps(claims()).encode()) + "."
    refuse(seal({"njwt": unsigned}, rsa_keys.encrypt), rsa_keys, "unsupported")


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_jws_hmac_keyed_with_the_public_key_is_refused(rsa_keys: KeySet, alg: str) -> None:
    # The classic confusion attack: an HMAC whose secret is the verifier's public PEM.
    digest = {"HS256": "sha256", "HS384": "sha384", "HS512": "sha512"}[alg]
    signing_input = (jwe.b64url_encode(json.dumps({"typ": "JWT", "alg": alg}).encode()) + "."
                     + jwe.b64url_encode(json.dumps(claims()).encode()))
    mac = hmac.new(rsa_keys.verify.pem.encode(), signing_input.encode(), digest).digest()
    refuse(seal({"njwt": signing_input + "." + jwe.b64url_encode(mac)}, rsa_keys.encrypt), rsa_keys, "unsupported")


def test_es256_jws_is_refused_by_an_rsa_configured_plugin(rsa_keys: KeySet, ec_keys: KeySet) -> None:
    njwt = jws_for(ec_keys)
    refuse(seal({"njwt": njwt}, rsa_keys.encrypt), rsa_keys, "unsupported")


def test_rs256_jws_is_refused_by_an_ec_configured_plugin(rsa_keys: KeySet, ec_keys: KeySet) -> None:
    njwt = jws_for(rsa_keys)
    refuse(seal({"njwt": njwt}, ec_keys.encrypt), ec_keys, "unsupported")


@pytest.mark.parametrize("alg", ["PS256", "RS512", "ES384", "EdDSA"])
def test_other_rsa_family_or_curve_jws_alg_is_refused(rsa_keys: KeySet, alg: str) -> None:
    njwt = sign_jws({"typ": "JWT", "alg": alg}, json.dumps(claims()).encode(), rsa_keys.sign)
    refuse(seal({"njwt": njwt}, rsa_keys.encrypt), rsa_keys, "unsupported")


@pytest.mark.parametrize("extension", [{"crit": ["exp"]}, {"b64": False, "crit": ["b64"]}])
def test_jws_header_extensions_are_refused(rsa_keys: KeySet, extension: dict) -> None:
    njwt = jws_for(rsa_keys, None, **extension)
    refuse(seal({"njwt": njwt}, rsa_keys.encrypt), rsa_keys, "unsupported")


# --------------------------------------------------------------------------- flipped bits, wrong keys

SEGMENTS = {1: "encrypted key", 2: "IV", 3: "ciphertext", 4: "tag"}


@pytest.mark.parametrize("segment", list(SEGMENTS), ids=list(SEGMENTS.values()))
@pytest.mark.parametrize("position", [0, 7, -1])
def test_flipped_bit_in_rsa_token_is_refused(rsa_keys: KeySet, segment: int, position: int) -> None:
    refuse(flip_bit(token_for(rsa_keys), segment, position, bit=position % 8), rsa_keys, CANNOT_DECRYPT)


@pytest.mark.parametrize("segment", [2, 3, 4], ids=["IV", "ciphertext", "tag"])
@pytest.mark.parametrize("position", [0, -1])
def test_flipped_bit_in_ec_token_is_refused(ec_keys: KeySet, segment: int, position: int) -> None:
    refuse(flip_bit(token_for(ec_keys), segment, position), ec_keys, CANNOT_DECRYPT)


def test_changed_protected_header_fails_the_tag(rsa_keys: KeySet) -> None:
    refuse(with_header(token_for(rsa_keys), typ="JOSE"), rsa_keys, CANNOT_DECRYPT)


def test_changed_apu_fails_the_tag(ec_keys: KeySet) -> None:
    refuse(with_header(token_for(ec_keys), apu="QWxpY2U"), ec_keys, CANNOT_DECRYPT)


@pytest.mark.parametrize("segment", [1, 2], ids=["payload", "signature"])
def test_flipped_bit_in_the_jws_is_a_bad_signature(rsa_keys: KeySet, segment: int) -> None:
    refuse(seal({"njwt": flip_bit(jws_for(rsa_keys), segment, -1)}, rsa_keys.encrypt), rsa_keys, "bad_signature")


def test_token_for_another_rsa_key_cannot_be_decrypted(rsa_keys: KeySet, stranger_rsa_key: PrivateKey) -> None:
    token = token_for(KeySet(stranger_rsa_key, rsa_keys.sign))
    refuse(token, rsa_keys, CANNOT_DECRYPT)


def test_token_for_another_ec_key_cannot_be_decrypted(ec_keys: KeySet, stranger_ec_key: PrivateKey) -> None:
    refuse(token_for(KeySet(stranger_ec_key, ec_keys.sign)), ec_keys, CANNOT_DECRYPT)


def test_wrong_key_and_bad_tag_give_the_same_answer(rsa_keys: KeySet, stranger_rsa_key: PrivateKey) -> None:
    # No padding oracle: an OAEP failure and a tag failure are indistinguishable to the caller.
    wrong_key = refuse(token_for(KeySet(stranger_rsa_key, rsa_keys.sign)), rsa_keys, CANNOT_DECRYPT)
    bad_tag = refuse(flip_bit(token_for(rsa_keys), 4, 0), rsa_keys, CANNOT_DECRYPT)
    garbage_key = refuse(flip_bit(token_for(rsa_keys), 1, 0), rsa_keys, CANNOT_DECRYPT)
    assert wrong_key.detail == bad_tag.detail == garbage_key.detail


def test_token_signed_by_another_rsa_key_is_refused(rsa_keys: KeySet, stranger_rsa_key: PrivateKey) -> None:
    token = token_for(KeySet(rsa_keys.decrypt, stranger_rsa_key))
    refuse(token, rsa_keys, "bad_signature")


def test_token_signed_by_another_ec_key_is_refused(ec_keys: KeySet, stranger_ec_key: PrivateKey) -> None:
    refuse(token_for(KeySet(ec_keys.decrypt, stranger_ec_key)), ec_keys, "bad_signature")


# --------------------------------------------------------------------------- structure


@pytest.mark.parametrize("change", ["drop-tag", "extra-segment", "four-dots-only", "empty"])
def test_truncated_or_extra_jwe_segments_are_refused(rsa_keys: KeySet, change: str) -> None:
    token = token_for(rsa_keys)
    changed = {
        "drop-tag": token.rsplit(".", 1)[0],
        "extra-segment": token + ".AAAA",
        "four-dots-only": "....",
        "empty": "",
    }[change]
    refuse(changed, rsa_keys, "malformed")


def test_empty_tag_segment_is_refused(rsa_keys: KeySet) -> None:
    refuse(token_for(rsa_keys).rsplit(".", 1)[0] + ".", rsa_keys, "malformed")


def test_truncated_tag_is_refused(rsa_keys: KeySet) -> None:
    token, tag = token_for(rsa_keys).rsplit(".", 1)
    short = jwe.b64url_encode(jwe.b64url_decode(tag, "tag")[:15])
    refuse(token + "." + short, rsa_keys, "malformed")


@pytest.mark.parametrize("change", ["drop-signature", "extra-segment"])
def test_truncated_or_extra_jws_segments_are_refused(rsa_keys: KeySet, change: str) -> None:
    njwt = jws_for(rsa_keys)
    changed = njwt.rsplit(".", 1)[0] if change == "drop-signature" else njwt + ".AAAA"
    refuse(seal({"njwt": changed}, rsa_keys.encrypt), rsa_keys, "malformed")


@pytest.mark.parametrize(
    "payload",
    [b"not json", b'["njwt"]', b"{}", b'{"njwt": 42}', b'{"njwt": null}', b'{"NJWT": "a.b.c"}', b"\xff\xfe"],
    ids=["not-json", "array", "no-njwt", "number", "null", "wrong-case", "not-utf8"],
)
def test_jwe_payload_without_a_string_njwt_is_refused(rsa_keys: KeySet, payload: bytes) -> None:
    refuse(seal(payload, rsa_keys.encrypt), rsa_keys, "malformed")


@pytest.mark.parametrize("text", ["a+b", "ab==", "a b", "a"], ids=["plus", "padding", "space", "impossible-length"])
def test_non_base64url_segment_is_refused(rsa_keys: KeySet, text: str) -> None:
    segments = token_for(rsa_keys).split(".")
    segments[2] = text
    refuse(".".join(segments), rsa_keys, "malformed")


def test_non_canonical_base64url_is_refused(rsa_keys: KeySet) -> None:
    # Changing unused trailing bits leaves the bytes equal: the text must still be refused.
    segments = token_for(rsa_keys).split(".")
    iv = segments[2]  # 16 bytes -> 22 characters, the last carrying 4 unused bits
    segments[2] = iv[:-1] + B64URL_ALPHABET[B64URL_ALPHABET.index(iv[-1]) ^ 1]
    assert base64.urlsafe_b64decode(segments[2] + "==") == base64.urlsafe_b64decode(iv + "==")
    refuse(".".join(segments), rsa_keys, "malformed")


def test_duplicate_header_member_is_refused(rsa_keys: KeySet) -> None:
    segments = token_for(rsa_keys).split(".")
    segments[0] = jwe.b64url_encode(b'{"alg":"RSA-OAEP","enc":"A128CBC-HS256","alg":"none"}')
    refuse(".".join(segments), rsa_keys, "malformed")


def test_deeply_nested_header_is_refused_without_recursion_error(rsa_keys: KeySet) -> None:
    segments = token_for(rsa_keys).split(".")
    segments[0] = jwe.b64url_encode(b'{"x":' + b"[" * 20000 + b"]" * 20000 + b"}")
    refuse(".".join(segments), rsa_keys, "malformed")


@pytest.mark.parametrize("token", ["é.a.b.c.d", b"\xc3\xa9.a.b.c.d"], ids=["str", "bytes"])
def test_non_ascii_token_is_refused(rsa_keys: KeySet, token: str | bytes) -> None:
    refuse(token, rsa_keys, "malformed")


def test_short_iv_is_refused(rsa_keys: KeySet) -> None:
    segments = token_for(rsa_keys).split(".")
    segments[2] = jwe.b64url_encode(bytes(12))
    refuse(".".join(segments), rsa_keys, "malformed")


# --------------------------------------------------------------------------- the ECDH-ES epk

def _epk_token(ec_keys: KeySet, **epk: object) -> str:
    token = token_for(ec_keys)
    header = json.loads(jwe.b64url_decode(token.split(".")[0], "h"))
    return with_header(token, epk={**header["epk"], **epk})


def test_epk_off_the_curve_is_refused(ec_keys: KeySet) -> None:
    # A point on another curve (invalid-curve attack): y + 1 leaves P-256.
    token = token_for(ec_keys)
    epk = json.loads(jwe.b64url_decode(token.split(".")[0], "h"))["epk"]
    y = int.from_bytes(jwe.b64url_decode(epk["y"], "y"), "big")
    refuse(_epk_token(ec_keys, y=jwe.b64url_encode(((y + 1) % jwe.P256_P).to_bytes(32, "big"))), ec_keys, "malformed")


def test_epk_with_coordinates_beyond_the_field_is_refused(ec_keys: KeySet) -> None:
    refuse(_epk_token(ec_keys, x=jwe.b64url_encode(b"\xff" * 32)), ec_keys, "malformed")


def test_epk_carrying_a_private_key_is_refused(ec_keys: KeySet) -> None:
    refuse(_epk_token(ec_keys, d=jwe.b64url_encode(bytes(31) + b"\x01")), ec_keys, "malformed")


@pytest.mark.parametrize("member", [{"crv": "P-384"}, {"crv": "secp256k1"}, {"kty": "OKP"}, {"kty": "RSA"}])
def test_epk_of_another_kind_is_refused(ec_keys: KeySet, member: dict) -> None:
    refuse(_epk_token(ec_keys, **member), ec_keys, "unsupported")


def test_epk_missing_is_refused(ec_keys: KeySet) -> None:
    refuse(with_header(token_for(ec_keys), epk=None), ec_keys, "malformed")


def test_epk_coordinate_of_wrong_length_is_refused(ec_keys: KeySet) -> None:
    refuse(_epk_token(ec_keys, x=jwe.b64url_encode(bytes(31) + b"\x01")), ec_keys, "malformed")


def test_ecdh_es_token_with_an_encrypted_key_is_refused(ec_keys: KeySet) -> None:
    segments = token_for(ec_keys).split(".")
    segments[1] = jwe.b64url_encode(bytes(32))
    refuse(".".join(segments), ec_keys, "malformed")


# --------------------------------------------------------------------------- claims and time


def test_expired_token_is_refused(rsa_keys: KeySet) -> None:
    token = token_for(rsa_keys)
    with pytest.raises(InvalidToken) as caught:
        tokens.read_auth_result(token, rsa_keys.decrypt, rsa_keys.verify, now=NOW + 300 + 60, leeway=60)
    assert_clean_refusal(caught.value, "expired", token)


def test_iat_in_the_future_beyond_leeway_is_refused(rsa_keys: KeySet) -> None:
    refuse(token_for(rsa_keys, claims(iat=NOW + 10 + 61, exp=NOW + 600)), rsa_keys, "bad_claims")


@pytest.mark.parametrize(
    "claim_set",
    [
        claims(status="success"),
        claims(status=None),
        claims(status=1),
        claims(status=["succes"]),
        claims(attributes=["jane@example.com"]),
        claims(attributes={"age": 42}),
        claims(attributes={"email": None}),
        claims(attributes="email=jane@example.com"),
        claims(session_url=42),
        claims(sub=7),
        claims(exp=None),
        claims(exp=str(NOW + 300)),
        claims(exp=True),
        claims(iat="yesterday"),
        claims(nbf=[NOW]),
    ],
    ids=["status-spelling", "status-missing", "status-number", "status-list", "attributes-list",
         "attribute-number", "attribute-null", "attributes-string", "session-url-number", "sub-number",
         "exp-missing", "exp-string", "exp-bool", "iat-string", "nbf-list"],
)
def test_claim_of_the_wrong_type_is_refused(rsa_keys: KeySet, claim_set: dict) -> None:
    refuse(token_for(rsa_keys, claim_set), rsa_keys, "bad_claims")


@pytest.mark.parametrize("literal", [b"Infinity", b"NaN", b"1e400"])
def test_exp_that_never_comes_is_refused(rsa_keys: KeySet, literal: bytes) -> None:
    body = json.dumps(claims(exp=None)).encode()[:-1] + b', "exp": ' + literal + b"}"
    njwt = sign_jws({"typ": "JWT", "alg": "RS256"}, body, rsa_keys.sign)
    refuse(seal({"njwt": njwt}, rsa_keys.encrypt), rsa_keys, "malformed" if literal != b"1e400" else "bad_claims")


@pytest.mark.parametrize("name", ["exp", "iat"])
def test_numeric_date_too_big_for_a_float_is_refused(rsa_keys: KeySet, name: str) -> None:
    refuse(token_for(rsa_keys, claims(**{name: 10**400})), rsa_keys, "bad_claims")


def test_claims_that_are_not_an_object_are_refused(rsa_keys: KeySet) -> None:
    njwt = sign_jws({"typ": "JWT", "alg": "RS256"}, b'["succes"]', rsa_keys.sign)
    refuse(seal({"njwt": njwt}, rsa_keys.encrypt), rsa_keys, "malformed")


# --------------------------------------------------------------------------- size and fuzz


@pytest.mark.parametrize("as_bytes", [False, True], ids=["str", "bytes"])
def test_token_over_64_kib_is_refused_before_decrypting(rsa_keys: KeySet, as_bytes: bool) -> None:
    big = AuthResult("succes", {"note": "x" * 65536})
    token = tokens.make_auth_result(big, rsa_keys.encrypt, rsa_keys.sign, now=NOW)
    assert len(token) > 64 * 1024
    refuse(token.encode() if as_bytes else token, rsa_keys, "too_large")


def test_refusal_renders_as_a_400_bad_request_body(rsa_keys: KeySet) -> None:
    error = refuse(flip_bit(token_for(rsa_keys), 4, 0), rsa_keys, CANNOT_DECRYPT)
    assert error.body() == {"error": "BadRequest", "detail": error.detail}
    assert "cannot be decrypted" in error.body()["detail"]
