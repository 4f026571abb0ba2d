"""Every refusal, one test each (some parametrized over variants): issue 3's, and issues 10 and 11's.

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
    COMBINATIONS,
    NOW,
    assert_clean_refusal,
    claims,
    combination_id,
    flip_bit,
    header_of,
    jws_for,
    seal,
    sign_jws,
    token_for,
    with_header,
)

CANNOT_DECRYPT = "cannot_decrypt"
B64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def refuse(token: str | bytes, keys: KeySet, reason: str, policy: tokens.TokenPolicy | None = None,
           now: float = NOW + 10) -> InvalidToken:
    """Read ``token`` with ``keys`` at ``now``; assert a clean refusal for ``reason``."""
    with pytest.raises(InvalidToken) as caught:
        tokens.read_verified(token, keys.decrypt, keys.verify, policy or tokens.TokenPolicy(), now=now)
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


@pytest.mark.parametrize("alg", ["none", "dir", "A128KW", "A256GCMKW", "PBES2-HS256+A128KW"])
def test_jwe_alg_without_public_key_crypto_is_refused(rsa_keys: KeySet, alg: str) -> None:
    refuse(with_header(token_for(rsa_keys), alg=alg), rsa_keys, "unsupported")


@pytest.mark.parametrize("alg", [["RSA-OAEP"], {"alg": "RSA-OAEP"}, 1, "rsa-oaep", "RSA-OAEP "])
def test_jwe_alg_that_is_not_exactly_an_accepted_name_is_refused(rsa_keys: KeySet, alg: object) -> None:
    refuse(with_header(token_for(rsa_keys), alg=alg), rsa_keys, "unsupported")


def test_jwe_alg_missing_is_refused(rsa_keys: KeySet) -> None:
    refuse(with_header(token_for(rsa_keys), alg=None), rsa_keys, "unsupported")


def test_rsa1_5_is_refused(rsa_keys: KeySet) -> None:
    refuse(jc_encrypt(njwt_payload(rsa_keys), rsa_keys, alg="RSA1_5", enc="A128CBC-HS256"), rsa_keys, "unsupported")


@pytest.mark.parametrize("alg", ["RSA-OAEP-384", "RSA-OAEP-512"])
def test_rsa_oaep_with_sha_384_or_512_is_refused(rsa_keys: KeySet, alg: str) -> None:
    # Validly encrypted (with SHA-256, so only the name is wrong): jwcrypto makes neither.
    refuse(with_header(token_for(rsa_keys, alg="RSA-OAEP-256"), alg=alg), rsa_keys, "unsupported")


@pytest.mark.parametrize("enc", ["A128CBC-HS256", "A256GCM"])
def test_ecdh_es_token_is_refused_by_an_rsa_configured_plugin(rsa_keys: KeySet, ec_keys: KeySet, enc: str) -> None:
    # The key kind decides the family: a token cannot switch an RSA plugin to key agreement.
    token = token_for(KeySet(ec_keys.decrypt, rsa_keys.sign), enc=enc)
    refuse(token, rsa_keys, "unsupported")


@pytest.mark.parametrize("alg", ["RSA-OAEP", "RSA-OAEP-256"])
def test_rsa_oaep_token_is_refused_by_an_ec_configured_plugin(rsa_keys: KeySet, ec_keys: KeySet, alg: str) -> None:
    token = token_for(KeySet(rsa_keys.decrypt, ec_keys.sign), alg=alg)
    refuse(token, ec_keys, "unsupported")


@pytest.mark.parametrize("alg", ["ECDH-ES+A128KW", "ECDH-ES+A256KW"])
def test_ecdh_es_with_key_wrap_is_refused(ec_keys: KeySet, alg: str) -> None:
    token = jc_encrypt(njwt_payload(ec_keys), ec_keys, alg=alg, enc="A128CBC-HS256")
    refuse(token, ec_keys, "unsupported")


@pytest.mark.parametrize("alg", ["A128KW", "A256GCMKW", "dir"])
def test_symmetric_key_management_by_jwcrypto_is_refused(rsa_keys: KeySet, alg: str) -> None:
    # Real tokens under a shared key derived from nothing we hold: refused by name, before any use of a key.
    token = jc_jwe.JWE(njwt_payload(rsa_keys), json.dumps({"alg": alg, "enc": "A128GCM"}), algs=[alg, "A128GCM"])
    token.add_recipient(jc_jwk.JWK.generate(kty="oct", size={"A128KW": 128, "A256GCMKW": 256, "dir": 128}[alg]))
    refuse(token.serialize(compact=True), rsa_keys, "unsupported")


@pytest.mark.parametrize("enc", ["A128CBC", "A512GCM", "A128CBC-HS512", "XC20P", "a128gcm", "A128GCM ", "", None, 128])
def test_other_content_encryption_is_refused(rsa_keys: KeySet, enc: object) -> None:
    refuse(with_header(token_for(rsa_keys), enc=enc), rsa_keys, "unsupported")




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


def keys_for(kind: str, rsa_keys: KeySet, ec_keys: KeySet) -> KeySet:
    return rsa_keys if kind == "RSA" else ec_keys


@pytest.mark.parametrize("combination", COMBINATIONS, ids=combination_id)
def test_flipped_bit_in_any_accepted_combination_is_refused(
    rsa_keys: KeySet, ec_keys: KeySet, combination: tuple[str, str, str]
) -> None:
    kind, alg, enc = combination
    keys = keys_for(kind, rsa_keys, ec_keys)
    token = token_for(keys, alg=alg, enc=enc)
    assert tokens.read_verified(token, keys.decrypt, keys.verify, tokens.TokenPolicy(), now=NOW).result.status
    for segment in [1, 2, 3, 4] if kind == "RSA" else [2, 3, 4]:  # ECDH-ES has no encrypted key
        for position in (0, -1):
            refuse(flip_bit(token, segment, position, bit=segment), keys, CANNOT_DECRYPT)


@pytest.mark.parametrize("combination", COMBINATIONS, ids=combination_id)
def test_token_for_another_key_cannot_be_decrypted_in_any_combination(
    rsa_keys: KeySet, ec_keys: KeySet, stranger_rsa_key: PrivateKey, stranger_ec_key: PrivateKey,
    combination: tuple[str, str, str],
) -> None:
    kind, alg, enc = combination
    keys = keys_for(kind, rsa_keys, ec_keys)
    stranger = stranger_rsa_key if kind == "RSA" else stranger_ec_key
    refuse(token_for(KeySet(stranger, keys.sign), alg=alg, enc=enc), keys, CANNOT_DECRYPT)


@pytest.mark.parametrize("enc", list(jwe.CONTENT_ENCRYPTIONS))
def test_tag_of_another_length_is_refused(rsa_keys: KeySet, enc: str) -> None:
    # A truncated tag is a weaker tag: only the full length for the enc is accepted.
    spec = jwe.CONTENT_ENCRYPTIONS[enc]
    head, tag = token_for(rsa_keys, enc=enc).rsplit(".", 1)
    raw = jwe.b64url_decode(tag, "tag")
    for changed in (raw[:-1], raw + b"\0", raw[:16] if spec.tag_bytes > 16 else raw[:12]):
        refuse(head + "." + jwe.b64url_encode(changed), rsa_keys, "malformed")


@pytest.mark.parametrize("enc", list(jwe.CONTENT_ENCRYPTIONS))
def test_iv_of_the_other_mode_s_length_is_refused(rsa_keys: KeySet, enc: str) -> None:
    segments = token_for(rsa_keys, enc=enc).split(".")
    segments[2] = jwe.b64url_encode(bytes(16 if jwe.CONTENT_ENCRYPTIONS[enc].hash is None else 12))
    refuse(".".join(segments), rsa_keys, "malformed")


@pytest.mark.parametrize(
    ("alg", "enc"), [("RSA-OAEP", "A256GCM"), ("RSA-OAEP-256", "A128GCM"), ("RSA-OAEP", "A192GCM")]
)
def test_enc_or_alg_swapped_in_the_header_fails_the_tag(rsa_keys: KeySet, alg: str, enc: str) -> None:
    # The header is the AAD, and the content key's length and hash follow it: a token
    # cannot be relabelled to another accepted combination.
    token = token_for(rsa_keys, alg="RSA-OAEP-256", enc="A256GCM")
    refuse(with_header(token, alg=alg, enc=enc), rsa_keys, CANNOT_DECRYPT)


def test_wrong_key_and_bad_tag_give_the_same_answer_for_oaep_256_and_gcm(
    rsa_keys: KeySet, stranger_rsa_key: PrivateKey
) -> None:
    options = {"alg": "RSA-OAEP-256", "enc": "A256GCM"}
    wrong_key = refuse(token_for(KeySet(stranger_rsa_key, rsa_keys.sign), **options), rsa_keys, CANNOT_DECRYPT)
    bad_tag = refuse(flip_bit(token_for(rsa_keys, **options), 4, 0), rsa_keys, CANNOT_DECRYPT)
    garbage_key = refuse(flip_bit(token_for(rsa_keys, **options), 1, 0), rsa_keys, CANNOT_DECRYPT)
    assert wrong_key.detail == bad_tag.detail == garbage_key.detail


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
    return with_header(token, epk={**header_of(token)["epk"], **epk})


def test_epk_off_the_curve_is_refused(ec_keys: KeySet) -> None:
    # A point on another curve (invalid-curve attack): y + 1 leaves P-256.
    token = token_for(ec_keys)
    epk = header_of(token)["epk"]
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
