"""Key loading: the PEM forms a deployer may paste, the wrong ones refused without quoting them."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from connect_plugin import keys, tokens
from connect_plugin.keys import KeyLoadError, load_private_key, load_public_key
from connect_plugin.model import AuthResult

SAMPLE = Path(__file__).resolve().parent.parent / "sample" / "keys"
PEM = serialization.Encoding.PEM
NO_PASSWORD = serialization.NoEncryption()


@pytest.fixture(scope="module")
def rsa_private() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_private() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def private_pem(key: object, form: serialization.PrivateFormat, encryption: object = NO_PASSWORD) -> str:
    return key.private_bytes(PEM, form, encryption).decode()  # type: ignore[attr-defined]


def public_pem(key: object) -> str:
    return key.public_key().public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()  # type: ignore[attr-defined]


def body_of(pem: str) -> str:
    """A run of the PEM's base64 body: what an error must never quote."""
    return pem.splitlines()[2][:24]


def load_error(load: object, kind: str, pem: str) -> str:
    with pytest.raises(KeyLoadError) as caught:
        load(kind, pem)  # type: ignore[operator]
    message = str(caught.value)
    if pem.count("\n") > 3:
        assert body_of(pem) not in message
    assert caught.value.__cause__ is None
    return message


# --------------------------------------------------------------------------- accepted forms


def test_rsa_pkcs1_private_key_loads(rsa_private: rsa.RSAPrivateKey) -> None:
    pem = private_pem(rsa_private, serialization.PrivateFormat.TraditionalOpenSSL)
    assert pem.startswith("-----BEGIN RSA PRIVATE KEY-----")
    key = load_private_key("RSA", pem)
    assert key.kind == "RSA"
    assert key.key.has_private()


def test_rsa_pkcs8_private_key_loads(rsa_private: rsa.RSAPrivateKey) -> None:
    pem = private_pem(rsa_private, serialization.PrivateFormat.PKCS8)
    assert pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert load_private_key("RSA", pem).key.n == rsa_private.private_numbers().public_numbers.n


def test_ec_sec1_private_key_loads(ec_private: ec.EllipticCurvePrivateKey) -> None:
    pem = private_pem(ec_private, serialization.PrivateFormat.TraditionalOpenSSL)
    assert pem.startswith("-----BEGIN EC PRIVATE KEY-----")
    assert load_private_key("EC", pem).kind == "EC"


def test_ec_pkcs8_private_key_loads(ec_private: ec.EllipticCurvePrivateKey) -> None:
    key = load_private_key("EC", private_pem(ec_private, serialization.PrivateFormat.PKCS8))
    assert int(key.key.d) == ec_private.private_numbers().private_value


@pytest.mark.parametrize("kind", ["RSA", "EC"])
def test_spki_public_key_loads_and_matches_the_private_half(
    kind: str, rsa_private: rsa.RSAPrivateKey, ec_private: ec.EllipticCurvePrivateKey
) -> None:
    private = rsa_private if kind == "RSA" else ec_private
    public = load_public_key(kind, public_pem(private))
    assert public == load_private_key(kind, private_pem(private, serialization.PrivateFormat.PKCS8)).public()


def test_keys_with_crlf_indentation_and_blank_edges_load(rsa_private: rsa.RSAPrivateKey) -> None:
    # As pasted into an indented TOML multi-line string, or read from a Windows file.
    pem = "\r\n".join("    " + line for line in public_pem(rsa_private).splitlines())
    assert load_public_key("RSA", f"\n{pem}\r\n  ").kind == "RSA"


def test_sample_keys_load_and_pair_up() -> None:
    decrypt = load_private_key("RSA", (SAMPLE / "plugin-decrypt.key.pem").read_text())
    encrypt = load_public_key("RSA", (SAMPLE / "plugin-encrypt.pub.pem").read_text())
    sign = load_private_key("RSA", (SAMPLE / "auth-sign.key.pem").read_text())
    verify = load_public_key("RSA", (SAMPLE / "auth-verify.pub.pem").read_text())
    assert decrypt.public() == encrypt
    assert sign.public() == verify
    token = tokens.make_auth_result(AuthResult("succes", {"email": "jane@example.com"}), encrypt, sign)
    assert tokens.read_auth_result(token, decrypt, verify).attributes == {"email": "jane@example.com"}


# --------------------------------------------------------------------------- refused forms


@pytest.mark.parametrize("kind", ["RSA", "EC"])
def test_public_key_where_a_private_one_is_expected_is_refused(
    kind: str, rsa_private: rsa.RSAPrivateKey, ec_private: ec.EllipticCurvePrivateKey
) -> None:
    pem = public_pem(rsa_private if kind == "RSA" else ec_private)
    assert "got a public one" in load_error(load_private_key, kind, pem)


@pytest.mark.parametrize("kind", ["RSA", "EC"])
def test_private_key_where_a_public_one_is_expected_is_refused(
    kind: str, rsa_private: rsa.RSAPrivateKey, ec_private: ec.EllipticCurvePrivateKey
) -> None:
    pem = private_pem(rsa_private if kind == "RSA" else ec_private, serialization.PrivateFormat.PKCS8)
    assert "got a private one" in load_error(load_public_key, kind, pem)


def test_ec_key_configured_as_rsa_is_refused(ec_private: ec.EllipticCurvePrivateKey) -> None:
    pem = private_pem(ec_private, serialization.PrivateFormat.PKCS8)
    assert "not a valid RSA key" in load_error(load_private_key, "RSA", pem)


def test_rsa_key_configured_as_ec_is_refused(rsa_private: rsa.RSAPrivateKey) -> None:
    assert "not a valid EC key" in load_error(load_public_key, "EC", public_pem(rsa_private))


def test_unknown_type_is_refused_without_echoing_it(rsa_private: rsa.RSAPrivateKey) -> None:
    pem = public_pem(rsa_private)
    message = load_error(load_public_key, "secret-looking-type", pem)
    assert "secret-looking-type" not in message
    assert "RSA" in message


def test_short_rsa_key_is_refused() -> None:
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (the point of the test)
    assert "2048" in load_error(load_public_key, "RSA", public_pem(short))


def test_ec_key_on_another_curve_is_refused() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    assert "P-256" in load_error(load_private_key, "EC", private_pem(p384, serialization.PrivateFormat.PKCS8))


def test_passphrase_protected_key_is_refused(rsa_private: rsa.RSAPrivateKey) -> None:
    encryption = serialization.BestAvailableEncryption(b"hunter2-hunter2")
    pem = private_pem(rsa_private, serialization.PrivateFormat.PKCS8, encryption)
    assert "passphrase" in load_error(load_private_key, "RSA", pem)


@pytest.mark.parametrize(
    "pem",
    [
        "",
        "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA",
        "-----BEGIN PUBLIC KEY-----\nTUlJQklqQU5CZ2txaGtpRzl3MEJBUUVGQUFPQ0FROEFNSUlCQ2dL\n-----END PUBLIC KEY-----\n",
    ],
    ids=["empty", "bare-base64", "garbage-in-pem"],
)
def test_garbage_is_refused_without_quoting_it(pem: str) -> None:
    message = load_error(load_public_key, "RSA", pem)
    assert "TUlJQklq" not in message
    assert "MIIBIjAN" not in message


# --------------------------------------------------------------------------- behaviour of key objects


def test_reprs_show_no_key_material(rsa_private: rsa.RSAPrivateKey, ec_private: ec.EllipticCurvePrivateKey) -> None:
    private = load_private_key("EC", private_pem(ec_private, serialization.PrivateFormat.PKCS8))
    shown = f"{private!r} {private} {private.public()!r} {[private]}"
    assert str(ec_private.private_numbers().private_value) not in shown
    assert hex(ec_private.private_numbers().private_value)[2:12] not in shown
    rsa_key = load_private_key("RSA", private_pem(rsa_private, serialization.PrivateFormat.PKCS8))
    assert repr(rsa_key) == "PrivateKey(RSA, 2048 bits)"
    assert str(rsa_private.private_numbers().d)[:20] not in f"{rsa_key!r} {rsa_key}"


def test_pem_properties_are_text_that_loads_again(rsa_private: rsa.RSAPrivateKey) -> None:
    private = load_private_key("RSA", private_pem(rsa_private, serialization.PrivateFormat.TraditionalOpenSSL))
    assert isinstance(private.pem, str)
    assert private.pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert isinstance(private.public().pem, str)
    assert load_public_key("RSA", private.public().pem) == private.public()
    assert load_private_key("RSA", private.pem).public() == private.public()


def test_public_keys_compare_by_value(rsa_private: rsa.RSAPrivateKey) -> None:
    one, two = (load_public_key("RSA", public_pem(rsa_private)) for _ in range(2))
    other = load_public_key("RSA", public_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    assert one == two
    assert hash(one) == hash(two)
    assert one != other


def test_cryptography_objects_are_built_once(rsa_private: rsa.RSAPrivateKey) -> None:
    public = load_public_key("RSA", public_pem(rsa_private))
    assert public.crypto_key is public.crypto_key
    assert public.crypto_key.public_numbers() == rsa_private.public_key().public_numbers()


@pytest.mark.parametrize("form", ["pkcs1", "pkcs8", "spki"])
def test_kind_is_guessed_from_rsa_pem(rsa_private: rsa.RSAPrivateKey, form: str) -> None:
    pem = {
        "pkcs1": private_pem(rsa_private, serialization.PrivateFormat.TraditionalOpenSSL),
        "pkcs8": private_pem(rsa_private, serialization.PrivateFormat.PKCS8),
        "spki": public_pem(rsa_private),
    }[form]
    assert keys.guess_kind(pem) == "RSA"


@pytest.mark.parametrize("form", ["sec1", "pkcs8", "spki"])
def test_kind_is_guessed_from_ec_pem(ec_private: ec.EllipticCurvePrivateKey, form: str) -> None:
    pem = {
        "sec1": private_pem(ec_private, serialization.PrivateFormat.TraditionalOpenSSL),
        "pkcs8": private_pem(ec_private, serialization.PrivateFormat.PKCS8),
        "spki": public_pem(ec_private),
    }[form]
    assert keys.guess_kind(pem) == "EC"


def test_kind_of_a_key_that_breaks_the_rules_is_still_recognised() -> None:
    # So that the tool can then say what is wrong with it (size, curve), not just "unknown".
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (the point of the test)
    p384 = ec.generate_private_key(ec.SECP384R1())
    assert keys.guess_kind(public_pem(short)) == "RSA"
    assert keys.guess_kind(public_pem(p384)) == "EC"


def test_kind_of_garbage_cannot_be_guessed() -> None:
    with pytest.raises(KeyLoadError):
        keys.guess_kind("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
