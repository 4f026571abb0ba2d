"""The built-in codes are uniform over their alphabets: no digit or letter is likelier than another.

A chi-squared test over many codes; the bounds are far out in the tail
(a true uniform generator fails them about once in 10^9 runs), so a failure
means a biased generator, such as ``byte % 62`` without rejecting bytes >= 248.
"""

from __future__ import annotations

import string
from collections import Counter

from connect_plugin.codes import RESULT_ALPHABET, RandomDigits, new_result_code


def chi_squared(counts: Counter[str], alphabet: str) -> float:
    total = sum(counts.values())
    expected = total / len(alphabet)
    return sum((counts.get(symbol, 0) - expected) ** 2 / expected for symbol in alphabet)


def test_dtmf_codes_have_the_length_asked_for_and_uniform_digits() -> None:
    generator = RandomDigits(8)
    codes = [generator.generate() for _ in range(20_000)]
    assert {len(code) for code in codes} == {8}
    assert all(set(code) <= set(string.digits) for code in codes)
    # 9 degrees of freedom: P(chi2 > 50) is about 1e-7.
    assert chi_squared(Counter("".join(codes)), string.digits) < 50
    # Leading zeros are kept, as often as any other first digit.
    assert chi_squared(Counter(code[0] for code in codes), string.digits) < 50


def test_result_codes_are_uniform_over_letters_and_digits() -> None:
    codes = [new_result_code(32) for _ in range(10_000)]
    assert {len(code) for code in codes} == {32}
    counts = Counter("".join(codes))
    assert set(counts) == set(RESULT_ALPHABET)
    # 61 degrees of freedom: P(chi2 > 140) is below 1e-8; byte % 62 without rejection gives about 2,000.
    assert chi_squared(counts, RESULT_ALPHABET) < 140
