"""Cross-checks with an independent JOSE implementation (jwcrypto, test-only).

For every accepted combination of key management and content encryption,
tokens jwcrypto makes are read by ours and tokens ours makes are read by
jwcrypto.  Both sides use the keys' PEM, as a deployment would.
"""

from __future__ import annotations

import json
import time

import pytest
from jwcrypto import jwe as jc_jwe
from jwcrypto import jwk as jc_jwk
from jwcrypto import jws as jc_jws

from connect_plugin import jwe, tokens
from connect_plugin.keys import PrivateKey, PublicKey
from connect_plugin.model import AuthResult
from tests.support import KeySet
from tests.token_support import COMBINATIONS, claims, combination_id, flip_bit, token_for


def jc_key(key: PrivateKey | PublicKey) -> jc_jwk.JWK:
    """jwcrypto's view of one of our keys, through PEM."""
    return jc_jwk.JWK.from_pem(key.pem.encode())


def jc_token(keys: KeySet, claim_set: dict, *, alg: str | None = None, enc: str = jwe.DEFAULT_ENC,
             jwe_header: dict | None = None) -> str:
    """An auth-result token made entirely by jwcrypto, with the producers' headers."""
    sign_alg = "RS256" if keys.sign.kind == "RSA" else "ES256"
    signer = jc_jws.JWS(json.dumps(claim_set).encode())
    signer.add_signature(jc_key(keys.sign), None, json.dumps({"typ": "JWT", "alg": sign_alg}))
    njwt = signer.serialize(compact=True)
    alg = alg or jwe.KEY_MANAGEMENT[keys.decrypt.kind][0]
    header = {"typ": "JWT", "cty": "JWT", "enc": enc, "alg": alg, **(jwe_header or {})}
    encrypter = jc_jwe.JWE(json.dumps({"njwt": njwt}).encode(), json.dumps(header), algs=[alg, enc])
    encrypter.add_recipient(jc_key(keys.encrypt))
    return encrypter.serialize(compact=True)


def jc_read(token: str, keys: KeySet) -> tuple[dict, dict, dict]:
    """jwcrypto decrypts and verifies one of our tokens: (JWE header, JWS header, claims)."""
    decrypter = jc_jwe.JWE()
    decrypter.deserialize(token, key=jc_key(keys.decrypt))
    njwt = json.loads(decrypter.payload)["njwt"]
    verifier = jc_jws.JWS()
    verifier.deserialize(njwt)
    verifier.verify(jc_key(keys.verify))
    return decrypter.jose_header, verifier.jose_header, json.loads(verifier.payload)


@pytest.fixture(params=["rsa", "ec", "rsa-encrypted-ec-signed", "ec-encrypted-rsa-signed"])
def keys(request: pytest.FixtureRequest, rsa_keys: KeySet, ec_keys: KeySet) -> KeySet:
    """Each combination of key kinds for the two layers."""
    return {
        "rsa": rsa_keys,
        "ec": ec_keys,
        "rsa-encrypted-ec-signed": KeySet(rsa_keys.decrypt, ec_keys.sign),
        "ec-encrypted-rsa-signed": KeySet(ec_keys.decrypt, rsa_keys.sign),
    }[request.param]


def keys_for(kind: str, rsa_keys: KeySet, ec_keys: KeySet) -> KeySet:
    """Decrypt with ``kind``, sign with the other kind: both layers' kinds vary across the combinations."""
    return KeySet(rsa_keys.decrypt, ec_keys.sign) if kind == "RSA" else KeySet(ec_keys.decrypt, rsa_keys.sign)


# --------------------------------------------------------------------------- every alg and enc, both ways


@pytest.mark.parametrize("combination", COMBINATIONS, ids=combination_id)
def test_jwcrypto_token_in_every_accepted_combination_is_read_by_ours(
    rsa_keys: KeySet, ec_keys: KeySet, combination: tuple[str, str, str]
) -> None:
    kind, alg, enc = combination
    keys = keys_for(kind, rsa_keys, ec_keys)
    token = jc_token(keys, claims(session_url="https://auth.example.nl/s/1"), alg=alg, enc=enc)
    header = json.loads(jwe.b64url_decode(token.split(".")[0], "header"))
    assert (header["alg"], header["enc"]) == (alg, enc)
    verified = tokens.read_verified(token, keys.decrypt, keys.verify, tokens.TokenPolicy(), now=claims()["iat"])
    assert verified.result == AuthResult("succes", {"email": "jane@example.com"}, "https://auth.example.nl/s/1")


@pytest.mark.parametrize("combination", COMBINATIONS, ids=combination_id)
def test_our_token_in_every_accepted_combination_is_read_by_jwcrypto(
    rsa_keys: KeySet, ec_keys: KeySet, combination: tuple[str, str, str]
) -> None:
    kind, alg, enc = combination
    keys = keys_for(kind, rsa_keys, ec_keys)
    result = AuthResult("succes", {"email": "jane@example.com", "fullname": "Zoë Doe"}, "https://x.example/s")
    token = tokens.make_auth_result(result, keys.encrypt, keys.sign, alg=alg, enc=enc)
    jwe_header, _jws_header, claim_set = jc_read(token, keys)
    assert (jwe_header["alg"], jwe_header["enc"]) == (alg, enc)
    assert claim_set["attributes"] == {"email": "jane@example.com", "fullname": "Zoë Doe"}


@pytest.mark.parametrize("enc", list(jwe.CONTENT_ENCRYPTIONS))
def test_jwcrypto_ecdh_es_with_apu_and_apv_is_read_by_ours_for_every_enc(ec_keys: KeySet, enc: str) -> None:
    # The Concat KDF's keydatalen follows enc (128 to 512 bits): a wrong length on either side fails the tag.
    token = jc_token(ec_keys, claims(), enc=enc, jwe_header={"apu": "QWxpY2U", "apv": "Qm9i"})
    result = tokens.read_auth_result(token, ec_keys.decrypt, ec_keys.verify, now=claims()["iat"])
    assert result.attributes == {"email": "jane@example.com"}


@pytest.mark.parametrize("enc", list(jwe.CONTENT_ENCRYPTIONS))
def test_our_ecdh_es_with_apu_and_apv_is_read_by_jwcrypto_for_every_enc(ec_keys: KeySet, enc: str) -> None:
    token = jwe.encrypt(b'{"njwt":"x"}', ec_keys.encrypt, {"typ": "JWT"}, enc=enc, apu=b"Alice", apv=b"Bob")
    decrypter = jc_jwe.JWE()
    decrypter.deserialize(token, key=jc_key(ec_keys.decrypt))
    assert decrypter.payload == b'{"njwt":"x"}'
    assert (decrypter.jose_header["apu"], decrypter.jose_header["apv"]) == ("QWxpY2U", "Qm9i")


# --------------------------------------------------------------------------- the producers' default, all key kinds


def test_jwcrypto_token_is_read_by_ours(keys: KeySet) -> None:
    claim_set = claims(session_url="https://auth.example.nl/session/42")
    token = jc_token(keys, claim_set)
    result = tokens.read_auth_result(token, keys.decrypt, keys.verify, now=claim_set["iat"] + 10)
    assert result == AuthResult("succes", {"email": "jane@example.com"}, "https://auth.example.nl/session/42")


def test_jwcrypto_failed_result_without_attributes_is_read_by_ours(keys: KeySet) -> None:
    claim_set = claims(status="failed", attributes=None, sub="verder-helpen-attributes")
    token = jc_token(keys, claim_set)
    result = tokens.read_auth_result(token, keys.decrypt, keys.verify, now=claim_set["iat"])
    assert result == AuthResult("failed", None, None)


def test_our_token_is_read_by_jwcrypto(keys: KeySet) -> None:
    result = AuthResult("succes", {"email": "jane@example.com", "fullname": "Jane Doe"}, "https://x.example/s")
    before = int(time.time())
    token = tokens.make_auth_result(result, keys.encrypt, keys.sign)
    jwe_header, jws_header, claim_set = jc_read(token, keys)
    assert jwe_header["enc"] == "A128CBC-HS256"
    assert jwe_header["alg"] == ("RSA-OAEP" if keys.decrypt.kind == "RSA" else "ECDH-ES")
    assert (jwe_header["typ"], jwe_header["cty"]) == ("JWT", "JWT")
    assert jws_header == {"typ": "JWT", "alg": "RS256" if keys.sign.kind == "RSA" else "ES256"}
    assert claim_set["status"] == "succes"
    assert claim_set["attributes"] == {"email": "jane@example.com", "fullname": "Jane Doe"}
    assert claim_set["session_url"] == "https://x.example/s"
    assert claim_set["sub"] == "id-contact-attributes"
    assert claim_set["iat"] >= before
    assert claim_set["exp"] == claim_set["iat"] + 300


@pytest.mark.parametrize("enc", ["A128CBC-HS256", "A256GCM"])
def test_jwcrypto_refuses_our_token_under_a_flipped_ciphertext_bit_too(rsa_keys: KeySet, enc: str) -> None:
    # Sanity of the cross-check itself: jwcrypto is really checking our tag.
    token = flip_bit(token_for(rsa_keys, enc=enc, alg="RSA-OAEP-256"), 3, 0)
    with pytest.raises(jc_jwe.InvalidJWEData):
        jc_read(token, rsa_keys)
