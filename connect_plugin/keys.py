"""Key material from the configuration tables ``{type = "RSA" | "EC", key = "<PEM>"}``.

A key's ``kind`` is the configured type; it alone decides which JOSE algorithms
the token module accepts with it.  Key objects never show material in a repr
or an error message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from Crypto.PublicKey import ECC, RSA

MIN_RSA_BITS = 2048


class KeyLoadError(ValueError):
    """A key could not be loaded; the message says why without quoting the key."""


@dataclass(frozen=True, repr=False)
class PublicKey:
    """A public key: ``kind`` is ``"RSA"`` or ``"EC"`` (P-256)."""

    kind: str
    key: Any = field(compare=False)

    @property
    def pem(self) -> str:
        """SPKI PEM, for libraries that take PEM."""
        return self.key.export_key(format="PEM")

    def __repr__(self) -> str:
        return f"PublicKey({self.kind}, {_describe(self.key)})"


@dataclass(frozen=True, repr=False)
class PrivateKey:
    """A private key: ``kind`` is ``"RSA"`` or ``"EC"`` (P-256)."""

    kind: str
    key: Any = field(compare=False)

    @property
    def pem(self) -> str:
        """PKCS#8 PEM, for libraries that take PEM."""
        if self.kind == "RSA":
            return self.key.export_key(format="PEM", pkcs=8).decode()
        return self.key.export_key(format="PEM", use_pkcs8=True)

    def public(self) -> PublicKey:
        """The matching public key."""
        return PublicKey(self.kind, self.key.public_key())

    def __repr__(self) -> str:
        return f"PrivateKey({self.kind}, {_describe(self.key)})"

    __str__ = __repr__


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


def _import(kind: str, pem: str) -> Any:
    if "-----BEGIN" not in pem:
        raise KeyLoadError("not a PEM block")
    try:
        if kind == "RSA":
            key = RSA.import_key(pem)
        elif kind == "EC":
            key = ECC.import_key(pem)
        else:
            raise KeyLoadError('type must be "RSA" or "EC"')
    except (ValueError, IndexError, TypeError):
        raise KeyLoadError(f"not a valid {kind} key in PEM form") from None
    if kind == "RSA" and key.size_in_bits() < MIN_RSA_BITS:
        raise KeyLoadError(f"RSA key shorter than {MIN_RSA_BITS} bits")
    if kind == "EC" and key.curve not in ("NIST P-256", "p256", "P-256", "prime256v1", "secp256r1"):
        raise KeyLoadError("EC key must be on curve P-256")
    return key
