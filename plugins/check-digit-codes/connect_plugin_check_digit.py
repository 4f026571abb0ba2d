"""A code generator plugin: DTMF codes whose last digit is a Luhn check digit.

Turned on by ``[global.plugins.check_digit] enabled = true``.  A code is
``dtmf_length - 1`` random digits and one check digit, so the contact flow (or
a person reading a code aloud) can tell most typing slips from unknown codes:
one wrong digit, or two neighbours swapped, never passes the check.
"""

from __future__ import annotations

import secrets
import string

from connect_plugin.config import Settings
from connect_plugin.hookspecs import hookimpl

NAME = "check_digit"


def luhn_digit(digits: str) -> str:
    """The Luhn check digit for ``digits``."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:  # doubled: every second digit from the right, check digit excluded
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return str((10 - total % 10) % 10)


def is_valid(code: str) -> bool:
    """True when the last digit of ``code`` is its Luhn check digit."""
    return len(code) > 1 and code.isdigit() and luhn_digit(code[:-1]) == code[-1]


class CheckDigitCodes:
    """``length - 1`` random digits followed by their Luhn check digit."""

    def __init__(self, length: int) -> None:
        self.length = length

    def generate(self) -> str:
        """A fresh code."""
        body = "".join(secrets.choice(string.digits) for _ in range(self.length - 1))
        return body + luhn_digit(body)


@hookimpl
def connect_plugin_code_generator(settings: Settings) -> CheckDigitCodes | None:
    """Answer only when ``[global.plugins.check_digit] enabled = true``."""
    options = settings.plugins.get(NAME)
    if not isinstance(options, dict) or options.get("enabled") is not True:
        return None
    return CheckDigitCodes(settings.dtmf_length)
