"""The published test vectors, reproduced bit for bit.

RFC 7516 Appendix B: A128CBC-HS256 of a known plaintext with a known key and IV.
RFC 7518 Appendix B: AES_128/192/256_CBC_HMAC_SHA_256/384/512 test cases.
RFC 7518 Appendix C: ECDH-ES key agreement and Concat KDF output.
RFC 7516 Appendix A and RFC 7520 section 5: complete published tokens with their
keys (``tests/data/jose-vectors.json``): those we accept decrypt to the published
plaintext, the others are refused.  The data is typed from the RFCs, as printed there.
"""

from __future__ import annotations

import hmac
import json
from hashlib import sha256
from pathlib import Path

import pytest
from Crypto.PublicKey import ECC, RSA

from connect_plugin import jwe
from connect_plugin.errors import InvalidToken
from connect_plugin.keys import PrivateKey, load_private_key

PUBLISHED = json.loads((Path(__file__).parent / "data" / "jose-vectors.json").read_text())

# --------------------------------------------------------------------------- RFC 7516 Appendix B

B1_KEY = bytes([
    4, 211, 31, 197, 84, 157, 252, 254, 11, 100, 157, 250, 63, 170, 106, 206,
    107, 124, 212, 45, 111, 107, 9, 219, 200, 177, 0, 240, 143, 156, 44, 207,
])
B2_PLAINTEXT = bytes([
    76, 105, 118, 101, 32, 108, 111, 110, 103, 32, 97, 110, 100, 32, 112, 114, 111, 115, 112, 101, 114, 46,
])
B2_CIPHERTEXT = bytes([
    40, 57, 83, 181, 119, 33, 133, 148, 198, 185, 243, 24, 152, 230, 6, 75,
    129, 223, 127, 19, 210, 82, 183, 230, 168, 33, 215, 104, 143, 112, 56, 102,
])
B3_AAD = bytes([
    101, 121, 74, 104, 98, 71, 99, 105, 79, 105, 74, 66, 77, 84, 73, 52, 83, 49, 99, 105, 76, 67, 74, 108, 98, 109,
    77, 105, 79, 105, 74, 66, 77, 84, 73, 52, 81, 48, 74, 68, 76, 85, 104, 84, 77, 106, 85, 50, 73, 110, 48,
])
B3_AL = bytes([0, 0, 0, 0, 0, 0, 1, 152])
B4_IV = bytes([3, 22, 60, 12, 43, 67, 104, 105, 108, 108, 105, 99, 111, 116, 104, 101])
B6_HMAC = bytes([
    83, 73, 191, 98, 104, 205, 211, 128, 201, 189, 199, 133, 32, 38, 194, 85,
    9, 84, 229, 201, 219, 135, 44, 252, 145, 102, 179, 140, 105, 86, 229, 116,
])
B7_TAG = bytes([83, 73, 191, 98, 104, 205, 211, 128, 201, 189, 199, 133, 32, 38, 194, 85])


def test_rfc7516_b_vector_data_is_self_consistent() -> None:
    # Guards the typing of the vectors: the AAD is the ASCII of A.3's header, and
    # B.6 is the HMAC of B.5's concatenation under B.1's MAC key.
    assert B2_PLAINTEXT == b"Live long and prosper."
    assert B3_AAD == b"eyJhbGciOiJBMTI4S1ciLCJlbmMiOiJBMTI4Q0JDLUhTMjU2In0"
    assert int.from_bytes(B3_AL, "big") == len(B3_AAD) * 8
    assert hmac.new(B1_KEY[:16], B3_AAD + B4_IV + B2_CIPHERTEXT + B3_AL, sha256).digest() == B6_HMAC


def test_rfc7516_b_encryption_reproduces_ciphertext_and_tag() -> None:
    ciphertext, tag = jwe.encrypt_content("A128CBC-HS256", B1_KEY, B4_IV, B2_PLAINTEXT, B3_AAD)
    assert ciphertext == B2_CIPHERTEXT
    assert tag == B7_TAG
    assert tag == B6_HMAC[:16]


def test_rfc7516_b_decryption_recovers_plaintext() -> None:
    assert jwe.decrypt_content("A128CBC-HS256", B1_KEY, B4_IV, B2_CIPHERTEXT, B3_AAD, B7_TAG) == B2_PLAINTEXT


@pytest.mark.parametrize("part", ["key", "iv", "ciphertext", "aad", "tag"])
def test_rfc7516_b_any_flipped_bit_fails_the_tag_check(part: str) -> None:
    values = {"key": B1_KEY, "iv": B4_IV, "ciphertext": B2_CIPHERTEXT, "aad": B3_AAD, "tag": B7_TAG}
    flipped = bytearray(values[part])
    flipped[-1] ^= 0x01
    values[part] = bytes(flipped)
    with pytest.raises(InvalidToken) as caught:
        jwe.decrypt_content("A128CBC-HS256", values["key"], values["iv"], values["ciphertext"], values["aad"],
                            values["tag"])
    assert caught.value.reason == "cannot_decrypt"


def test_rfc7516_b_a_flip_in_the_aes_key_half_decrypts_nothing_but_passes_the_tag() -> None:
    # The tag covers the MAC key only; a wrong AES key decrypts to garbage whose
    # padding almost surely fails, and is then the same uniform refusal.
    wrong = B1_KEY[:16] + bytes(16)
    with pytest.raises(InvalidToken) as caught:
        jwe.decrypt_content("A128CBC-HS256", wrong, B4_IV, B2_CIPHERTEXT, B3_AAD, B7_TAG)
    assert caught.value.reason == "cannot_decrypt"


# --------------------------------------------------------------------------- RFC 7518 Appendix B

# B.1-B.3 share P, IV and A; K, E and T differ.  Hex as printed in the RFC.
RFC7518_B_P = bytes.fromhex("""
    41 20 63 69 70 68 65 72 20 73 79 73 74 65 6d 20 6d 75 73 74 20 6e 6f 74 20 62 65 20 72 65 71 75
    69 72 65 64 20 74 6f 20 62 65 20 73 65 63 72 65 74 2c 20 61 6e 64 20 69 74 20 6d 75 73 74 20 62
    65 20 61 62 6c 65 20 74 6f 20 66 61 6c 6c 20 69 6e 74 6f 20 74 68 65 20 68 61 6e 64 73 20 6f 66
    20 74 68 65 20 65 6e 65 6d 79 20 77 69 74 68 6f 75 74 20 69 6e 63 6f 6e 76 65 6e 69 65 6e 63 65
""")
RFC7518_B_IV = bytes.fromhex("1a f3 8c 2d c2 b9 6f fd d8 66 94 09 23 41 bc 04")
RFC7518_B_A = bytes.fromhex("""
    54 68 65 20 73 65 63 6f 6e 64 20 70 72 69 6e 63 69 70 6c 65 20 6f 66 20 41 75 67 75 73 74 65 20
    4b 65 72 63 6b 68 6f 66 66 73
""")
RFC7518_B = {  # enc: (E, T); K is 00 01 02 ... of the enc's key length
    "A128CBC-HS256": ("""
        c8 0e df a3 2d df 39 d5 ef 00 c0 b4 68 83 42 79 a2 e4 6a 1b 80 49 f7 92 f7 6b fe 54 b9 03 a9 c9
        a9 4a c9 b4 7a d2 65 5c 5f 10 f9 ae f7 14 27 e2 fc 6f 9b 3f 39 9a 22 14 89 f1 63 62 c7 03 23 36
        09 d4 5a c6 98 64 e3 32 1c f8 29 35 ac 40 96 c8 6e 13 33 14 c5 40 19 e8 ca 79 80 df a4 b9 cf 1b
        38 4c 48 6f 3a 54 c5 10 78 15 8e e5 d7 9d e5 9f bd 34 d8 48 b3 d6 95 50 a6 76 46 34 44 27 ad e5
        4b 88 51 ff b5 98 f7 f8 00 74 b9 47 3c 82 e2 db
    """, "65 2c 3f a3 6b 0a 7c 5b 32 19 fa b3 a3 0b c1 c4"),
    "A192CBC-HS384": ("""
        ea 65 da 6b 59 e6 1e db 41 9b e6 2d 19 71 2a e5 d3 03 ee b5 00 52 d0 df d6 69 7f 77 22 4c 8e db
        00 0d 27 9b dc 14 c1 07 26 54 bd 30 94 42 30 c6 57 be d4 ca 0c 9f 4a 84 66 f2 2b 22 6d 17 46 21
        4b f8 cf c2 40 0a dd 9f 51 26 e4 79 66 3f c9 0b 3b ed 78 7a 2f 0f fc bf 39 04 be 2a 64 1d 5c 21
        05 bf e5 91 ba e2 3b 1d 74 49 e5 32 ee f6 0a 9a c8 bb 6c 6b 01 d3 5d 49 78 7b cd 57 ef 48 49 27
        f2 80 ad c9 1a c0 c4 e7 9c 7b 11 ef c6 00 54 e3
    """, "84 90 ac 0e 58 94 9b fe 51 87 5d 73 3f 93 ac 20 75 16 80 39 cc c7 33 d7"),
    "A256CBC-HS512": ("""
        4a ff aa ad b7 8c 31 c5 da 4b 1b 59 0d 10 ff bd 3d d8 d5 d3 02 42 35 26 91 2d a0 37 ec bc c7 bd
        82 2c 30 1d d6 7c 37 3b cc b5 84 ad 3e 92 79 c2 e6 d1 2a 13 74 b7 7f 07 75 53 df 82 94 10 44 6b
        36 eb d9 70 66 29 6a e6 42 7e a7 5c 2e 08 46 a1 1a 09 cc f5 37 0d c8 0b fe cb ad 28 c7 3f 09 b3
        a3 b7 5e 66 2a 25 94 41 0a e4 96 b2 e2 e6 60 9e 31 e6 e0 2c c8 37 f0 53 d2 1f 37 ff 4f 51 95 0b
        be 26 38 d0 9d d7 a4 93 09 30 80 6d 07 03 b1 f6
    """, "4d d3 b4 c0 88 a7 f4 5c 21 68 39 64 5b 20 12 bf 2e 62 69 a8 c5 6a 81 6d bc 1b 26 77 61 95 5b c5"),
}


def rfc7518_b_case(enc: str) -> tuple[bytes, bytes, bytes]:
    """(K, E, T) of the test case for ``enc``."""
    e_hex, t_hex = RFC7518_B[enc]
    return bytes(range(jwe.CONTENT_ENCRYPTIONS[enc].key_bytes)), bytes.fromhex(e_hex), bytes.fromhex(t_hex)


def test_rfc7518_b_shared_inputs_are_the_printed_text() -> None:
    assert RFC7518_B_P.startswith(b"A cipher system must not be required to be secret")
    assert RFC7518_B_A == b"The second principle of Auguste Kerckhoffs"


@pytest.mark.parametrize("enc", list(RFC7518_B))
def test_rfc7518_b_encryption_reproduces_e_and_t(enc: str) -> None:
    key, expected_e, expected_t = rfc7518_b_case(enc)
    assert jwe.encrypt_content(enc, key, RFC7518_B_IV, RFC7518_B_P, RFC7518_B_A) == (expected_e, expected_t)


@pytest.mark.parametrize("enc", list(RFC7518_B))
def test_rfc7518_b_decryption_recovers_p(enc: str) -> None:
    key, ciphertext, tag = rfc7518_b_case(enc)
    assert jwe.decrypt_content(enc, key, RFC7518_B_IV, ciphertext, RFC7518_B_A, tag) == RFC7518_B_P


@pytest.mark.parametrize("enc", list(RFC7518_B))
@pytest.mark.parametrize("part", ["mac-key", "iv", "ciphertext", "aad", "tag"])
def test_rfc7518_b_any_flipped_bit_fails_the_tag_check(enc: str, part: str) -> None:
    key, ciphertext, tag = rfc7518_b_case(enc)
    values = {"mac-key": key, "iv": RFC7518_B_IV, "ciphertext": ciphertext, "aad": RFC7518_B_A, "tag": tag}
    flipped = bytearray(values[part])
    flipped[0] ^= 0x80
    values[part] = bytes(flipped)
    with pytest.raises(InvalidToken) as caught:
        jwe.decrypt_content(enc, values["mac-key"], values["iv"], values["ciphertext"], values["aad"], values["tag"])
    assert caught.value.reason == "cannot_decrypt"


# --------------------------------------------------------------------------- RFC 7518 Appendix C

ALICE_EPK = {  # the sender's ephemeral key (its private part is only for checking the sender side)
    "kty": "EC",
    "crv": "P-256",
    "x": "gI0GAILBdu7T53akrFmMyGcsF3n5dO7MmwNBHKW5SV0",
    "y": "SLW_xSffzlPWrHEVI30DHM_4egVwt3NQqeUD7nMFpps",
}
ALICE_D = "0_NxaRPUMQoAJt50Gz8YiTr8gRTwyEaCumd-MToTmIo"
BOB = {
    "kty": "EC",
    "crv": "P-256",
    "x": "weNJy2HscCSM6AEDTDg04biOvhFhyyWvOHQfeF_PxMQ",
    "y": "e8lnCO-AlStT-NJVX-crhB7QRYhiix03illJOVAOyck",
}
BOB_D = "VEmDZpDXXK8p8N0Cndsxs924q6nS1RXFASRl6BfUqdw"
C_HEADER = {"alg": "ECDH-ES", "enc": "A128GCM", "apu": "QWxpY2U", "apv": "Qm9i", "epk": ALICE_EPK}
C_Z = bytes([
    158, 86, 217, 29, 129, 113, 53, 211, 114, 131, 66, 131, 191, 132, 38, 156,
    251, 49, 110, 163, 218, 128, 106, 72, 246, 218, 167, 121, 140, 254, 144, 196,
])
C_DERIVED = bytes([86, 170, 141, 234, 248, 35, 109, 32, 92, 34, 40, 205, 113, 167, 16, 26])
C_DERIVED_B64 = "VqqN6vgjbSBcIijNcacQGg"


def _private(jwk: dict[str, str], d: str) -> ECC.EccKey:
    return ECC.construct(curve="P-256", d=int.from_bytes(jwe.b64url_decode(d, "d"), "big"),
                         point_x=int.from_bytes(jwe.b64url_decode(jwk["x"], "x"), "big"),
                         point_y=int.from_bytes(jwe.b64url_decode(jwk["y"], "y"), "big"))


def test_rfc7518_c_header_values_decode_as_printed() -> None:
    assert jwe.b64url_decode(C_HEADER["apu"], "apu") == b"Alice"
    assert jwe.b64url_decode(C_HEADER["apv"], "apv") == b"Bob"
    assert jwe.b64url_encode(C_DERIVED) == C_DERIVED_B64


def test_rfc7518_c_concat_kdf_reproduces_the_derived_key() -> None:
    assert jwe.concat_kdf(C_Z, "A128GCM", 128, b"Alice", b"Bob") == C_DERIVED


def test_rfc7518_c_recipient_side_agreement_from_the_epk_header() -> None:
    epk = jwe.epk_from_jwk(C_HEADER["epk"])
    apu = jwe.b64url_decode(C_HEADER["apu"], "apu")
    apv = jwe.b64url_decode(C_HEADER["apv"], "apv")
    derived = jwe.ecdh_es_key(_private(BOB, BOB_D), epk, apu, apv, enc="A128GCM")
    assert derived == C_DERIVED


def test_rfc7518_c_sender_side_agreement_gives_the_same_key() -> None:
    bob_public = jwe.epk_from_jwk(BOB)
    derived = jwe.ecdh_es_key(_private(ALICE_EPK, ALICE_D), bob_public, b"Alice", b"Bob", enc="A128GCM")
    assert derived == C_DERIVED


def test_rfc7518_c_epk_round_trips_through_our_jwk_form() -> None:
    assert jwe.epk_to_jwk(jwe.epk_from_jwk(ALICE_EPK)) == ALICE_EPK


# OtherInfo as RFC 7518 C prints its parts: AlgorithmID, PartyUInfo, PartyVInfo, SuppPubInfo.
C_ALGORITHM_ID = bytes([0, 0, 0, 7, 65, 49, 50, 56, 71, 67, 77])
C_PARTY_U = bytes([0, 0, 0, 5, 65, 108, 105, 99, 101])
C_PARTY_V = bytes([0, 0, 0, 3, 66, 111, 98])
C_SUPP_PUB = bytes([0, 0, 0, 128])


def test_rfc7518_c_derived_key_is_round_one_over_the_printed_other_info() -> None:
    other_info = C_ALGORITHM_ID + C_PARTY_U + C_PARTY_V + C_SUPP_PUB
    assert sha256(bytes([0, 0, 0, 1]) + C_Z + other_info).digest()[:16] == C_DERIVED


def test_concat_kdf_longer_output_chains_rounds_one_and_two() -> None:
    # A256CBC-HS512 needs 512 bits: the Concat KDF continues with counter 2 past 256.
    other_info = C_ALGORITHM_ID + C_PARTY_U + C_PARTY_V + (384).to_bytes(4, "big")
    rounds = [sha256(bytes([0, 0, 0, n]) + C_Z + other_info).digest() for n in (1, 2)]
    assert jwe.concat_kdf(C_Z, "A128GCM", 384, b"Alice", b"Bob") == (rounds[0] + rounds[1])[:48]


def test_p256_constants_match_the_curve_pycryptodome_uses() -> None:
    curve = ECC._curves["P-256"]
    assert int(curve.p) == jwe.P256_P
    assert int(curve.b) == jwe.P256_B


# --------------------------------------------------------------------------- published tokens


def private_key(jwk: dict[str, str]) -> PrivateKey:
    """A published private JWK as the plugin would hold it: exported to PEM, then loaded as configuration is."""
    number = {name: int.from_bytes(jwe.b64url_decode(value, name), "big") for name, value in jwk.items()
              if name not in ("kty", "crv")}
    if jwk["kty"] == "RSA":
        key = RSA.construct((number["n"], number["e"], number["d"], number["p"], number["q"]))
        return load_private_key("RSA", key.export_key(format="PEM", pkcs=8).decode())
    key = ECC.construct(curve="P-256", d=number["d"], point_x=number["x"], point_y=number["y"])
    return load_private_key("EC", key.export_key(format="PEM", use_pkcs8=True))


@pytest.mark.parametrize(
    ("name", "plaintext"),
    [("rfc7516_a1", PUBLISHED["rfc7516_a1"]["plaintext"]), ("rfc7520_5_2", PUBLISHED["rfc7520_plaintext"]),
     ("rfc7520_5_5", PUBLISHED["rfc7520_plaintext"])],
)
def test_published_token_decrypts_with_the_published_key(name: str, plaintext: str) -> None:
    vector = PUBLISHED[name]
    header, decrypted = jwe.decrypt(vector["token"], private_key(vector["key"]))
    assert (header["alg"], header["enc"]) == (vector["alg"], vector["enc"])
    assert decrypted == plaintext.encode()


def test_rfc7516_a1_gcm_with_the_published_cek_reproduces_ciphertext_and_tag() -> None:
    vector = PUBLISHED["rfc7516_a1"]
    header_b64, _, iv, ciphertext, tag = vector["token"].split(".")
    cek = jwe.b64url_decode(vector["cek"], "cek")
    produced = jwe.encrypt_content("A256GCM", cek, jwe.b64url_decode(iv, "iv"), vector["plaintext"].encode(),
                                   header_b64.encode())
    assert produced == (jwe.b64url_decode(ciphertext, "ciphertext"), jwe.b64url_decode(tag, "tag"))


@pytest.mark.parametrize(
    ("name", "key_name"),
    [("rfc7516_a2", "rfc7516_a2"), ("rfc7516_a3", "rfc7516_a1"), ("rfc7520_5_1", "rfc7520_5_1"),
     ("rfc7520_5_3", "rfc7520_5_2"), ("rfc7520_5_4", "rfc7520_5_5"), ("rfc7520_5_6", "rfc7520_5_5")],
    ids=["7516-A.2-RSA1_5", "7516-A.3-A128KW", "7520-5.1-RSA1_5", "7520-5.3-PBES2", "7520-5.4-ECDH-ES+A128KW",
         "7520-5.6-dir"],
)
def test_published_token_of_a_refused_algorithm_is_refused(name: str, key_name: str) -> None:
    # Each with a key of the kind it would need (or the nearest we configure): refused by its alg alone.
    with pytest.raises(InvalidToken) as caught:
        jwe.decrypt(PUBLISHED[name]["token"], private_key(PUBLISHED[key_name]["key"]))
    assert caught.value.reason == "unsupported"
