"""What a valid token yields, the time rules at their edges, what minting produces, and fuzzing.

The fuzz tests hold the module to its promise: whatever comes in, the answer
is an AuthResult of the right shape or an InvalidToken, never another error.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connect_plugin import jwe, tokens
from connect_plugin.errors import InvalidToken
from connect_plugin.model import STATUS_FAILED, STATUS_SUCCESS, AuthResult
from tests.support import KeySet
from tests.token_support import (
    COMBINATIONS,
    NOW,
    assert_clean_refusal,
    claims,
    combination_id,
    header_of,
    jws_for,
    seal,
    token_for,
    with_header,
)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
CLAIM_NAMES = st.sampled_from(
    ["status", "attributes", "session_url", "sub", "exp", "iat", "nbf", "iss", "aud", "other"]
)
CLAIM_REFUSALS = {"bad_claims", "expired", "not_yet_valid", "lifetime"}


def read(token: str | bytes, keys: KeySet, *, leeway: float = 60, now: float = NOW, **options: object) -> AuthResult:
    policy = tokens.TokenPolicy(leeway=leeway)
    return tokens.read_auth_result(token, keys.decrypt, keys.verify, policy, now=now, **options)


def outcome(token: str | bytes, keys: KeySet) -> AuthResult | InvalidToken:
    """What reading ``token`` at NOW gives: the result, or the refusal."""
    try:
        return read(token, keys)
    except InvalidToken as error:
        return error


# --------------------------------------------------------------------------- what is read


def test_success_with_attributes_is_read(rsa_keys: KeySet) -> None:
    assert read(token_for(rsa_keys), rsa_keys) == AuthResult(STATUS_SUCCESS, {"email": "jane@example.com"}, None)


def test_failed_result_has_no_attributes(ec_keys: KeySet) -> None:
    assert read(token_for(ec_keys, claims(status="failed", attributes=None)), ec_keys) == AuthResult(STATUS_FAILED)


def test_session_url_is_carried(rsa_keys: KeySet) -> None:
    token = token_for(rsa_keys, claims(session_url="http://auth.internal/session/abc"))
    assert read(token, rsa_keys).session_url == "http://auth.internal/session/abc"


def test_null_attributes_and_session_url_read_as_absent(rsa_keys: KeySet) -> None:
    body = {**claims(status="failed"), "attributes": None, "session_url": None}
    assert read(token_for(rsa_keys, body), rsa_keys) == AuthResult(STATUS_FAILED, None, None)


@pytest.mark.parametrize("sub", ["id-contact-attributes", "verder-helpen-attributes", "something-else", None])
def test_any_subject_or_none_is_accepted(rsa_keys: KeySet, sub: str | None) -> None:
    assert read(token_for(rsa_keys, claims(sub=sub)), rsa_keys).status == STATUS_SUCCESS


def test_unknown_claims_are_ignored(rsa_keys: KeySet) -> None:
    token = token_for(rsa_keys, claims(iss="auth-plugin", jti="42", extra={"nested": [1, 2]}))
    assert read(token, rsa_keys).attributes == {"email": "jane@example.com"}


def test_non_ascii_attribute_values_round_trip(ec_keys: KeySet) -> None:
    attributes = {"fullname": "Zoë Ñúñez 李", "empty": ""}
    assert read(token_for(ec_keys, claims(attributes=attributes)), ec_keys).attributes == attributes


def test_bytes_and_a_trailing_newline_are_accepted(rsa_keys: KeySet) -> None:
    token = token_for(rsa_keys)
    assert read((token + "\r\n").encode(), rsa_keys).status == STATUS_SUCCESS


def test_iat_is_optional(rsa_keys: KeySet) -> None:
    assert read(token_for(rsa_keys, claims(iat=None)), rsa_keys).status == STATUS_SUCCESS


def test_read_claims_returns_every_claim(rsa_keys: KeySet) -> None:
    body = claims(session_url="https://x.example/s", jti="7")
    assert tokens.read_claims(token_for(rsa_keys, body), rsa_keys.decrypt, rsa_keys.verify, now=NOW) == body


def test_jwe_header_members_beyond_the_producers_are_ignored(rsa_keys: KeySet) -> None:
    # kid/jku are never used to pick a key, so their presence changes nothing.
    token = seal({"njwt": jws_for(rsa_keys)}, rsa_keys.encrypt, kid="k1", jku="https://evil.example/keys")
    assert read(token, rsa_keys).status == STATUS_SUCCESS


# --------------------------------------------------------------------------- time


def test_token_is_good_until_exp_plus_leeway(rsa_keys: KeySet) -> None:
    token = token_for(rsa_keys)
    assert read(token, rsa_keys, now=NOW + 300 + 59, leeway=60).status == STATUS_SUCCESS
    with pytest.raises(InvalidToken) as caught:
        read(token, rsa_keys, now=NOW + 300 + 60, leeway=60)
    assert caught.value.reason == "expired"


def test_leeway_is_configurable(rsa_keys: KeySet) -> None:
    token = token_for(rsa_keys)
    assert read(token, rsa_keys, now=NOW + 300 + 100, leeway=120).status == STATUS_SUCCESS
    with pytest.raises(InvalidToken):
        read(token, rsa_keys, now=NOW + 300, leeway=0)


def test_expired_token_reads_without_the_expiry_check(rsa_keys: KeySet) -> None:
    # The agent display re-reads a stored result long after exp.
    result = read(token_for(rsa_keys), rsa_keys, now=NOW + 86400, check_expiry=False)
    assert result.attributes == {"email": "jane@example.com"}


def test_without_the_expiry_check_types_are_still_checked(rsa_keys: KeySet) -> None:
    with pytest.raises(InvalidToken) as caught:
        read(token_for(rsa_keys, claims(exp=None)), rsa_keys, check_expiry=False)
    assert caught.value.reason == "bad_claims"


def test_iat_slightly_ahead_within_leeway_is_accepted(rsa_keys: KeySet) -> None:
    token = token_for(rsa_keys, claims(iat=NOW + 60, exp=NOW + 360))
    assert read(token, rsa_keys, now=NOW, leeway=60).status == STATUS_SUCCESS


def test_nbf_in_the_future_is_refused_and_in_the_past_accepted(rsa_keys: KeySet) -> None:
    assert read(token_for(rsa_keys, claims(nbf=NOW - 5)), rsa_keys).status == STATUS_SUCCESS
    with pytest.raises(InvalidToken) as caught:
        read(token_for(rsa_keys, claims(nbf=NOW + 120)), rsa_keys)
    assert caught.value.reason == "not_yet_valid"


def test_fractional_times_are_numeric_dates_too(rsa_keys: KeySet) -> None:
    assert read(token_for(rsa_keys, claims(iat=NOW + 0.5, exp=NOW + 300.5)), rsa_keys).status == STATUS_SUCCESS


def test_wall_clock_is_used_when_now_is_not_given(rsa_keys: KeySet) -> None:
    token = tokens.make_auth_result(AuthResult(STATUS_FAILED), rsa_keys.encrypt, rsa_keys.sign)
    assert tokens.read_auth_result(token, rsa_keys.decrypt, rsa_keys.verify) == AuthResult(STATUS_FAILED)


# --------------------------------------------------------------------------- minting


def test_minted_token_has_the_producers_headers_rsa(rsa_keys: KeySet) -> None:
    token = tokens.make_auth_result(AuthResult(STATUS_SUCCESS, {"a": "b"}), rsa_keys.encrypt, rsa_keys.sign, now=NOW)
    assert list(header_of(token).items()) == [
        ("typ", "JWT"), ("cty", "JWT"), ("enc", "A128CBC-HS256"), ("alg", "RSA-OAEP"),
    ]
    _, plaintext = jwe.decrypt(token, rsa_keys.decrypt)
    njwt = json.loads(plaintext)["njwt"]
    assert list(header_of(njwt).items()) == [("typ", "JWT"), ("alg", "RS256")]


def test_minted_token_has_the_producers_headers_ec(ec_keys: KeySet) -> None:
    token = tokens.make_auth_result(AuthResult(STATUS_FAILED), ec_keys.encrypt, ec_keys.sign, now=NOW)
    header = header_of(token)
    assert list(header)[:4] == ["typ", "cty", "enc", "alg"]
    assert (header["alg"], sorted(header["epk"])) == ("ECDH-ES", ["crv", "kty", "x", "y"])
    assert token.split(".")[1] == ""  # direct key agreement: no encrypted key
    njwt = json.loads(jwe.decrypt(token, ec_keys.decrypt)[1])["njwt"]
    assert header_of(njwt) == {"typ": "JWT", "alg": "ES256"}


def test_minted_claims_are_the_producers(rsa_keys: KeySet) -> None:
    result = AuthResult(STATUS_SUCCESS, {"email": "jane@example.com"}, "https://s.example/1")
    token = tokens.make_auth_result(result, rsa_keys.encrypt, rsa_keys.sign, now=NOW + 0.9, lifetime=120)
    assert tokens.read_claims(token, rsa_keys.decrypt, rsa_keys.verify, now=NOW) == {
        "sub": "id-contact-attributes",
        "status": "succes",
        "attributes": {"email": "jane@example.com"},
        "session_url": "https://s.example/1",
        "iat": NOW,
        "exp": NOW + 120,
    }


def test_failed_result_is_minted_without_attributes(ec_keys: KeySet) -> None:
    token = tokens.make_auth_result(AuthResult(STATUS_FAILED), ec_keys.encrypt, ec_keys.sign, now=NOW)
    assert "attributes" not in tokens.read_claims(token, ec_keys.decrypt, ec_keys.verify, now=NOW)


def test_two_mints_of_one_result_differ(rsa_keys: KeySet) -> None:
    # Fresh CEK and IV every time.
    result = AuthResult(STATUS_FAILED)
    first, second = (tokens.make_auth_result(result, rsa_keys.encrypt, rsa_keys.sign, now=NOW) for _ in range(2))
    assert first != second
    assert first.split(".")[2] != second.split(".")[2]


@pytest.mark.parametrize(
    "result",
    [AuthResult("success"), AuthResult(STATUS_SUCCESS, {"age": 42}), AuthResult(STATUS_SUCCESS, None, 7)],  # type: ignore[dict-item,arg-type]
    ids=["status", "attribute-type", "session-url-type"],
)
def test_invalid_result_is_not_minted_and_not_echoed(rsa_keys: KeySet, result: AuthResult) -> None:
    with pytest.raises(ValueError, match="not a valid AuthResult") as caught:
        tokens.make_auth_result(result, rsa_keys.encrypt, rsa_keys.sign)
    assert "42" not in str(caught.value)


@pytest.mark.parametrize("combination", COMBINATIONS, ids=combination_id)
def test_minted_token_uses_the_chosen_alg_and_enc(
    rsa_keys: KeySet, ec_keys: KeySet, combination: tuple[str, str, str]
) -> None:
    kind, alg, enc = combination
    keys = rsa_keys if kind == "RSA" else ec_keys
    token = tokens.make_auth_result(AuthResult(STATUS_SUCCESS, {"a": "b"}), keys.encrypt, keys.sign, now=NOW,
                                    alg=alg, enc=enc)
    assert list(header_of(token).items())[:4] == [("typ", "JWT"), ("cty", "JWT"), ("enc", enc), ("alg", alg)]
    assert read(token, keys) == AuthResult(STATUS_SUCCESS, {"a": "b"})


@pytest.mark.parametrize(
    ("kind", "options"),
    [("RSA", {"alg": "ECDH-ES"}), ("EC", {"alg": "RSA-OAEP"}), ("RSA", {"alg": "RSA1_5"}), ("RSA", {"alg": "dir"}),
     ("RSA", {"enc": "A128CBC"}), ("EC", {"enc": "A128KW"})],
)
def test_minting_refuses_an_alg_or_enc_that_reading_would_refuse(
    rsa_keys: KeySet, ec_keys: KeySet, kind: str, options: dict
) -> None:
    keys = rsa_keys if kind == "RSA" else ec_keys
    with pytest.raises(ValueError, match=r"alg|enc"):
        tokens.make_auth_result(AuthResult(STATUS_FAILED), keys.encrypt, keys.sign, **options)


def test_minted_issuer_and_audience_are_claims(rsa_keys: KeySet) -> None:
    token = tokens.make_auth_result(AuthResult(STATUS_FAILED), rsa_keys.encrypt, rsa_keys.sign, now=NOW,
                                    issuer="https://auth.example.nl", audience="connect-plugin")
    claim_set = tokens.read_claims(token, rsa_keys.decrypt, rsa_keys.verify, now=NOW)
    assert (claim_set["iss"], claim_set["aud"]) == ("https://auth.example.nl", "connect-plugin")


# --------------------------------------------------------------------------- fuzzing


@FUZZ
@given(changes=st.dictionaries(CLAIM_NAMES, JSON | st.sampled_from(["succes", "failed", NOW, NOW + 300]), max_size=4))
def test_any_signed_claims_give_a_well_formed_result_or_a_refusal(rsa_keys: KeySet, changes: dict) -> None:
    token = token_for(rsa_keys, {**claims(), **changes})
    result = outcome(token, rsa_keys)
    if isinstance(result, InvalidToken):
        assert_clean_refusal(result, result.reason, token)
        assert result.reason in CLAIM_REFUSALS
        return
    assert result.status in (STATUS_SUCCESS, STATUS_FAILED)
    assert result.attributes is None or all(isinstance(v, str) for v in result.attributes.values())
    assert result.session_url is None or isinstance(result.session_url, str)


HEADER_VALUES = JSON | st.sampled_from([*jwe.CONTENT_ENCRYPTIONS, "RSA-OAEP", "RSA-OAEP-256", "ECDH-ES", "dir"])


@FUZZ
@given(
    members=st.dictionaries(st.sampled_from(["alg", "enc", "zip", "crit", "epk", "apu", "apv", "kid"]), HEADER_VALUES),
    enc=st.sampled_from(list(jwe.CONTENT_ENCRYPTIONS)),
)
def test_any_jwe_header_is_read_or_cleanly_refused(ec_keys: KeySet, members: dict, enc: str) -> None:
    token = with_header(token_for(ec_keys, enc=enc), **members)
    with pytest.raises(InvalidToken) as caught:  # the changed header no longer fits the tag, at best
        read(token, ec_keys)
    assert_clean_refusal(caught.value, caught.value.reason, token)


@FUZZ
@given(
    members=st.dictionaries(st.sampled_from(["alg", "enc", "zip", "crit"]), HEADER_VALUES, min_size=1),
    combination=st.sampled_from([c for c in COMBINATIONS if c[0] == "RSA"]),
)
def test_any_jwe_header_on_an_rsa_token_is_cleanly_refused(rsa_keys: KeySet, members: dict, combination: tuple) -> None:
    token = with_header(token_for(rsa_keys, alg=combination[1], enc=combination[2]), **members)
    with pytest.raises(InvalidToken) as caught:
        read(token, rsa_keys)
    assert_clean_refusal(caught.value, caught.value.reason, token)


@FUZZ
@given(data=st.data(), combination=st.sampled_from(COMBINATIONS))
def test_any_single_bit_flip_in_the_token_text_is_refused(
    rsa_keys: KeySet, ec_keys: KeySet, data: st.DataObject, combination: tuple
) -> None:
    kind, alg, enc = combination
    keys = rsa_keys if kind == "RSA" else ec_keys
    raw = bytearray(token_for(keys, alg=alg, enc=enc).encode())
    raw[data.draw(st.integers(0, len(raw) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(InvalidToken) as caught:
        read(bytes(raw), keys)
    assert caught.value.reason in {"malformed", "unsupported", "cannot_decrypt"}
    assert_clean_refusal(caught.value, caught.value.reason, bytes(raw))


@FUZZ
@given(text=st.text(alphabet="ABCDEFabcdef0123456789-_.{}\"", max_size=400))
def test_arbitrary_text_is_only_ever_an_invalid_token(ec_keys: KeySet, text: str) -> None:
    with pytest.raises(InvalidToken):
        read(text, ec_keys)
