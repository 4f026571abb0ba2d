"""``connect-plugin demo``: the whole flow, printed step by step, on a throwaway plugin or a running one."""

from __future__ import annotations

import os
import re
import socket
import subprocess
from pathlib import Path

import pytest
from Crypto.PublicKey import ECC

from connect_plugin import keys
from tests.support import KeySet, PluginProcess, cli_command, write_config

STEPS = (
    "> POST /start_communication",
    "> POST /session_result/",
    "> POST /link_phone",
    "> GET /session_info/demo-call-",
    "> POST /end_call",
)
LINK_TOKEN = "demo-test-link-token-0123456789"


def run_demo(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``connect-plugin demo --no-wait ...`` with its temporary files under ``tmp_path``."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    env = {k: v for k, v in env.items() if not k.startswith(("CONNECT_PLUGIN_", "ROCKET_"))}
    return subprocess.run([*cli_command(), "demo", "--no-wait", *args], capture_output=True, text=True, env=env,
                          stdin=subprocess.DEVNULL, timeout=120, check=False)


def long_base64url_runs(text: str) -> list[str]:
    """Stretches that could be a whole token (a JWE is hundreds of characters)."""
    return re.findall(r"[A-Za-z0-9_\-.]{120,}", text)


def assert_whole_flow_shown(out: str) -> None:
    positions = [out.index(step) for step in STEPS]
    assert positions == sorted(positions)
    assert out.count("< 200 OK") == 5
    assert '"status": "succes"' in out
    assert '"email": "jane@example.com"' in out
    code = re.search(r'"client_url": "tel:\+31850000000,(\d+)"', out).group(1)
    assert f'"dtmf": "{code}"' in out  # the code the caller types is the one after the comma
    assert re.search(r"/attribute-ui/\?demo-call-[0-9a-f]{8}\n", out)
    assert "…(" in out
    assert long_base64url_runs(out) == []


def test_demo_shows_the_whole_flow_on_a_throwaway_plugin_and_cleans_up(tmp_path):
    done = run_demo(tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert_whole_flow_shown(out)
    url = re.search(r"Started a throwaway plugin at (http://127\.0\.0\.1:(\d+))", out)
    folder = re.search(r"Stopped the throwaway plugin and removed (\S+)\.", out).group(1)
    assert Path(folder).parent == tmp_path
    assert not Path(folder).exists()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", int(url.group(2))), 2):
        pass  # nothing listens there any more
    assert done.stderr == ""


@pytest.fixture
def running_plugin(tmp_path: Path, keyset: KeySet):
    """A ``connect-plugin serve`` process with the bearer token, and the authentication plugin's key file."""
    config = write_config(tmp_path / "running.toml", keyset, database_url=f"sqlite:///{tmp_path / 'r.sqlite3'}",
                          link_phone_token=LINK_TOKEN)
    sign = tmp_path / "auth-sign.key.pem"
    sign.write_text(keyset.sign.pem)
    process = PluginProcess(config, log_dir=tmp_path).start()
    try:
        yield process, config, sign
    finally:
        process.terminate()


def test_demo_uses_a_running_plugin_with_its_config_and_signing_key(tmp_path, running_plugin):
    process, config, sign = running_plugin
    work = tmp_path / "work"
    work.mkdir()
    done = run_demo("--url", process.base_url, "--config", str(config), "--sign-key", str(sign), tmp_path=work)
    assert done.returncode == 0, done.stdout + done.stderr
    assert_whole_flow_shown(done.stdout)
    assert "> Authorization: Bearer <link_phone_token>" in done.stdout
    assert LINK_TOKEN not in done.stdout
    assert "throwaway" not in done.stdout
    assert list(work.iterdir()) == []


def test_demo_with_url_and_keys_as_files(tmp_path, running_plugin, keyset):
    process, _config, sign = running_plugin
    encrypt = tmp_path / "plugin-encrypt.pub.pem"
    encrypt.write_text(keyset.encrypt.pem)
    done = run_demo("--url", process.base_url, "--encrypt-key", str(encrypt), "--sign-key", str(sign),
                    "--link-token", LINK_TOKEN, tmp_path=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert_whole_flow_shown(done.stdout)


def test_demo_with_url_but_no_keys_says_which_it_needs(tmp_path):
    done = run_demo("--url", "http://127.0.0.1:9", tmp_path=tmp_path)
    assert done.returncode == 2
    assert "--sign-key" in done.stderr
    assert "--config" in done.stderr
    assert done.stdout == ""


def test_demo_stops_at_a_step_the_plugin_refuses(tmp_path, running_plugin):
    process, config, _sign = running_plugin
    stranger = tmp_path / "stranger.key.pem"
    stranger.write_text(keys.PrivateKey("EC", ECC.generate(curve="P-256")).pem)
    done = run_demo("--url", process.base_url, "--config", str(config), "--sign-key", str(stranger),
                    tmp_path=tmp_path)
    assert done.returncode == 1
    assert "< 400 Bad Request" in done.stdout
    assert "The demo stopped: session_result: expected 200, got 400." in done.stdout
