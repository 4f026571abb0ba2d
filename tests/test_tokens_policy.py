"""The rules a token's claims and JWS header must meet on receipt (issue 10, "Results"), and what is read.

Claim types, time, the lifetime cap, the JWS ``typ``, the expected issuer and
audience, the replay key of :func:`tokens.read_verified`, and the closed set
of refusal reasons.  One refusal over real HTTP shows the flow service applies
them.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import inspect
import json
import time

import pytest

from connect_plugin import jwe, tokens
from connect_plugin.errors import InvalidToken
from connect_plugin.model import AuthResult
from tests.support import ROOT, KeySet, count_sessions
from tests.token_support import NOW, assert_clean_refusal, claims, jws_for, seal, sign_jws, token_for

YEAR = 365 * 86400
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def verify(token: str, keys: KeySet, policy: tokens.TokenPolicy | None = None,
           now: float = NOW + 10) -> tokens.VerifiedToken:
    return tokens.read_verified(token, keys.decrypt, keys.verify, policy or tokens.TokenPolicy(), now=now)


def refuse(token: str, keys: KeySet, reason: str, policy: tokens.TokenPolicy | None = None,
           now: float = NOW + 10) -> InvalidToken:
    """Read ``token`` on receipt at ``now``; assert a clean refusal for ``reason``."""
    with pytest.raises(InvalidToken) as caught:
        verify(token, keys, policy, now)
    assert_clean_refusal(caught.value, reason, token)
    return caught.value


def with_jws_header(keys: KeySet, header: dict) -> str:
    """A token whose JWS has exactly ``header`` (validly signed)."""
    return seal({"njwt": sign_jws(header, json.dumps(claims()).encode(), keys.sign)}, keys.encrypt)


# --------------------------------------------------------------------------- claim types and time


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
        claims(iss=["auth"]),
        claims(aud=42),
        claims(aud=["connect-plugin", 7]),
        claims(aud={"aud": "connect-plugin"}),
        claims(exp=None),
        claims(exp=str(NOW + 300)),
        claims(exp=True),
        claims(iat="yesterday"),
        claims(nbf=[NOW]),
    ],
    ids=["status-spelling", "status-missing", "status-number", "status-list", "attributes-list",
         "attribute-number", "attribute-null", "attributes-string", "session-url-number", "sub-number",
         "iss-list", "aud-number", "aud-list-with-number", "aud-object",
         "exp-missing", "exp-string", "exp-bool", "iat-string", "nbf-list"],
)
def test_claim_of_the_wrong_type_is_refused(rsa_keys: KeySet, claim_set: dict) -> None:
    refuse(token_for(rsa_keys, claim_set), rsa_keys, "bad_claims")


def test_exp_is_required_even_when_rereading_a_stored_token(rsa_keys: KeySet) -> None:
    with pytest.raises(InvalidToken) as caught:
        tokens.read_auth_result(token_for(rsa_keys, claims(exp=None)), rsa_keys.decrypt, rsa_keys.verify,
                                check_expiry=False)
    assert caught.value.reason == "bad_claims"


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


def test_expired_token_is_refused_at_exp_plus_leeway(rsa_keys: KeySet) -> None:
    token = token_for(rsa_keys)
    assert verify(token, rsa_keys, tokens.TokenPolicy(leeway=60), now=NOW + 300 + 59)
    refuse(token, rsa_keys, "expired", tokens.TokenPolicy(leeway=60), now=NOW + 300 + 60)


def test_iat_in_the_future_beyond_leeway_is_refused(rsa_keys: KeySet) -> None:
    refuse(token_for(rsa_keys, claims(iat=NOW + 10 + 61, exp=NOW + 600)), rsa_keys, "not_yet_valid")


def test_nbf_in_the_future_beyond_leeway_is_refused(rsa_keys: KeySet) -> None:
    refuse(token_for(rsa_keys, claims(nbf=NOW + 10 + 61)), rsa_keys, "not_yet_valid")


# --------------------------------------------------------------------------- the lifetime cap


def test_exp_31_years_after_iat_is_refused(rsa_keys: KeySet) -> None:
    refuse(token_for(rsa_keys, claims(exp=NOW + 31 * YEAR)), rsa_keys, "lifetime")


def test_exp_31_years_ahead_without_iat_is_refused(rsa_keys: KeySet) -> None:
    refuse(token_for(rsa_keys, claims(iat=None, exp=NOW + 31 * YEAR)), rsa_keys, "lifetime")


def test_lifetime_of_exactly_the_maximum_is_accepted_and_one_second_more_refused(rsa_keys: KeySet) -> None:
    assert verify(token_for(rsa_keys, claims(exp=NOW + 3600)), rsa_keys).expires_at == NOW + 3600
    refuse(token_for(rsa_keys, claims(exp=NOW + 3601)), rsa_keys, "lifetime")


def test_exp_ahead_of_now_is_capped_at_the_maximum_plus_leeway(rsa_keys: KeySet) -> None:
    # Without iat only exp - now can be checked; the leeway allows for a producer's clock ahead of ours.
    policy = tokens.TokenPolicy(leeway=60, max_lifetime=3600)
    assert verify(token_for(rsa_keys, claims(iat=None, exp=NOW + 3660)), rsa_keys, policy, now=NOW)
    refuse(token_for(rsa_keys, claims(iat=None, exp=NOW + 3661)), rsa_keys, "lifetime", policy, now=NOW)


def test_max_lifetime_is_the_policy_s(rsa_keys: KeySet) -> None:
    token = token_for(rsa_keys, claims(exp=NOW + 900))
    assert verify(token, rsa_keys)
    refuse(token, rsa_keys, "lifetime", tokens.TokenPolicy(max_lifetime=600))


def test_a_stored_token_is_reread_without_time_or_lifetime_checks(rsa_keys: KeySet) -> None:
    token = token_for(rsa_keys, claims(iss="someone", exp=NOW + 31 * YEAR))
    policy = tokens.TokenPolicy(issuer="someone-else", max_lifetime=60)
    result = tokens.read_auth_result(token, rsa_keys.decrypt, rsa_keys.verify, policy, check_expiry=False,
                                     now=NOW + 40 * YEAR)
    assert result.attributes == {"email": "jane@example.com"}


# --------------------------------------------------------------------------- the JWS typ


@pytest.mark.parametrize("typ", ["JWT", "jwt", "Jwt", "application/jwt", "APPLICATION/JWT", "Application/Jwt"])
def test_jws_typ_naming_the_jwt_media_type_is_accepted(rsa_keys: KeySet, typ: str) -> None:
    assert verify(with_jws_header(rsa_keys, {"typ": typ, "alg": "RS256"}), rsa_keys).result.status == "succes"


def test_jws_without_typ_is_accepted(rsa_keys: KeySet) -> None:
    assert verify(with_jws_header(rsa_keys, {"alg": "RS256"}), rsa_keys).result.status == "succes"


@pytest.mark.parametrize(
    "typ",
    ["JOSE", "JOSE+JSON", "at+jwt", "application/at+jwt", "secevent+jwt", "text/jwt", "application/jwt; x=1",
     " JWT", "JWT ", "", "application/", "\uff2a\uff37\uff34", None, 42, ["JWT"], {"typ": "JWT"}],
    ids=["jose", "jose-json", "at-jwt", "application-at-jwt", "secevent", "text-jwt", "parameter", "leading-space",
         "trailing-space", "empty", "no-subtype", "fullwidth", "null", "number", "list", "object"],
)
def test_jws_typ_other_than_jwt_is_refused(rsa_keys: KeySet, typ: object) -> None:
    refuse(with_jws_header(rsa_keys, {"typ": typ, "alg": "RS256"}), rsa_keys, "unsupported")


def test_jws_typ_is_checked_for_ec_signatures_too(ec_keys: KeySet) -> None:
    refuse(seal({"njwt": jws_for(ec_keys, None, typ="at+jwt")}, ec_keys.encrypt), ec_keys, "unsupported")


# --------------------------------------------------------------------------- issuer and audience

ISSUER = "https://auth.example.nl"
AUDIENCE = "connect-plugin"


def test_expected_issuer_is_accepted(rsa_keys: KeySet) -> None:
    assert verify(token_for(rsa_keys, claims(iss=ISSUER)), rsa_keys, tokens.TokenPolicy(issuer=ISSUER))


@pytest.mark.parametrize("iss", [None, "https://evil.example", "HTTPS://AUTH.EXAMPLE.NL", ISSUER + "/"],
                         ids=["missing", "other", "other-case", "trailing-slash"])
def test_other_or_missing_issuer_is_refused(rsa_keys: KeySet, iss: str | None) -> None:
    refuse(token_for(rsa_keys, claims(iss=iss)), rsa_keys, "wrong_issuer", tokens.TokenPolicy(issuer=ISSUER))


@pytest.mark.parametrize("aud", [AUDIENCE, [AUDIENCE], ["other", AUDIENCE]], ids=["string", "list", "list-of-two"])
def test_expected_audience_is_accepted_as_a_string_or_in_a_list(rsa_keys: KeySet, aud: object) -> None:
    assert verify(token_for(rsa_keys, claims(aud=aud)), rsa_keys, tokens.TokenPolicy(audience=AUDIENCE))


@pytest.mark.parametrize("aud", [None, "other", [], ["other"], "Connect-Plugin"],
                         ids=["missing", "other", "empty-list", "list-without", "other-case"])
def test_other_or_missing_audience_is_refused(rsa_keys: KeySet, aud: object) -> None:
    refuse(token_for(rsa_keys, claims(aud=aud)), rsa_keys, "wrong_audience", tokens.TokenPolicy(audience=AUDIENCE))


def test_without_expectations_iss_and_aud_are_not_compared(rsa_keys: KeySet) -> None:
    assert verify(token_for(rsa_keys, claims(iss="anyone", aud=["anything"])), rsa_keys)


# --------------------------------------------------------------------------- the policy itself


@pytest.mark.parametrize(
    "options",
    [{"leeway": -1}, {"leeway": True}, {"leeway": float("nan")}, {"max_lifetime": 0}, {"max_lifetime": float("inf")},
     {"max_lifetime": "3600"}, {"issuer": ""}, {"issuer": 7}, {"audience": ""}, {"audience": ["a"]}],
)
def test_policy_refuses_values_that_are_not_rules(options: dict) -> None:
    with pytest.raises(ValueError, match=r"leeway|max_lifetime|issuer|audience"):
        tokens.TokenPolicy(**options)


def test_policy_defaults_and_is_frozen() -> None:
    policy = tokens.TokenPolicy()
    assert (policy.leeway, policy.max_lifetime, policy.issuer, policy.audience) == (60, 3600, None, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.leeway = 0  # type: ignore[misc]


# --------------------------------------------------------------------------- read_verified and the replay key


def test_read_verified_gives_result_exp_and_the_hash_of_the_signing_input(rsa_keys: KeySet) -> None:
    njwt = jws_for(rsa_keys, claims(session_url="https://s.example/1"))
    verified = verify(seal({"njwt": njwt}, rsa_keys.encrypt), rsa_keys)
    assert verified.result == AuthResult("succes", {"email": "jane@example.com"}, "https://s.example/1")
    assert verified.expires_at == NOW + 300
    signing_input = njwt.rsplit(".", 1)[0].encode()
    assert verified.replay_key == hashlib.sha256(signing_input).hexdigest()


def test_the_same_jws_rewrapped_in_a_fresh_jwe_has_the_same_replay_key(rsa_keys: KeySet) -> None:
    # Anyone with the plugin's public key can re-encrypt a JWS they saw: the key must not follow the JWE.
    njwt = jws_for(rsa_keys)
    first = seal({"njwt": njwt}, rsa_keys.encrypt)
    second = seal({"njwt": njwt}, rsa_keys.encrypt, alg="RSA-OAEP-256", enc="A256GCM")
    assert first != second
    assert verify(first, rsa_keys).replay_key == verify(second, rsa_keys).replay_key


def test_a_malleated_ecdsa_signature_has_the_same_replay_key(ec_keys: KeySet) -> None:
    # (r, s) and (r, n - s) both verify: the key must not follow the signature bytes.
    njwt = jws_for(ec_keys)
    head, signature = njwt.rsplit(".", 1)
    raw = jwe.b64url_decode(signature, "signature")
    s = int.from_bytes(raw[32:], "big")
    twin = head + "." + jwe.b64url_encode(raw[:32] + (P256_ORDER - s).to_bytes(32, "big"))
    assert twin != njwt
    original = verify(seal({"njwt": njwt}, ec_keys.encrypt), ec_keys)
    malleated = verify(seal({"njwt": twin}, ec_keys.encrypt), ec_keys)
    assert malleated.replay_key == original.replay_key


def test_different_results_have_different_replay_keys(rsa_keys: KeySet) -> None:
    keys = {verify(token_for(rsa_keys, claims(**change)), rsa_keys).replay_key
            for change in ({}, {"iat": NOW + 1}, {"attributes": {"email": "john@example.com"}})}
    assert len(keys) == 3


# --------------------------------------------------------------------------- the closed set of reasons


def raised_reasons(module: object) -> list[object]:
    """The first argument of every ``InvalidToken(...)`` call in ``module``'s source."""
    tree = ast.parse(inspect.getsource(module))  # type: ignore[arg-type]
    return [
        node.args[0].value if isinstance(node.args[0], ast.Constant) else ast.dump(node.args[0])
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "InvalidToken"
    ]


def test_every_refusal_uses_a_listed_reason_and_every_listed_reason_is_used() -> None:
    raised = raised_reasons(jwe) + raised_reasons(tokens)
    assert set(raised) <= set(tokens.REFUSAL_REASONS)
    # "replayed" is the flow service's to raise: it alone knows what was accepted before.
    assert set(raised) == set(tokens.REFUSAL_REASONS) - {"replayed"}
    assert len(set(tokens.REFUSAL_REASONS)) == len(tokens.REFUSAL_REASONS)


def test_every_reason_is_documented() -> None:
    text = (ROOT / "docs" / "tokens.md").read_text()
    for reason in tokens.REFUSAL_REASONS:
        assert f"`{reason}`" in text


# --------------------------------------------------------------------------- over HTTP


@pytest.mark.gen_test
async def test_a_result_with_exp_31_years_ahead_is_refused_over_http(plugin, database_url, keyset):
    started = (await plugin.api.start("report_move")).json
    token = tokens.make_auth_result(AuthResult("succes", {"email": "jane@example.com"}), keyset.encrypt,
                                    keyset.sign, lifetime=31 * YEAR)
    response = await plugin.api.post_result(started["attr_url"], token)
    assert response.status == 400
    assert "(lifetime)" in response.json["detail"]
    # The session is still waiting for a good result.
    good = tokens.make_auth_result(AuthResult("failed"), keyset.encrypt, keyset.sign, now=time.time())
    assert (await plugin.api.post_result(started["attr_url"], good)).status == 200
    assert await count_sessions(database_url) == 1
