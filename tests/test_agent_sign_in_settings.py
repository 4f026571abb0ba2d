"""The agent sign-in settings: what each mode needs, refused in one line naming the key, and secrets in files."""

from __future__ import annotations

import logging
import subprocess

import pytest

from connect_plugin.agent_auth.alb import AlbSignIn
from connect_plugin.agent_auth.oidc import OidcSignIn
from connect_plugin.config import load_settings
from connect_plugin.errors import ConfigError
from connect_plugin.plugins import build_parts, make_manager
from tests.sign_in_support import ALB_ARN
from tests.support import cli_command, free_port, write_config

COOKIE_SECRET = "c" * 40
OIDC = {"agent_auth": "oidc", "oidc_issuer": "https://login.example.nl/tenant/v2.0", "oidc_client_id": "plugin",
        "oidc_client_secret": "client-secret", "agent_cookie_secret": COOKIE_SECRET,
        "oidc_allowed_groups": ["agents"], "external_url": "https://agents.example.nl"}
ALB = {"agent_auth": "alb", "alb_signer_arn": ALB_ARN, "oidc_allowed_domains": ["gemeente.nl"]}


def load(tmp_path, keyset, environ=None, **settings):
    return load_settings(write_config(tmp_path / "c.toml", keyset, **settings), environ=environ or {})


def refused(tmp_path, keyset, **settings) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, keyset, **settings)
    assert "\n" not in str(caught.value)
    return caught.value


def test_a_complete_oidc_configuration_builds_the_oidc_sign_in(tmp_path, keyset):
    settings = load(tmp_path, keyset, **OIDC)
    part = build_parts(settings, make_manager()).agent_auth
    assert isinstance(part, OidcSignIn)
    assert part.redirect_uri == "https://agents.example.nl/agent/callback"
    assert part.cookies.secure
    assert COOKIE_SECRET not in repr(settings) + repr(part)
    assert "client-secret" not in repr(settings) + repr(part)


def test_a_complete_alb_configuration_builds_the_alb_sign_in(tmp_path, keyset):
    part = build_parts(load(tmp_path, keyset, **ALB), make_manager()).agent_auth
    assert isinstance(part, AlbSignIn)
    assert part.keys.url("abc") == "https://public-keys.auth.elb.eu-west-1.amazonaws.com/abc"


@pytest.mark.parametrize("key", ["oidc_issuer", "oidc_client_id", "oidc_client_secret", "agent_cookie_secret"])
def test_oidc_without_one_of_its_settings_is_refused_naming_it(tmp_path, keyset, key):
    error = refused(tmp_path, keyset, **{**OIDC, key: None})
    assert error.key == key
    assert 'required with agent_auth = "oidc"' in error.problem


def test_alb_without_the_signer_arn_is_refused(tmp_path, keyset):
    assert refused(tmp_path, keyset, **{**ALB, "alb_signer_arn": None}).key == "alb_signer_arn"


@pytest.mark.parametrize("settings", [OIDC, ALB])
def test_a_mode_without_a_rule_for_who_may_see_data_is_refused(tmp_path, keyset, settings):
    bare = {**settings, "oidc_allowed_groups": None, "oidc_allowed_domains": None}
    error = refused(tmp_path, keyset, **bare)
    assert error.key == "oidc_allowed_groups"
    assert "oidc_allow_any_agent = true" in error.problem
    assert load(tmp_path, keyset, **bare, oidc_allow_any_agent=True).oidc_allow_any_agent


def test_oidc_needs_https_for_browsers_except_on_loopback(tmp_path, keyset):
    error = refused(tmp_path, keyset, **{**OIDC, "external_url": "http://agents.example.nl"})
    assert error.key == "external_url"
    assert "https" in error.problem
    assert load(tmp_path, keyset, **{**OIDC, "external_url": None}, internal_url="http://127.0.0.1:8000")


def test_the_issuer_must_be_https_except_on_loopback(tmp_path, keyset):
    assert refused(tmp_path, keyset, **{**OIDC, "oidc_issuer": "http://login.example.nl"}).key == "oidc_issuer"
    assert load(tmp_path, keyset, **{**OIDC, "oidc_issuer": "http://127.0.0.1:9000"}).oidc_issuer


def test_a_short_cookie_secret_is_refused(tmp_path, keyset):
    error = refused(tmp_path, keyset, **{**OIDC, "agent_cookie_secret": "short"})
    assert error.key == "agent_cookie_secret"
    assert error.problem == "must be at least 32 characters"


def test_secrets_can_come_from_files_but_not_from_both(tmp_path, keyset):
    (tmp_path / "cookie.txt").write_text(COOKIE_SECRET + "\n")
    (tmp_path / "client.txt").write_text("  from-a-file  \n")
    files = {**OIDC, "agent_cookie_secret": None, "oidc_client_secret": None,
             "agent_cookie_secret_file": "cookie.txt", "oidc_client_secret_file": str(tmp_path / "client.txt")}
    settings = load(tmp_path, keyset, **files)
    assert settings.agent_cookie_secret.reveal() == COOKIE_SECRET
    assert settings.oidc_client_secret.reveal() == "from-a-file"
    both = refused(tmp_path, keyset, **{**files, "agent_cookie_secret": COOKIE_SECRET})
    assert both.key == "agent_cookie_secret_file"
    missing = refused(tmp_path, keyset, **{**files, "agent_cookie_secret_file": "nowhere.txt"})
    assert missing.key == "agent_cookie_secret_file"
    (tmp_path / "short.txt").write_text("too short")
    assert refused(tmp_path, keyset, **{**files, "agent_cookie_secret_file": "short.txt"}).key == (
        "agent_cookie_secret_file")


def test_the_client_secret_can_come_from_the_environment(tmp_path, keyset):
    settings = load(tmp_path, keyset, environ={"CONNECT_PLUGIN_OIDC_CLIENT_SECRET": "from-env"},
                    **{**OIDC, "oidc_client_secret": None})
    assert settings.oidc_client_secret.reveal() == "from-env"


@pytest.mark.parametrize("arn", ["arn:aws:elasticloadbalancing:eu-west-1:123:loadbalancer/app/x/1",
                                 "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/x/1",
                                 "arn:aws:iam::123456789012:role/x", "not an arn"])
def test_a_malformed_signer_arn_is_refused(tmp_path, keyset, arn):
    assert refused(tmp_path, keyset, **{**ALB, "alb_signer_arn": arn}).key == "alb_signer_arn"


@pytest.mark.parametrize("url", ["https://keys.example/", "https://keys.example/{kid}/{account}",
                                 "http://keys.example/{kid}"])
def test_a_key_url_needs_kid_and_https(tmp_path, keyset, url):
    assert refused(tmp_path, keyset, **{**ALB, "alb_key_url": url}).key == "alb_key_url"


def test_a_load_balancer_outside_the_aws_partition_needs_its_key_url(tmp_path, keyset):
    gov = "arn:aws-us-gov:elasticloadbalancing:us-gov-west-1:123456789012:loadbalancer/app/agents/0123abcd"
    assert refused(tmp_path, keyset, **{**ALB, "alb_signer_arn": gov}).key == "alb_key_url"
    settings = load(tmp_path, keyset, **{**ALB, "alb_signer_arn": gov,
                                         "alb_key_url": "https://keys.us-gov.example/{region}/{kid}"})
    assert AlbSignIn(settings).keys.url("k") == "https://keys.us-gov.example/us-gov-west-1/k"


def test_domains_and_scopes_are_normalised(tmp_path, keyset):
    settings = load(tmp_path, keyset, **{**OIDC, "oidc_allowed_domains": ["@Gemeente.NL", "ggd.example"],
                                         "oidc_scopes": "email groups openid"})
    assert settings.oidc_allowed_domains == ("gemeente.nl", "ggd.example")
    assert settings.oidc_scopes == ("openid", "email", "groups")
    assert refused(tmp_path, keyset, **{**OIDC, "oidc_allowed_domains": ["not a domain"]}).key == (
        "oidc_allowed_domains")


def test_settings_of_another_mode_are_warned_about(tmp_path, keyset):
    settings = load(tmp_path, keyset, **{**ALB, "oidc_issuer": "https://login.example.nl"})
    assert (logging.WARNING, 'oidc_issuer: not used with agent_auth = "alb"; ignored') in settings.notices


def test_serve_with_oidc_and_no_issuer_exits_2_with_one_line(tmp_path, keyset):
    path = write_config(tmp_path / "c.toml", keyset, port=free_port(), **{**OIDC, "oidc_issuer": None})
    done = subprocess.run([*cli_command(), "serve", "--config", str(path)], capture_output=True, text=True,
                          timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        'connect-plugin: configuration error: oidc_issuer: required with agent_auth = "oidc"']
