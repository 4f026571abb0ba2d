"""The published test vectors, reproduced bit for bit.

RFC 7516 Appendix B: A128CBC-HS256 of a known plaintext with a known key and IV.
RFC 7518 Appendix C: ECDH-ES key agreement and Concat KDF output.
The data below is typed from the RFCs (JSON array notation, as printed there).
"""

from __future__ import annotations

import hmac
from hashlib import sha256

import pytest
from Crypto.PublicKey import ECC

from connect_plugin import jwe
from connect_plugin.errors import InvalidToken

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
    ciphertext, tag = jwe.cbc_hs256_encrypt(B1_KEY, B4_IV, B2_PLAINTEXT, B3_AAD)
    assert ciphertext == B2_CIPHERTEXT
    assert tag == B7_TAG
    assert tag == B6_HMAC[:16]


def test_rfc7516_b_decryption_recovers_plaintext() -> None:
    assert jwe.cbc_hs256_decrypt(B1_KEY, B4_IV, B2_CIPHERTEXT, B3_AAD, B7_TAG) == B2_PLAINTEXT


@pytest.mark.parametrize("part", ["key", "iv", "ciphertext", "aad", "tag"])
def test_rfc7516_b_any_flipped_bit_fails_the_tag_check(part: str) -> None:
    values = {"key": B1_KEY, "iv": B4_IV, "ciphertext": B2_CIPHERTEXT, "aad": B3_AAD, "tag": B7_TAG}
    flipped = bytearray(values[part])
    flipped[-1] ^= 0x01
    values[part] = bytes(flipped)
    with pytest.raises(InvalidToken) as caught:
        jwe.cbc_hs256_decrypt(values["key"], values["iv"], values["ciphertext"], values["aad"], values["tag"])
    assert caught.value.reason == "cannot_decrypt"


def test_rfc7516_b_a_flip_in_the_aes_key_half_decrypts_nothing_but_passes_the_tag() -> None:
    # The tag covers the MAC key only; a wrong AES key decrypts to garbage whose
    # padding almost surely fails, and is then the same uniform refusal.
    wrong = B1_KEY[:16] + bytes(16)
    with pytest.raises(InvalidToken) as caught:
        jwe.cbc_hs256_decrypt(wrong, B4_IV, B2_CIPHERTEXT, B3_AAD, B7_TAG)
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
    derived = jwe.ecdh_es_key(_private(BOB, BOB_D), epk, apu, apv, enc="A128GCM", key_bits=128)
    assert derived == C_DERIVED


def test_rfc7518_c_sender_side_agreement_gives_the_same_key() -> None:
    bob_public = jwe.epk_from_jwk(BOB)
    derived = jwe.ecdh_es_key(_private(ALICE_EPK, ALICE_D), bob_public, b"Alice", b"Bob", enc="A128GCM", key_bits=128)
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
    # Our tokens need 256 bits (one round); a longer key continues with counter 2.
    other_info = C_ALGORITHM_ID + C_PARTY_U + C_PARTY_V + (384).to_bytes(4, "big")
    rounds = [sha256(bytes([0, 0, 0, n]) + C_Z + other_info).digest() for n in (1, 2)]
    assert jwe.concat_kdf(C_Z, "A128GCM", 384, b"Alice", b"Bob") == (rounds[0] + rounds[1])[:48]


def test_p256_constants_match_the_curve_pycryptodome_uses() -> None:
    curve = ECC._curves["P-256"]
    assert int(curve.p) == jwe.P256_P
    assert int(curve.b) == jwe.P256_B
