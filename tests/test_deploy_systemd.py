"""The systemd unit (``deploy/connect-plugin.service``), checked by systemd's own tools and replayed.

``systemd-analyze verify`` loads the unit as systemd would (every directive
known and well-formed, every executable present) and ``systemd-analyze
security --offline=true`` scores its sandbox, both without a running systemd.
The unit names ``/opt/connect-plugin/bin/connect-plugin``, which exists on a
server but not here, so the tools check a copy that differs only in that path:
it points at the console script installed beside this Python.  Then the unit's
own commands run against a throwaway configuration: ``migrate`` as
``ExecStartPre``, ``serve`` as ``ExecStart``, stopped with its ``KillSignal``
within its ``TimeoutStopSec``.  Starting it under a real systemd (PID 1) is left
to the server.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support import ROOT, KeySet, free_port

UNIT_PATH = ROOT / "deploy" / "connect-plugin.service"
INSTALLED_SCRIPT = "/opt/connect-plugin/bin/connect-plugin"
CONFIG_PATH = "/etc/connect-plugin/config.toml"
STATE_DIR = "/var/lib/connect-plugin"
PLUGIN_GRACE_SECONDS = 10  # serve lets requests in flight finish for up to 10 s on SIGTERM (README, Command line)


def read_unit(path: Path = UNIT_PATH) -> dict[str, list[tuple[str, str]]]:
    """The unit's sections as (key, value) lists, in order: a key may repeat (``SystemCallFilter=``)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"directive outside a section: {line}"
        key, _, value = line.partition("=")
        current.append((key.strip(), value.strip()))
    return sections


UNIT = read_unit()
SERVICE = UNIT["Service"]


def values(key: str) -> list[str]:
    """Every value given to ``key`` in [Service], in order."""
    return [value for name, value in SERVICE if name == key]


def one(key: str) -> str:
    """The one value of ``key`` in [Service]."""
    [value] = values(key)
    return value


def systemd_analyze() -> str:
    """The ``systemd-analyze`` executable; CI must have it (``.ci/run`` installs Debian's ``systemd``)."""
    found = shutil.which("systemd-analyze")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs systemd-analyze (apt-get install systemd)")
        pytest.skip("no systemd-analyze on this machine (apt-get install systemd)")
    return found


def console_script() -> Path:
    """The ``connect-plugin`` console script of the environment running the tests."""
    script = Path(sys.executable).parent / "connect-plugin"
    assert script.exists(), "install the package (pip install -e .) so that its console script exists"
    return script


def local_copy(directory: Path, text: str | None = None) -> Path:
    """The unit with its executable path pointing at this environment's console script; nothing else changed."""
    text = UNIT_PATH.read_text(encoding="utf-8") if text is None else text
    copy = directory / UNIT_PATH.name
    copy.write_text(text.replace(INSTALLED_SCRIPT, str(console_script())), encoding="utf-8")
    return copy


def analyze(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze <args>``, offline, with no pager."""
    return subprocess.run([systemd_analyze(), "--no-pager", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False, env={**os.environ, "SYSTEMD_LOG_COLOR": "0"})


# --------------------------------------------------------------------------- systemd's own checks


def test_unit_passes_systemd_analyze_verify_without_a_warning(tmp_path):
    copy = local_copy(tmp_path)

    result = analyze("verify", str(copy), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout == ""


def test_verify_really_reads_the_unit(tmp_path):
    # A misspelt directive is a warning, a missing executable an error: both must show, or the check proves nothing.
    text = UNIT_PATH.read_text(encoding="utf-8").replace("ProtectHome=yes", "ProtectHoem=yes")
    copy = local_copy(tmp_path, text.replace(f"ExecStart={INSTALLED_SCRIPT}", "ExecStart=/nonexistent/connect-plugin"))

    result = analyze("verify", str(copy), cwd=tmp_path)

    assert result.returncode != 0
    assert "ProtectHoem" in result.stderr
    assert "/nonexistent/connect-plugin" in result.stderr


def test_sandbox_exposure_scores_at_most_2_of_10(tmp_path):
    copy = local_copy(tmp_path)

    result = analyze("security", "--offline=true", str(copy), cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match, result.stdout
    assert float(match.group(1)) <= 2.0, result.stdout  # systemd calls up to 3.9 "OK"; a default service is 9.6


# --------------------------------------------------------------------------- what the unit says


def test_unit_runs_as_a_dedicated_unprivileged_user():
    assert one("User") == "connect-plugin"
    assert one("Group") == "connect-plugin"
    assert one("NoNewPrivileges") == "yes"
    assert one("CapabilityBoundingSet") == ""  # empty: no capability at all
    assert one("AmbientCapabilities") == ""


def test_unit_sandbox_leaves_only_the_state_directory_writable():
    assert one("ProtectSystem") == "strict"
    assert one("ProtectHome") == "yes"
    assert one("PrivateTmp") == "yes"
    assert one("PrivateDevices") == "yes"
    assert one("StateDirectory") == "connect-plugin"  # /var/lib/connect-plugin, writable by the service
    assert one("StateDirectoryMode") == "0700"
    assert one("ConfigurationDirectory") == "connect-plugin"  # /etc/connect-plugin
    assert "ReadWritePaths" not in dict(SERVICE)


def test_unit_allows_only_internet_and_unix_sockets_and_the_system_service_calls():
    assert set(one("RestrictAddressFamilies").split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    filters = values("SystemCallFilter")
    assert filters[0] == "@system-service"
    assert all(f.startswith("~") for f in filters[1:])  # later lines only take calls away


def test_unit_migrates_before_it_serves_with_the_config_in_etc():
    assert one("ExecStartPre").split() == [INSTALLED_SCRIPT, "migrate", "--config", CONFIG_PATH]
    assert one("ExecStart").split() == [INSTALLED_SCRIPT, "serve", "--config", CONFIG_PATH]
    assert one("Restart") == "on-failure"


def test_unit_stops_with_sigterm_and_waits_longer_than_the_plugins_grace():
    assert one("KillSignal") == "SIGTERM"
    assert int(one("TimeoutStopSec")) > PLUGIN_GRACE_SECONDS


def test_unit_is_installed_into_the_normal_boot():
    assert ("WantedBy", "multi-user.target") in UNIT["Install"]
    assert ("After", "network-online.target postgresql.service") in UNIT["Unit"]


# --------------------------------------------------------------------------- the unit's commands, replayed


def write_server_config(etc: Path, state: Path, keyset: KeySet, port: int) -> Path:
    """What deploy/README.md tells a deployer to put in /etc/connect-plugin: keys as files beside config.toml."""
    etc.mkdir()
    (etc / "plugin-decrypt.pem").write_text(keyset.decrypt.pem)
    (etc / "auth-sign.pub.pem").write_text(keyset.verify.pem)
    config = etc / "config.toml"
    config.write_text(
        "[global]\n"
        'address = "127.0.0.1"\n'
        f"port = {port}\n"
        f'internal_url = "http://127.0.0.1:{port}"\n'
        'phonenumber = "+31850000000"\n'
        "dtmf_length = 10\n"
        "result_length = 40\n"
        f'database_url = "sqlite:///{state}/connect-plugin.sqlite3"\n'
        'link_phone_token = "unit-test-token-0123456789"\n'
        'decryption_privkey = { type = "RSA", key_file = "plugin-decrypt.pem" }\n'
        'signature_pubkey = { type = "RSA", key_file = "auth-sign.pub.pem" }\n'
    )
    return config


def unit_command(key: str, config: Path) -> list[str]:
    """The unit's command line for ``key``, with this environment's script and the test's configuration."""
    command = shlex.split(one(key))
    return [str(console_script()) if part == INSTALLED_SCRIPT else str(config) if part == CONFIG_PATH else part
            for part in command]


def test_unit_commands_migrate_serve_and_stop_gracefully_on_its_kill_signal(tmp_path, keyset):
    state = tmp_path / "state"  # stands in for /var/lib/connect-plugin, which systemd creates
    state.mkdir(mode=0o700)
    port = free_port()
    config = write_server_config(tmp_path / "etc", state, keyset, port)

    migrated = subprocess.run(unit_command("ExecStartPre", config), cwd=state, capture_output=True, text=True,
                              timeout=120, check=False)
    assert migrated.returncode == 0, migrated.stderr
    assert (state / "connect-plugin.sqlite3").exists()

    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(unit_command("ExecStart", config), cwd=state, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60  # a bound against a hang, not a measurement
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.1)
        server.send_signal(getattr(signal, one("KillSignal")))
        status = server.wait(timeout=int(one("TimeoutStopSec")))  # systemd would SIGKILL after this
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        log.close()

    assert status == 0, (tmp_path / "serve.log").read_text()
    assert "stopped" in (tmp_path / "serve.log").read_text()
