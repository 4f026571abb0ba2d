"""Key material from the configuration tables ``{type = "RSA" | "EC", key = "<PEM>"}``.

A key's ``kind`` is the configured type; it alone decides which JOSE algorithms
the token module accepts with it.  Key objects never show material in a repr
or an error message, and errors never quote the PEM they were given.

Accepted forms: RSA private keys as PKCS#8 (``BEGIN PRIVATE KEY``) or PKCS#1
(``BEGIN RSA PRIVATE KEY``); EC P-256 private keys as PKCS#8 or SEC1
(``BEGIN EC PRIVATE KEY``); public keys as SPKI (``BEGIN PUBLIC KEY``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from Crypto.PublicKey import ECC, RSA
from cryptography.hazmat.primitives import serialization

MIN_RSA_BITS = 2048
MAX_RSA_BITS = 16384  # bigger keys only make every token read slow
KINDS = ("RSA", "EC")
P256_NAMES = ("NIST P-256", "p256", "P-256", "prime256v1", "secp256r1")


class KeyLoadError(ValueError):
    """A key could not be loaded; the message says why without quoting the key."""


@dataclass(frozen=True, repr=False, eq=False)
class PublicKey:
    """A public key: ``kind`` is ``"RSA"`` or ``"EC"`` (P-256); ``key`` a pycryptodome key."""

    kind: str
    key: Any

    @property
    def pem(self) -> str:
        """SPKI PEM, for libraries that take PEM."""
        return _as_str(self.key.export_key(format="PEM"))

    @cached_property
    def crypto_key(self) -> Any:
        """The same key as a ``cryptography`` object (what PyJWT verifies with), built once."""
        return serialization.load_der_public_key(self.key.export_key(format="DER"))

    @cached_property
    def _identity(self) -> tuple[str, bytes]:
        return self.kind, self.key.export_key(format="DER")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PublicKey):
            return NotImplemented
        return self._identity == other._identity

    def __hash__(self) -> int:
        return hash(self._identity)

    def __repr__(self) -> str:
        return f"PublicKey({self.kind}, {_describe(self.key)})"

    __str__ = __repr__


@dataclass(frozen=True, repr=False, eq=False)
class PrivateKey:
    """A private key: ``kind`` is ``"RSA"`` or ``"EC"`` (P-256); ``key`` a pycryptodome key.

    Equality is by identity: private keys are not compared or hashed by value.
    """

    kind: str
    key: Any

    @property
    def pem(self) -> str:
        """PKCS#8 PEM, for libraries that take PEM."""
        if self.kind == "RSA":
            return _as_str(self.key.export_key(format="PEM", pkcs=8))
        return _as_str(self.key.export_key(format="PEM", use_pkcs8=True))

    @cached_property
    def crypto_key(self) -> Any:
        """The same key as a ``cryptography`` object (what PyJWT signs with), built once."""
        return serialization.load_pem_private_key(self.pem.encode(), password=None)

    def public(self) -> PublicKey:
        """The matching public key."""
        return PublicKey(self.kind, self.key.public_key())

    def __repr__(self) -> str:
        return f"PrivateKey({self.kind}, {_describe(self.key)})"

    __str__ = __repr__


def _as_str(pem: str | bytes) -> str:
    return pem.decode("ascii") if isinstance(pem, bytes) else pem


def _describe(key: Any) -> str:
    if isinstance(key, RSA.RsaKey):
        return f"{key.size_in_bits()} bits"
    return str(getattr(key, "curve", "?"))


def load_private_key(kind: str, pem: str) -> PrivateKey:
    """Load an RSA (PKCS#8 or PKCS#1) or EC P-256 (PKCS#8 or SEC1) private key."""
    key = _import(kind, pem)
    if not key.has_private():
        raise KeyLoadError(f"expected a private {kind} key, got a public one")
    return PrivateKey(kind, key)


def load_public_key(kind: str, pem: str) -> PublicKey:
    """Load an RSA or EC P-256 public key (SPKI PEM)."""
    key = _import(kind, pem)
    if key.has_private():
        raise KeyLoadError(f"expected a public {kind} key, got a private one")
    return PublicKey(kind, key)


def guess_kind(pem: str) -> str:
    """``"RSA"`` or ``"EC"``: the kind of key a PEM block holds (for tools that are not told).

    Only the form is looked at; loading the key then applies the size and curve rules.
    """
    text = _tidy(pem)
    for kind, parse in (("RSA", RSA.import_key), ("EC", ECC.import_key)):
        try:
            parse(text)
        except (ValueError, IndexError, TypeError):
            continue
        return kind
    raise KeyLoadError("not an RSA or EC key in PEM form")


def _tidy(pem: str) -> str:
    if not isinstance(pem, str) or "-----BEGIN" not in pem:
        raise KeyLoadError("not a PEM block")
    if "ENCRYPTED" in pem:
        raise KeyLoadError("passphrase-protected keys are not supported")
    # Indented TOML strings and CRLF files are common and harmless: tidy the lines.
    return "\n".join(line.strip() for line in pem.strip().splitlines()) + "\n"


def _import(kind: str, pem: str) -> Any:
    # The kind is checked before anything else so that no message ever repeats
    # a value that is not one of ours.
    if kind not in KINDS:
        raise KeyLoadError('type must be "RSA" or "EC"')
    text = _tidy(pem)
    try:
        key = RSA.import_key(text) if kind == "RSA" else ECC.import_key(text)
    except (ValueError, IndexError, TypeError):
        raise KeyLoadError(f"not a valid {kind} key in PEM form") from None
    if isinstance(key, RSA.RsaKey) and not MIN_RSA_BITS <= key.size_in_bits() <= MAX_RSA_BITS:
        raise KeyLoadError(f"RSA key must have {MIN_RSA_BITS} to {MAX_RSA_BITS} bits")
    if isinstance(key, ECC.EccKey) and key.curve not in P256_NAMES:
        raise KeyLoadError("EC key must be on curve P-256")
    return key
