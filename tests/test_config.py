"""Settings: the reference's file form, profiles, environment overrides, and refusals that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from connect_plugin.config import load_settings
from connect_plugin.errors import ConfigError
from tests.support import write_config

DATA = Path(__file__).parent / "data"
REFERENCE_SAMPLE = DATA / "reference-config.sample.toml"


def test_reference_sample_config_loads_unchanged():
    settings = load_settings(REFERENCE_SAMPLE, environ={})
    assert settings.internal_url == "http://comm-amazon-connect:8000"
    assert (settings.dtmf_length, settings.result_length, settings.phonenumber) == (10, 32, "")
    assert settings.database_url == "postgresql://tg@comm-amazon-psql:5432/tg"
    assert settings.decryption_key.kind == settings.signature_key.kind == "RSA"
    assert (settings.address, settings.port) == ("127.0.0.1", 8000)


def test_config_file_is_found_through_rocket_config_and_connect_plugin_config(tmp_path, keyset):
    ours = write_config(tmp_path / "ours.toml", keyset, dtmf_length=8)
    theirs = write_config(tmp_path / "theirs.toml", keyset, dtmf_length=6)
    assert load_settings(environ={"ROCKET_CONFIG": str(theirs)}).dtmf_length == 6
    both = {"ROCKET_CONFIG": str(theirs), "CONNECT_PLUGIN_CONFIG": str(ours)}
    assert load_settings(environ=both).dtmf_length == 8
    assert load_settings(theirs, environ=both).dtmf_length == 6  # --config wins


def test_global_overrides_profile_overrides_default(tmp_path, keyset):
    path = write_config(tmp_path / "c.toml", keyset)
    text = path.read_text()
    profiles = (
        "[default]\nport = 1111\nsession_ttl = 100\ncleanup_interval = 10\n\n"
        "[debug]\nport = 2222\n\n[release]\nsession_ttl = 200\n\n"
    )
    path.write_text(profiles + text.replace("[global]", "[global]\ncleanup_interval = 30", 1))
    release = load_settings(path, environ={})
    assert (release.port, release.session_ttl, release.cleanup_interval) == (1111, 200, 30)
    debug = load_settings(path, environ={"ROCKET_PROFILE": "debug"})
    assert (debug.port, debug.session_ttl) == (2222, 100)


def test_environment_overrides_file_and_connect_plugin_prefix_wins(tmp_path, keyset):
    path = write_config(tmp_path / "c.toml", keyset, port=8000)
    env = {"ROCKET_PORT": "9000", "ROCKET_DTMF_LENGTH": "12"}
    settings = load_settings(path, environ=env)
    assert (settings.port, settings.dtmf_length) == (9000, 12)
    assert load_settings(path, environ={**env, "CONNECT_PLUGIN_PORT": "9100"}).port == 9100


def test_database_table_can_come_from_the_environment_as_an_inline_table(tmp_path, keyset):
    path = write_config(tmp_path / "c.toml", keyset)
    env = {"ROCKET_DATABASES": '{session = {url = "postgres://u@db.example:5432/s"}}'}
    assert load_settings(path, environ=env).database_url == "postgresql://u@db.example:5432/s"
    assert load_settings(path, environ={"CONNECT_PLUGIN_DATABASE_URL": "sqlite:///x.db"}).database_url.endswith("/x.db")


def test_default_database_is_an_sqlite_file_beside_the_config(tmp_path, keyset):
    path = write_config(tmp_path / "c.toml", keyset)
    assert load_settings(path, environ={}).database_url == f"sqlite:///{tmp_path.resolve()}/var/connect-plugin.sqlite3"


def test_key_file_is_read_relative_to_the_config_file(tmp_path, keyset):
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "dec.pem").write_text(keyset.decrypt.pem)
    path = write_config(tmp_path / "c.toml", keyset)
    text = path.read_text()
    start = text.index("[global.decryption_privkey]")
    end = text.index("[global.signature_pubkey]")
    table = '[global.decryption_privkey]\ntype = "RSA"\nkey_file = "keys/dec.pem"\n\n'
    path.write_text(text[:start] + table + text[end:])
    assert load_settings(path, environ={}).decryption_key.public() == keyset.encrypt


def test_workers_and_keep_alive_are_accepted(tmp_path, keyset):
    settings = load_settings(write_config(tmp_path / "c.toml", keyset, workers=4, keep_alive=10), environ={})
    assert (settings.workers, settings.keep_alive) == (4, 10)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"internal_url": None}, "internal_url"),
        ({"internal_url": "comm-plugin:8000"}, "internal_url"),
        ({"phonenumber": None}, "phonenumber"),
        ({"phonenumber": "+31 20;ext=1"}, "phonenumber"),
        ({"dtmf_length": "ten"}, "dtmf_length"),
        ({"dtmf_length": 2}, "dtmf_length"),
        ({"result_length": 8}, "result_length"),
        ({"port": 70000}, "port"),
        ({"log_level": "loud"}, "log_level"),
        ({"session_ttl": 0}, "session_ttl"),
        ({"cleanup_interval": 600}, "cleanup_interval"),
        ({"link_phone_token": "short"}, "link_phone_token"),
        ({"default_locale": "Dutch!"}, "default_locale"),
        ({"allowed_origins": ["https://agents.example.nl/path"]}, "allowed_origins"),
        ({"database_url": "no url here"}, "database_url"),
        ({"databases": {"session": {"uri": "x"}}}, "databases.session.uri"),
        ({"databases": {"session": {"pool_size": 5}}}, "databases.session.url"),
        ({"databases": {"session": {"url": "postgres://h/db", "pool_size": 0}}}, "databases.session.pool_size"),
    ],
)
def test_bad_setting_is_refused_naming_the_key(tmp_path, keyset, override, key):
    path = write_config(tmp_path / "c.toml", keyset, **override)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert caught.value.key == key
    assert str(caught.value).startswith(f"{key}: ")


def test_bad_key_is_refused_without_quoting_it(tmp_path, keyset):
    path = write_config(tmp_path / "c.toml", keyset)
    pem = keyset.decrypt.pem
    body_line = pem.splitlines()[5]
    path.write_text(path.read_text().replace(body_line, body_line[:-4] + "!!!!"))
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert caught.value.key == "decryption_privkey.key"
    assert body_line[:20] not in str(caught.value)


def test_public_key_where_private_key_belongs_is_refused(tmp_path, keyset):
    path = write_config(tmp_path / "c.toml", keyset)
    text = path.read_text().replace(keyset.decrypt.pem.strip(), keyset.verify.pem.strip(), 1)
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert caught.value.key == "decryption_privkey.key"


def test_settings_repr_shows_no_key_material_or_token(tmp_path, keyset):
    token = "lambda-shared-secret-0123456789"
    settings = load_settings(write_config(tmp_path / "c.toml", keyset, link_phone_token=token), environ={})
    shown = repr(settings) + str(settings) + repr(settings.decryption_key) + str(settings.link_phone_token.__repr__())
    assert token not in shown
    for pem in (keyset.decrypt.pem, keyset.verify.pem):
        for line in pem.splitlines()[1:-1]:
            assert line not in shown
    assert settings.link_phone_token.reveal() == token


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "nope.toml", environ={})
    assert caught.value.key == "config"


def test_invalid_toml_is_a_config_error_without_content(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[global]\nlink_phone_token = "abc\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert caught.value.key == "config"
    assert "abc" not in str(caught.value)
