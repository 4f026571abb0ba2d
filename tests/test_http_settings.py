"""The HTTP hygiene settings: how they are written, what is refused, and what is warned about."""

from __future__ import annotations

import ipaddress
import logging

import pytest

from connect_plugin.config import load_settings
from connect_plugin.errors import ConfigError
from tests.support import write_config


def settings_with(tmp_path, keyset, environ=None, **values):
    return load_settings(write_config(tmp_path / "c.toml", keyset, **values), environ=environ or {})


def test_defaults_add_nothing_and_trust_no_proxy(tmp_path, keyset):
    settings = settings_with(tmp_path, keyset)
    assert settings.allowed_hosts == ()
    assert settings.trusted_proxies == ()
    assert settings.frame_ancestors == ()
    assert settings.feedback_hosts == ()


def test_hosts_are_kept_in_normal_form_and_networks_parsed(tmp_path, keyset):
    settings = settings_with(tmp_path, keyset, allowed_hosts=["Plugin.Example.NL.", "[2001:DB8::1]", "10.0.0.5"],
                             trusted_proxies=["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"],
                             feedback_hosts=["Auth.Internal"], frame_ancestors=["https://crm.example.nl/"])
    assert settings.allowed_hosts == ("plugin.example.nl", "2001:db8::1", "10.0.0.5")
    assert settings.trusted_proxies == (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("192.0.2.7/32"),
                                        ipaddress.ip_network("2001:db8::/32"))
    assert settings.feedback_hosts == ("auth.internal",)
    assert settings.frame_ancestors == ("https://crm.example.nl",)


def test_lists_can_come_from_the_environment(tmp_path, keyset):
    settings = settings_with(tmp_path, keyset, environ={
        "CONNECT_PLUGIN_TRUSTED_PROXIES": "10.0.0.0/8, 172.16.0.0/12",
        "CONNECT_PLUGIN_ALLOWED_HOSTS": '["agents.example.nl"]',
    })
    assert settings.trusted_proxies == (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("172.16.0.0/12"))
    assert settings.allowed_hosts == ("agents.example.nl",)


@pytest.mark.parametrize(("key", "value"), [
    ("allowed_hosts", ["https://plugin.example.nl"]),
    ("allowed_hosts", ["plugin.example.nl:8443"]),
    ("allowed_hosts", ["[::1]:80"]),
    ("allowed_hosts", ["bad host"]),
    ("allowed_hosts", [7]),
    ("feedback_hosts", ["*"]),
    ("feedback_hosts", ["auth.internal/path"]),
    ("trusted_proxies", ["10.0.0.0/33"]),
    ("trusted_proxies", ["proxy.internal"]),
    ("frame_ancestors", ["crm.example.nl"]),
])
def test_malformed_values_stop_start_up_naming_the_key(tmp_path, keyset, key, value):
    with pytest.raises(ConfigError) as caught:
        settings_with(tmp_path, keyset, **{key: value})
    assert caught.value.key == key
    assert "\n" not in str(caught.value)


def test_turning_a_defence_off_is_warned_about(tmp_path, keyset):
    settings = settings_with(tmp_path, keyset, allowed_hosts=["*"], trusted_proxies=["0.0.0.0/0"])
    warnings = [message for level, message in settings.notices if level == logging.WARNING]
    assert any("allowed_hosts" in message and "DNS rebinding" in message for message in warnings)
    assert any("trusted_proxies" in message and "every address" in message for message in warnings)
