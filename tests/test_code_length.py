"""Code length: fewer than 6 digits is refused at start-up, fewer than 8 warned about, saying why."""

from __future__ import annotations

import logging

import pytest

from connect_plugin.config import load_settings
from connect_plugin.errors import ConfigError
from tests.support import ROOT, write_config


@pytest.mark.parametrize("length", [4, 5])
def test_codes_shorter_than_six_digits_stop_start_up(tmp_path, keyset, length):
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(tmp_path / "c.toml", keyset, dtmf_length=length), environ={})
    assert caught.value.key == "dtmf_length"
    assert "at least 6" in str(caught.value)


@pytest.mark.parametrize("length", [6, 7])
def test_codes_shorter_than_eight_digits_start_with_a_warning_that_says_why(tmp_path, keyset, length):
    settings = load_settings(write_config(tmp_path / "c.toml", keyset, dtmf_length=length, link_failure_budget=60),
                             environ={})
    warnings = [message for level, message in settings.notices if level == logging.WARNING and "dtmf_length" in message]
    assert len(warnings) == 1
    assert "450 a second" in warnings[0]  # the guess rate measured without a budget
    assert "60 a minute" in warnings[0]  # what the budget caps it at
    assert "8 digits" in warnings[0]


def test_codes_of_eight_digits_or_more_start_quietly(tmp_path, keyset):
    settings = load_settings(write_config(tmp_path / "c.toml", keyset, dtmf_length=8), environ={})
    assert not [message for _, message in settings.notices if "dtmf_length" in message]


def test_the_samples_use_codes_of_at_least_eight_digits():
    import tomllib

    for path in (ROOT / "sample" / "config.toml", ROOT / "tests" / "data" / "reference-config.sample.toml"):
        assert tomllib.loads(path.read_text())["global"]["dtmf_length"] >= 8, path
