"""The ``connect-plugin`` command as a deployer runs it: real processes, real signals, real databases."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from connect_plugin import migrate
from tests.support import ROOT, Api, PluginProcess, cli_command, dtmf_of, write_config

REFERENCE_SAMPLE = Path(__file__).parent / "data" / "reference-config.sample.toml"
CONTACT = "3e9b8c1d-6a5f-4d2e-b7c0-1f2e3d4c5b6a"


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        [*cli_command(), *args], capture_output=True, text=True, timeout=60,
        env={**os.environ, **(env or {})}, cwd=cwd,
    )


@pytest.mark.parametrize("command", [[], ["serve"], ["migrate"], ["cleanup"], ["token"]])
def test_every_command_has_help(command):
    result = run_cli(*command, "--help")
    assert result.returncode == 0
    assert "usage: connect-plugin" in result.stdout


def test_bad_setting_stops_start_up_with_one_line_naming_the_key_and_status_2(tmp_path, keyset):
    config = write_config(tmp_path / "c.toml", keyset, dtmf_length="many")
    result = run_cli("serve", "--config", str(config))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == ["connect-plugin: configuration error: dtmf_length: must be a whole number"]


def test_missing_key_stops_start_up_without_showing_key_material(tmp_path, keyset):
    config = write_config(tmp_path / "c.toml", keyset)
    config.write_text(config.read_text().replace('type = "RSA"', 'type = "DSA"', 1))
    result = run_cli("serve", "--config", str(config))
    assert result.returncode == 2
    assert "decryption_privkey.type" in result.stderr
    assert "PRIVATE KEY" not in result.stderr + result.stdout


def sample_copy(tmp_path: Path) -> Path:
    """The repository's sample folder, copied so that its SQLite file lands in tmp_path."""
    target = tmp_path / "sample"
    shutil.copytree(ROOT / "sample", target, ignore=shutil.ignore_patterns("var"))
    return target / "config.toml"


@pytest.mark.gen_test(timeout=60)
async def test_serve_with_sample_config_runs_the_flow_and_stops_on_sigterm(tmp_path, mint):
    config = sample_copy(tmp_path)
    server = PluginProcess(config).start()
    try:
        api = Api(server.base_url)
        started = await api.start("report_move")
        assert started.status == 200
        assert (await api.link(dtmf_of(started), CONTACT)).status == 200
        assert (await api.info(CONTACT)).json == {"purpose": "report_move", "auth_result": None}
    finally:
        status = server.terminate()
    assert status == 0
    assert "stopped" in server.output()
    assert (config.parent / "var" / "connect-plugin.sqlite3").exists()


@pytest.mark.gen_test(timeout=60)
async def test_reference_sample_config_starts_unchanged_and_serves_with_its_database_overridden(
    tmp_path, postgres_url
):
    down = PluginProcess(REFERENCE_SAMPLE, log_dir=tmp_path).start()
    try:
        health = await Api(down.base_url).call("GET", "/health")
        assert health.status == 503  # its database host does not exist here: serving 503 until it does
    finally:
        assert down.terminate() == 0
    database = postgres_url.replace("postgresql://", "postgres://")
    override = {"ROCKET_DATABASES": f'{{session = {{url = "{database}"}}}}'}
    up = PluginProcess(REFERENCE_SAMPLE, env=override, log_dir=tmp_path).start()
    try:
        api = Api(up.base_url)
        started = await api.start("report_move")
        assert started.status == 200
        assert started.json["client_url"].startswith("tel:,")
        assert started.json["attr_url"].startswith("http://comm-amazon-connect:8000/session_result/")
    finally:
        assert up.terminate() == 0


def test_serve_refuses_a_postgres_database_not_at_head_naming_the_migrate_command(tmp_path, keyset, empty_postgres):
    config = write_config(tmp_path / "c.toml", keyset, database_url=empty_postgres, port=0)
    result = run_cli("serve", "--config", str(config))
    assert result.returncode == 2
    assert "connect-plugin migrate" in result.stderr
    migrated = run_cli("migrate", "--config", str(config))
    assert migrated.returncode == 0, migrated.stderr
    assert f"revision {migrate.head_revision()}" in migrated.stdout


def test_migrate_brings_a_new_sqlite_file_to_head(tmp_path, keyset):
    db = tmp_path / "fresh.sqlite3"
    config = write_config(tmp_path / "c.toml", keyset, database_url=f"sqlite:///{db}")
    result = run_cli("migrate", "--config", str(config))
    assert result.returncode == 0, result.stderr
    import sqlite3

    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (migrate.head_revision(),)


@pytest.mark.gen_test(timeout=60)
async def test_cleanup_command_deletes_idle_sessions(tmp_path, keyset, database_url):
    config = write_config(tmp_path / "c.toml", keyset, database_url=database_url, session_ttl=1)
    server = PluginProcess(config).start()
    try:
        api = Api(server.base_url)
        dtmf = dtmf_of(await api.start("report_move"))
    finally:
        server.terminate()
    await asyncio.sleep(1.2)
    result = await asyncio.to_thread(run_cli, "cleanup", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "deleted 1 idle session(s)" in result.stdout
    server = PluginProcess(config).start()
    try:
        assert (await Api(server.base_url).link(dtmf, CONTACT)).status == 404
    finally:
        server.terminate()


@pytest.mark.gen_test(timeout=60)
async def test_sigterm_lets_an_in_flight_request_finish(tmp_path, keyset, postgres_url):
    import asyncpg

    config = write_config(tmp_path / "c.toml", keyset, database_url=postgres_url, database_timeout=15.0)
    server = PluginProcess(config).start()
    blocker = await asyncpg.connect(postgres_url.replace("postgresql://", "postgres://"))
    try:
        # Hold the table so that the next start_communication waits inside the database.
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("LOCK TABLE comm_session IN ACCESS EXCLUSIVE MODE")
        request = asyncio.ensure_future(Api(server.base_url).start("report_move"))
        await asyncio.sleep(0.5)
        assert not request.done()
        server.proc.send_signal(15)
        await asyncio.sleep(0.5)
        assert server.proc.poll() is None, "the server must wait for the request in flight"
        await tx.rollback()
        response = await request
        assert response.status == 200
        began = time.monotonic()
        while server.proc.poll() is None and time.monotonic() - began < 15:
            await asyncio.sleep(0.05)
        assert server.proc.returncode == 0
    finally:
        await blocker.close()
        server.kill()


@pytest.mark.gen_test(timeout=60)
async def test_token_minted_by_the_cli_round_trips_through_the_running_server(tmp_path):
    config = sample_copy(tmp_path)
    keys_dir = config.parent / "keys"
    server = PluginProcess(config, log_dir=tmp_path)
    server.env["CONNECT_PLUGIN_INTERNAL_URL"] = server.base_url
    server.start()
    try:
        api = Api(server.base_url)
        started = (await api.start("report_move")).json
        minted = await asyncio.to_thread(
            run_cli, "token", "--encrypt-key", str(keys_dir / "plugin-encrypt.pub.pem"),
            "--sign-key", str(keys_dir / "auth-sign.key.pem"), "--attr", "email=jane@example.com",
            "--attr", "fullname=Jane Doe", "--post", started["attr_url"],
        )
        assert minted.returncode == 0, minted.stderr
        assert "200" in minted.stdout
        await api.link(dtmf_of(started), CONTACT)
        info = (await api.info(CONTACT)).json
        assert info["auth_result"] == {
            "status": "succes", "attributes": {"email": "jane@example.com", "fullname": "Jane Doe"},
        }
        token = (await asyncio.to_thread(
            run_cli, "token", "--encrypt-key", str(keys_dir / "plugin-encrypt.pub.pem"),
            "--sign-key", str(keys_dir / "auth-sign.key.pem"), "--attr", "email=jane@example.com",
        )).stdout.strip()
        decoded = await asyncio.to_thread(run_cli, "token", "--decode", "--config", str(config), token)
        assert decoded.returncode == 0, decoded.stderr
        assert "jane@example.com" in decoded.stdout
    finally:
        server.terminate()


@pytest.mark.gen_test(timeout=60)
async def test_debug_log_holds_no_token_code_or_attribute_value(tmp_path, keyset, mint, database_url):
    config = write_config(tmp_path / "debug.toml", keyset, database_url=database_url, log_level="debug")
    server = PluginProcess(config, log_dir=tmp_path).start()
    secret_value = "Geheime-Waarde-5531"
    contact = "feedc0de-0000-4000-8000-00000000d3b6"
    try:
        api = Api(server.base_url)
        started = (await api.start("report_move")).json
        token = mint(attributes={"fullname": secret_value})
        await api.post_result(started["attr_url"], token)
        await api.link(dtmf_of(started), contact)
        assert (await api.info(contact)).json["auth_result"]["attributes"]["fullname"] == secret_value
        await api.post_result(started["attr_url"], token)  # a refusal is logged too
    finally:
        server.terminate()
    log = server.output()
    assert "DEBUG" in log
    for secret in (secret_value, token[:40], token.split(".")[3][:20], dtmf_of(started),
                   started["attr_url"].rsplit("/", 1)[1], contact):
        assert secret not in log


def test_version_is_printed():
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip().startswith("connect-plugin ")
    assert result.stdout.strip() != "connect-plugin unknown (not installed)"


@pytest.mark.parametrize("command", ["migrate", "cleanup"])
@pytest.mark.parametrize(
    ("database", "reason"),
    [
        ("postgresql://postgres@127.0.0.1:{port}/test", "ConnectionRefusedError"),
        ("postgresql://nosuchrole@127.0.0.1:5432/test", 'role "nosuchrole" does not exist'),
    ],
)
def test_unreachable_or_refusing_database_is_one_line_not_a_traceback(tmp_path, keyset, postgres_server, command,
                                                                      database, reason):
    from tests.support import free_port

    config = write_config(tmp_path / "c.toml", keyset, database_url=database.format(port=free_port()),
                          log_level="off")
    result = run_cli(command, "--config", str(config))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("connect-plugin: database unavailable: ")
    assert reason in lines[0]
    assert "Traceback" not in result.stderr
