"""Secure by default on a network address: open doors are silent only on loopback, else chosen in writing."""

from __future__ import annotations

import logging
import subprocess

import pytest

from connect_plugin.config import OPEN, is_loopback, load_settings
from connect_plugin.errors import ConfigError
from tests.support import cli_command, free_port, write_config

TOKEN = "lambda-shared-secret-0123456789"


@pytest.mark.parametrize("address", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_loopback_addresses_are_recognised(address):
    assert is_loopback(address)


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "10.0.0.5", "192.168.1.2", "plugin.example.nl", ""])
def test_other_addresses_are_not_loopback(address):
    assert not is_loopback(address)


def test_loopback_starts_with_neither_sign_in_nor_link_token_and_says_nothing(tmp_path, keyset):
    settings = load_settings(write_config(tmp_path / "c.toml", keyset, address="127.0.0.1"), environ={})
    assert settings.agent_auth is None
    assert settings.link_phone_token is None
    assert not [m for level, m in settings.notices if level >= logging.WARNING and "none" in m]


def test_network_address_without_agent_auth_is_refused_in_one_line(tmp_path, keyset):
    path = write_config(tmp_path / "c.toml", keyset, address="0.0.0.0", link_phone_token=TOKEN)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert caught.value.key == "agent_auth"
    message = str(caught.value)
    assert "\n" not in message
    assert '"oidc" or "alb"' in message
    assert '"none"' in message
    assert "0.0.0.0" in message


def test_network_address_without_link_phone_token_is_refused_in_one_line(tmp_path, keyset):
    path = write_config(tmp_path / "c.toml", keyset, address="0.0.0.0", agent_auth="none")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert caught.value.key == "link_phone_token"
    assert '"none"' in str(caught.value)


def test_none_written_down_opens_the_doors_with_a_warning_each(tmp_path, keyset):
    path = write_config(tmp_path / "c.toml", keyset, address="0.0.0.0", agent_auth="none", link_phone_token="none")
    settings = load_settings(path, environ={})
    assert settings.agent_auth == OPEN
    assert settings.link_phone_token == OPEN
    assert settings.open_on_purpose == {"agent_auth", "link_phone_token"}
    warnings = [m for level, m in settings.notices if level == logging.WARNING]
    assert any(m.startswith('agent_auth = "none"') for m in warnings)
    assert any(m.startswith('link_phone_token = "none"') for m in warnings)


def test_none_is_warned_on_loopback_too(tmp_path, keyset):
    settings = load_settings(write_config(tmp_path / "c.toml", keyset, agent_auth="none"), environ={})
    assert any(level == logging.WARNING and m.startswith('agent_auth = "none"') for level, m in settings.notices)


def test_environment_can_close_or_open_the_doors(tmp_path, keyset):
    path = write_config(tmp_path / "c.toml", keyset, address="0.0.0.0")
    env = {"ROCKET_AGENT_AUTH": "none", "CONNECT_PLUGIN_LINK_PHONE_TOKEN": TOKEN}
    settings = load_settings(path, environ=env)
    assert settings.agent_auth == OPEN
    assert settings.link_phone_token.reveal() == TOKEN


def test_an_unknown_sign_in_mode_stops_start_up(tmp_path, keyset):
    from connect_plugin.plugins import build_parts, make_manager

    settings = load_settings(write_config(tmp_path / "c.toml", keyset, agent_auth="kerberos"), environ={})
    with pytest.raises(ConfigError) as caught:
        build_parts(settings, make_manager())
    assert caught.value.key == "agent_auth"
    assert "kerberos" in str(caught.value)


def test_serve_on_all_addresses_without_choices_exits_2_with_one_line(tmp_path, keyset):
    path = write_config(tmp_path / "c.toml", keyset, address="0.0.0.0", port=free_port())
    done = subprocess.run([*cli_command(), "serve", "--config", str(path)], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("connect-plugin: configuration error: agent_auth: required when listening on 0.0.0.0")
