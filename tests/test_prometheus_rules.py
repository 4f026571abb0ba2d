"""The Prometheus files in ``docs/prometheus/``, checked by Prometheus' own ``promtool``.

``promtool check rules`` reads the alerts, ``promtool test rules`` runs their
unit tests (when each fires, and when it must not), and ``promtool check
config`` reads the example scrape configuration.  The alerts name metrics:
each name must be one a running plugin serves.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from connect_plugin.metrics import PrometheusMetrics
from tests.support import ROOT

RULES_DIR = ROOT / "docs" / "prometheus"
RULES = RULES_DIR / "connect-plugin.rules.yml"
TOKEN_FILE = "/etc/prometheus/connect-plugin-metrics-token"


@pytest.fixture(scope="module")
def promtool() -> str:
    """The ``promtool`` executable; CI must have it (``.ci/run`` installs Debian's ``prometheus``)."""
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs promtool (apt-get install prometheus)")
        pytest.skip("no promtool on this machine (apt-get install prometheus)")
    return found


def run(*args: str, cwd: Path) -> str:
    done = subprocess.run(args, capture_output=True, timeout=120, cwd=cwd)
    output = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 0, output
    return output


def test_the_alert_rules_are_valid(promtool):
    assert "SUCCESS: 5 rules found" in run(promtool, "check", "rules", str(RULES), cwd=RULES_DIR)


def test_the_alerts_fire_when_they_should_and_only_then(promtool):
    assert "SUCCESS" in run(promtool, "test", "rules", "connect-plugin.rules.test.yml", cwd=RULES_DIR)


def test_the_example_scrape_configuration_is_valid(promtool, tmp_path):
    # Its token file is a path on the Prometheus server: here a copy points at a file that exists.
    token = tmp_path / "metrics-token"
    token.write_text("metrics-token-0123456789abcdef\n")
    config = (RULES_DIR / "prometheus.yml").read_text()
    assert TOKEN_FILE in config
    (tmp_path / "prometheus.yml").write_text(config.replace(TOKEN_FILE, str(token)))
    shutil.copy(RULES, tmp_path / RULES.name)
    output = run(promtool, "check", "config", "prometheus.yml", cwd=tmp_path)
    assert "SUCCESS" in output
    assert "5 rules found" in output


def test_the_alerts_name_metrics_the_plugin_serves():
    served = {family.name for family in PrometheusMetrics(60).registry.collect()}
    served |= {f"{name}_total" for name in served}
    named = set(re.findall(r"\b(connect_plugin_[a-z_]+)", RULES.read_text()))
    assert named
    assert named <= served, named - served
