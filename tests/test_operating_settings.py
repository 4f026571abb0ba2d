"""The operating settings: log_format, metrics and their rules, as the loader takes them."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from connect_plugin.config import load_settings
from connect_plugin.errors import ConfigError
from tests.support import write_config

TOKEN = "metrics-token-0123456789abcdef"
#: A network address needs the guarded doors closed (or opened on purpose) before anything else is looked at.
NETWORK = {"address": "0.0.0.0", "agent_auth": "none", "link_phone_token": "none"}


def settings_with(tmp_path: Any, keyset: Any, **values: Any) -> Any:
    return load_settings(write_config(tmp_path / "settings.toml", keyset, **values), environ={})


def metrics_warnings(settings: Any) -> list[str]:
    return [message for level, message in settings.notices if level == logging.WARNING and "metrics" in message]


def test_the_defaults_are_plain_logs_and_no_metrics(tmp_path, keyset):
    settings = settings_with(tmp_path, keyset)
    assert (settings.log_format, settings.metrics, settings.metrics_port, settings.sentry_dsn) == (
        "plain", False, None, None)


def test_log_format_is_plain_or_json(tmp_path, keyset):
    assert settings_with(tmp_path, keyset, log_format="json").log_format == "json"
    with pytest.raises(ConfigError) as refused:
        settings_with(tmp_path, keyset, log_format="xml")
    assert refused.value.key == "log_format"


def test_metrics_on_a_network_address_without_a_token_are_warned_about_at_every_start(tmp_path, keyset):
    warned = metrics_warnings(settings_with(tmp_path, keyset, metrics=True, **NETWORK))
    assert len(warned) == 1
    assert "without metrics_token" in warned[0]
    assert metrics_warnings(settings_with(tmp_path, keyset, metrics=True, metrics_token=TOKEN, **NETWORK)) == []
    assert metrics_warnings(settings_with(tmp_path, keyset, metrics=True, metrics_port=9464, **NETWORK)) == []
    assert metrics_warnings(settings_with(tmp_path, keyset, metrics=True)) == []  # loopback


def test_metrics_address_needs_a_port_that_is_not_the_main_one(tmp_path, keyset):
    with pytest.raises(ConfigError) as refused:
        settings_with(tmp_path, keyset, metrics=True, metrics_address="10.0.0.5")
    assert refused.value.key == "metrics_port"
    with pytest.raises(ConfigError) as refused:
        settings_with(tmp_path, keyset, metrics=True, port=9000, metrics_port=9000)
    assert refused.value.key == "metrics_port"
    with pytest.raises(ConfigError) as refused:
        settings_with(tmp_path, keyset, metrics=True, metrics_port=9464, metrics_address="10.0.0.5:9464")
    assert refused.value.key == "metrics_address"
    own = settings_with(tmp_path, keyset, metrics=True, metrics_port=9464, metrics_address="[::1]")
    assert (own.metrics_address, own.metrics_port) == ("::1", 9464)


def test_metrics_settings_without_metrics_are_ignored_with_a_warning(tmp_path, keyset):
    settings = settings_with(tmp_path, keyset, metrics_port=9464, metrics_token=TOKEN)
    assert metrics_warnings(settings) == ["metrics_port: not used without metrics = true; ignored",
                                          "metrics_token: not used without metrics = true; ignored"]


def test_metrics_token_is_a_secret_of_some_length(tmp_path, keyset):
    with pytest.raises(ConfigError) as refused:
        settings_with(tmp_path, keyset, metrics=True, metrics_token="short")
    assert refused.value.key == "metrics_token"
    assert "short" not in str(refused.value)
    settings = settings_with(tmp_path, keyset, metrics=True, metrics_token=TOKEN, sentry_dsn="https://k@s.example/1")
    assert TOKEN not in repr(settings)
    assert "k@s.example" not in repr(settings)


@pytest.mark.parametrize(("cpus", "quota", "workers"), [
    (1, None, 0), (2, None, 1), (3, None, 2), (16, None, 4),
    (16, "150000 100000", 1),  # a container limited to 1.5 CPUs: 2 usable
    (16, "100000 100000", 0),  # limited to one CPU: the event loop's
    (16, "max 100000", 4),  # cgroup v2 without a limit
])
def test_crypto_workers_by_default_leave_one_usable_cpu_to_the_event_loop(
        tmp_path, keyset, monkeypatch, cpus, quota, workers):
    from connect_plugin.config import settings as declared

    cgroup = tmp_path / "cgroup"
    cgroup.mkdir()
    if quota is not None:
        (cgroup / "cpu.max").write_text(quota + "\n")
    real_quota = declared._cgroup_cpu_quota
    monkeypatch.setattr(declared, "_cgroup_cpu_quota", lambda: real_quota(cgroup))
    monkeypatch.setattr(declared.os, "sched_getaffinity", lambda _pid: set(range(cpus)))
    assert settings_with(tmp_path, keyset).crypto_worker_count == workers
    assert settings_with(tmp_path, keyset, crypto_workers=3).crypto_worker_count == 3


def test_a_cgroup_v1_cpu_quota_counts_too(tmp_path):
    from connect_plugin.config.settings import _cgroup_cpu_quota

    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("250000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert _cgroup_cpu_quota(tmp_path) == 2.5
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert _cgroup_cpu_quota(tmp_path) is None


@pytest.mark.parametrize("value", [-1, 65, "many", 1.5])
def test_crypto_workers_out_of_range_stops_start_up(tmp_path, keyset, value):
    with pytest.raises(ConfigError, match="crypto_workers"):
        settings_with(tmp_path, keyset, crypto_workers=value)
