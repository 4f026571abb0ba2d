"""DTMF codes at rest: stored as HMAC-SHA256 under a server secret, so a leaked database reveals no live code."""

from __future__ import annotations

import hashlib
import hmac
import stat
from pathlib import Path

import pytest
from Crypto.PublicKey import RSA

from connect_plugin import codes, keys
from connect_plugin.config import load_settings
from connect_plugin.errors import ConfigError
from connect_plugin.stores.engine import make_engine, sqlite_path
from tests.support import Api, KeySet, PluginProcess, dtmf_of, rsa_keyset, write_config

CONTACT = "c0de5ec7-0000-4000-8000-000000000001"
SECRET = "a-code-secret-of-more-than-32-characters"


def hmac_hex(secret: bytes, code: str) -> str:
    return hmac.new(secret, code.encode(), hashlib.sha256).hexdigest()


async def table_text(url: str) -> str:
    """Every value of every row of the plugin's tables, as text: what a leaked database shows."""
    from sqlalchemy import select

    from connect_plugin.stores.schema import metadata

    engine = make_engine(url, pool_size=1, timeout=5)
    try:
        async with engine.connect() as conn:
            rows = [row for table in metadata.sorted_tables for row in (await conn.execute(select(table))).all()]
    finally:
        await engine.dispose()
    return "\n".join(" ".join(str(value) for value in row) for row in rows)


async def stored_code_keys(url: str) -> set[str]:
    from sqlalchemy import select

    from connect_plugin.stores.schema import session_table

    engine = make_engine(url, pool_size=1, timeout=5)
    try:
        async with engine.connect() as conn:
            return set((await conn.execute(select(session_table.c.code_key))).scalars())
    finally:
        await engine.dispose()


@pytest.mark.gen_test
async def test_a_leaked_database_holds_no_dtmf_code(plugin_factory, mint, database_url):
    plugin = await plugin_factory()
    started = [(await plugin.api.start("report_move")).json for _ in range(10)]
    await plugin.api.post_result(started[0]["attr_url"], mint())
    await plugin.api.link(dtmf_of(started[0]), CONTACT)
    dtmfs = [dtmf_of(s) for s in started]
    leaked = await table_text(database_url)
    path = sqlite_path(database_url) if database_url.startswith("sqlite") else None
    if path is not None:  # the file itself, and its write-ahead log
        leaked += "".join(p.read_bytes().decode("latin-1") for p in path.parent.glob(path.name + "*")
                          if not p.name.endswith(codes.SECRET_FILE_SUFFIX))
    assert not [code for code in dtmfs if code in leaked]
    secret = codes.code_secret_for(plugin.runtime.settings)
    assert await stored_code_keys(database_url) == {hmac_hex(secret, code) for code in dtmfs}


@pytest.mark.gen_test
async def test_on_sqlite_the_secret_is_a_file_beside_the_database_readable_by_its_owner_only(plugin_factory,
                                                                                             sqlite_url):
    plugin = await plugin_factory(database_url=sqlite_url)
    dtmf = dtmf_of(await plugin.api.start("report_move"))
    database = sqlite_path(sqlite_url)
    secret_file = database.with_name(database.name + ".code-secret")
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    secret = secret_file.read_text().strip().encode()
    assert len(secret) >= 32
    assert await stored_code_keys(sqlite_url) == {hmac_hex(secret, dtmf)}


@pytest.mark.gen_test(timeout=120)
async def test_processes_on_one_sqlite_file_share_its_secret_and_a_restart_keeps_it(tmp_path, keyset, sqlite_url):
    config = write_config(tmp_path / "c.toml", keyset, database_url=sqlite_url)
    a = PluginProcess(config, log_dir=tmp_path).start(wait=False)
    b = PluginProcess(config, log_dir=tmp_path).start(wait=False)  # both make the secret at once
    try:
        a.wait_listening()
        b.wait_listening()
        dtmf = dtmf_of(await Api(a.base_url).start("report_move"))
        other = dtmf_of(await Api(b.base_url).start("report_move"))
        assert (await Api(b.base_url).link(dtmf, CONTACT)).status == 200
        a.terminate()
        restarted = PluginProcess(config, log_dir=tmp_path).start()
        try:
            assert (await Api(restarted.base_url).link(other, "c0de5ec7-0000-4000-8000-000000000002")).status == 200
        finally:
            restarted.terminate()
    finally:
        a.terminate()
        b.terminate()


@pytest.mark.gen_test
async def test_a_configured_secret_is_the_key_of_the_codes(plugin_factory, database_url):
    plugin = await plugin_factory(code_secret=SECRET)
    dtmf = dtmf_of(await plugin.api.start("report_move"))
    assert await stored_code_keys(database_url) == {hmac_hex(SECRET.encode(), dtmf)}


@pytest.mark.gen_test
async def test_a_secret_in_a_file_is_the_key_of_the_codes(plugin_factory, database_url, tmp_path):
    (tmp_path / "secret.txt").write_text(SECRET + "\n")
    plugin = await plugin_factory(code_secret={"file": "secret.txt"})
    dtmf = dtmf_of(await plugin.api.start("report_move"))
    assert await stored_code_keys(database_url) == {hmac_hex(SECRET.encode(), dtmf)}


@pytest.mark.parametrize(("value", "key"), [
    ("too-short-a-secret", "code_secret"),
    ({"file": "missing.txt"}, "code_secret.file"),
    ({"path": "secret.txt"}, "code_secret"),
])
def test_a_bad_code_secret_stops_start_up_naming_the_key(tmp_path, keyset, value, key):
    config = write_config(tmp_path / "c.toml", keyset, code_secret=value)
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    assert caught.value.key == key
    assert "too-short" not in str(caught.value)


def test_without_a_file_the_secret_is_derived_from_the_decryption_key_whatever_its_pem_form():
    key = RSA.generate(2048)
    pkcs1 = keys.load_private_key("RSA", key.export_key(format="PEM", pkcs=1).decode())
    pkcs8 = keys.load_private_key("RSA", key.export_key(format="PEM", pkcs=8).decode())
    derived = codes.code_secret(None, None, pkcs1)
    assert derived == codes.code_secret(None, None, pkcs8)
    assert len(derived) == 32
    assert derived != codes.code_secret(None, None, keys.PrivateKey("RSA", RSA.generate(2048)))


@pytest.mark.gen_test
async def test_on_postgres_rotating_the_decryption_key_unlinks_the_codes_of_live_sessions(plugin_factory,
                                                                                        postgres_url):
    before = await plugin_factory(database_url=postgres_url)
    dtmf = dtmf_of(await before.api.start("report_move"))
    secret = codes.derived_secret(rsa_keyset().decrypt)
    assert await stored_code_keys(postgres_url) == {hmac_hex(secret, dtmf)}
    rotated = KeySet(keys.PrivateKey("RSA", RSA.generate(2048)), rsa_keyset().sign)
    after = await plugin_factory(database_url=postgres_url, keys=rotated)
    assert (await after.api.link(dtmf, CONTACT)).status == 404  # as documented: set code_secret to rotate freely


def test_the_secret_file_is_never_in_git():
    ignored = (Path(__file__).resolve().parent.parent / ".gitignore").read_text().split()
    assert "*.code-secret" in ignored
