"""Codes: the built-in DTMF code generator and the result codes of attribute URLs."""

from __future__ import annotations

import hashlib
import secrets
import string

RESULT_ALPHABET = string.ascii_letters + string.digits


class RandomDigits:
    """The built-in code generator: ``length`` uniformly random decimal digits."""

    def __init__(self, length: int) -> None:
        self.length = length

    def generate(self) -> str:
        """A fresh code from the operating system's CSPRNG."""
        return "".join(secrets.choice(string.digits) for _ in range(self.length))

    def __repr__(self) -> str:
        return f"RandomDigits(length={self.length})"


def new_result_code(length: int) -> str:
    """A fresh result code: ``length`` random characters from ``[A-Za-z0-9]``."""
    return "".join(secrets.choice(RESULT_ALPHABET) for _ in range(length))


def result_key(result_code: str) -> str:
    """What a store keeps instead of a result code: its SHA-256, hex."""
    return hashlib.sha256(result_code.encode()).hexdigest()
