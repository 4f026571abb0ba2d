"""Reference-era configuration, as Rocket and Figment read it: every form works unchanged here too."""

from __future__ import annotations

import logging

import pytest

from connect_plugin.config import load_settings
from connect_plugin.config.sources import parse_env_value
from connect_plugin.errors import ConfigError
from connect_plugin.stores.engine import make_engine
from tests.support import POSTGRES_URL, run_private, write_config

PG_HOST_DB = "postgres://tg@db.example:5432/tg"


# --------------------------------------------------------------------------- finding the file


def test_rocket_toml_in_the_working_directory_is_read_without_any_variable(tmp_path, keyset):
    write_config(tmp_path / "Rocket.toml", keyset, dtmf_length=11)
    assert load_settings(environ={}, cwd=tmp_path).dtmf_length == 11


def test_rocket_toml_is_found_in_a_parent_of_the_working_directory(tmp_path, keyset):
    write_config(tmp_path / "Rocket.toml", keyset, dtmf_length=12)
    (tmp_path / "bin" / "deep").mkdir(parents=True)
    settings = load_settings(environ={}, cwd=tmp_path / "bin" / "deep")
    assert settings.dtmf_length == 12
    assert settings.source == str(tmp_path / "Rocket.toml")


def test_relative_rocket_config_is_looked_for_upwards_as_figment_does(tmp_path, keyset):
    write_config(tmp_path / "conf.toml", keyset, dtmf_length=13)
    (tmp_path / "run").mkdir()
    assert load_settings(environ={"ROCKET_CONFIG": "conf.toml"}, cwd=tmp_path / "run").dtmf_length == 13


def test_rocket_config_naming_a_missing_file_is_refused(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={"ROCKET_CONFIG": "nowhere.toml"}, cwd=tmp_path)
    assert caught.value.key == "config"
    assert "ROCKET_CONFIG" in str(caught.value)


# --------------------------------------------------------------------------- Figment's merge and grammar


def test_profiles_merge_nested_tables_as_figment_does(tmp_path, keyset):
    path = write_config(tmp_path / "c.toml", keyset)
    path.write_text(
        f'[default.databases.session]\nurl = "{PG_HOST_DB}"\n\n'
        + path.read_text()
        + "\n[global.databases.session]\npool_size = 7\ntimeout = 3\n"
    )
    settings = load_settings(path, environ={})
    assert settings.database_url == "postgresql://tg@db.example:5432/tg"
    assert (settings.database_pool_size, settings.database_timeout) == (7, 3.0)


def test_environment_table_merges_into_the_file_table(tmp_path, keyset):
    path = write_config(tmp_path / "c.toml", keyset, databases={"session": {"url": PG_HOST_DB}})
    settings = load_settings(path, environ={"ROCKET_DATABASES": "{session={pool_size=9}}"})
    assert settings.database_url.startswith("postgresql://tg@db.example")
    assert settings.database_pool_size == 9


def test_unquoted_inline_table_in_rocket_databases_is_read(tmp_path, keyset):
    path = write_config(tmp_path / "c.toml", keyset)
    env = {"ROCKET_DATABASES": "{session={url=postgres://u:secret@db.example:5432/s}}"}
    assert load_settings(path, environ=env).database_url == "postgresql://u:secret@db.example:5432/s"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("8000", 8000),
        ("-3", -3),
        ("1.5", 1.5),
        ("true", True),
        ("false", False),
        ("plain words", "plain words"),
        ('"quoted, with comma"', "quoted, with comma"),
        ("[a, b, 3]", ["a", "b", 3]),
        ("{a=1, b={c=x}}", {"a": 1, "b": {"c": "x"}}),
        ('{ "k" = "v" }', {"k": "v"}),
        ("'c'", "c"),
        ("{unclosed", "{unclosed"),
        ("1_000", "1_000"),
    ],
)
def test_environment_values_follow_figments_grammar(text, value):
    assert parse_env_value(text) == value


def test_string_setting_from_the_environment_keeps_its_text(tmp_path, keyset):
    path = write_config(tmp_path / "c.toml", keyset)
    settings = load_settings(path, environ={"ROCKET_PHONENUMBER": "+31850000000", "ROCKET_ADDRESS": "127.0.0.1"})
    assert settings.phonenumber == "+31850000000"
    assert settings.address == "127.0.0.1"


def test_numbers_and_booleans_from_the_environment_are_numbers(tmp_path, keyset):
    path = write_config(tmp_path / "c.toml", keyset)
    settings = load_settings(path, environ={"ROCKET_DTMF_LENGTH": "12", "CONNECT_PLUGIN_DATABASE_TIMEOUT": "2.5"})
    assert (settings.dtmf_length, settings.database_timeout) == (12, 2.5)


# --------------------------------------------------------------------------- unknown keys


def test_unknown_key_stops_start_up_with_a_suggestion(tmp_path, keyset):
    path = write_config(tmp_path / "c.toml", keyset, prot=8101)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert str(caught.value) == "prot: unknown setting (did you mean port?)"


def test_unknown_environment_variable_names_the_variable(tmp_path, keyset):
    path = write_config(tmp_path / "c.toml", keyset)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={"ROCKET_PROT": "8101"})
    assert str(caught.value) == "ROCKET_PROT: unknown setting (did you mean ROCKET_PORT?)"


def test_unknown_key_far_from_any_known_one_has_no_suggestion(tmp_path, keyset):
    path = write_config(tmp_path / "c.toml", keyset, flux_capacitor=1)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert str(caught.value) == "flux_capacitor: unknown setting"


def test_rockets_own_keys_are_accepted_and_ignored_with_a_notice(tmp_path, keyset):
    path = write_config(tmp_path / "c.toml", keyset, secret_key="x" * 44, ident="comm", limits={"json": 1048576},
                        workers=4)
    settings = load_settings(path, environ={})
    infos = [message for level, message in settings.notices if level == logging.INFO]
    assert any(message.startswith("limits: Rocket's own setting") for message in infos)
    assert any(message.startswith("secret_key: Rocket's own setting") for message in infos)
    assert any(message.startswith("workers: ignored") for message in infos)
    assert all("x" * 10 not in message for _, message in settings.notices)


# --------------------------------------------------------------------------- PostgreSQL connection strings


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("host=db user=tg dbname=tg", "postgresql://?host=db&user=tg&dbname=tg"),
        ("host=db port=5433 user=tg password='p w\\'d' dbname=tg sslmode=require",
         "postgresql://?host=db&port=5433&user=tg&password=p%20w%27d&dbname=tg&sslmode=require"),
        ("postgres://tg@db/tg?application_name=x&connect_timeout=5",
         "postgresql://tg@db/tg?application_name=x&connect_timeout=5"),
        ("postgresql://tg@db/tg?fallback_application_name=x", "postgresql://tg@db/tg?application_name=x"),
        ("postgres://tg@db/tg?ssl=verify-full", "postgresql://tg@db/tg?sslmode=verify-full"),
    ],
)
def test_libpq_forms_are_normalised(tmp_path, keyset, given, expected):
    path = write_config(tmp_path / "c.toml", keyset, database_url=given)
    assert load_settings(path, environ={}).database_url == expected


@pytest.mark.parametrize("given", ["postgres://tg@db/tg?keepalives=1", "host=db gssencmode=disable"])
def test_libpq_parameter_the_driver_lacks_is_refused_naming_it(tmp_path, keyset, given):
    path = write_config(tmp_path / "c.toml", keyset, database_url=given)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    name = given.rsplit("?", 1)[-1].split("=")[0] if "?" in given else "gssencmode"
    assert str(caught.value) == f"database_url: parameter {name} is not supported by the PostgreSQL driver (asyncpg)"


def test_unterminated_quote_in_a_keyword_string_is_refused(tmp_path, keyset):
    path = write_config(tmp_path / "c.toml", keyset, database_url="host=db password='open")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert caught.value.key == "database_url"
    assert "open" not in str(caught.value)


def _server_parts() -> tuple[str, str]:
    # POSTGRES_URL is postgresql://user@host:port/db
    rest = POSTGRES_URL.split("://", 1)[1]
    userhost, _database = rest.split("/", 1)
    user, hostport = userhost.split("@", 1)
    return user, hostport


@pytest.mark.parametrize("form", ["url", "keywords"])
def test_application_name_and_connect_timeout_reach_the_real_server(tmp_path, keyset, postgres_server, form):
    user, hostport = _server_parts()
    host, port = hostport.split(":")
    database = postgres_server.rsplit("/", 1)[1]
    if form == "url":
        given = f"postgres://{user}@{host}:{port}/{database}?application_name=cp-ref-test&connect_timeout=5"
    else:
        given = f"host={host} port={port} user={user} dbname={database} application_name=cp-ref-test connect_timeout=5"
    settings = load_settings(write_config(tmp_path / "c.toml", keyset, database_url=given), environ={})

    async def ask() -> str:
        from sqlalchemy import text

        engine = make_engine(settings.database_url, pool_size=1, timeout=5)
        try:
            async with engine.connect() as conn:
                return (await conn.execute(text("SELECT current_setting('application_name')"))).scalar_one()
        finally:
            await engine.dispose()

    assert run_private(ask()) == "cp-ref-test"
