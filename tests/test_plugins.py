"""Swappable parts: the defaults answer through the hooks, and installed entry-point plugins replace them."""

from __future__ import annotations

import importlib.util
import json
import os

import pytest

from connect_plugin.codes import RandomDigits
from connect_plugin.config import load_settings
from connect_plugin.errors import ConfigError
from connect_plugin.hookspecs import hookimpl
from connect_plugin.notify import LocalNotifier
from connect_plugin.plugins import build_parts, make_manager, plugin_names
from connect_plugin.stores.sql import SqlStore
from connect_plugin.translations import ConfigTranslator
from tests.support import count_sessions, dtmf_of, write_config

EXAMPLES = ("connect_plugin_json_labels", "connect_plugin_check_digit", "connect_plugin_memory_store",
            "connect_plugin_redis_store")


@pytest.fixture(autouse=True)
def _examples_installed():
    missing = [name for name in EXAMPLES if importlib.util.find_spec(name) is None]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"example plugins not installed: {missing}")
        pytest.skip(f"example plugins not installed (tox installs them): {missing}")


def parts_for(tmp_path, keyset, **settings):
    config = write_config(tmp_path / "p.toml", keyset, **settings)
    return build_parts(load_settings(config, environ={}), make_manager())


def test_entry_point_plugins_are_loaded_beside_the_defaults():
    names = plugin_names(make_manager())
    assert {"json_labels", "check_digit", "memory_store", "redis_store", "default:defaults"} <= set(names)


def test_installed_plugins_change_nothing_until_configured(tmp_path, keyset, sqlite_url):
    parts = parts_for(tmp_path, keyset, database_url=sqlite_url)
    assert isinstance(parts.store, SqlStore)
    assert isinstance(parts.code_generator, RandomDigits)
    assert isinstance(parts.translator, ConfigTranslator)
    assert isinstance(parts.notifier, LocalNotifier)


def test_json_labels_plugin_replaces_the_translator_and_overlays_config_labels(tmp_path, keyset, sqlite_url):
    labels = {"nl": {"email": "E-mail (uit bestand)"}, "de": {"email": "E-Mail"}}
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    parts = parts_for(
        tmp_path, keyset, database_url=sqlite_url,
        translations={"nl": {"report_move": "Verhuizing", "email": "E-mail (uit config)"}},
        plugins={"json_labels": {"file": "labels.json"}},
    )
    assert type(parts.translator).__name__ == "JsonLabels"
    assert parts.translator.labels("nl") == {"report_move": "Verhuizing", "email": "E-mail (uit bestand)"}
    assert parts.translator.labels("de") == {"email": "E-Mail"}


def test_json_labels_plugin_with_unreadable_file_is_a_config_error_naming_the_key(tmp_path, keyset, sqlite_url):
    from connect_plugin.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        parts_for(tmp_path, keyset, database_url=sqlite_url, plugins={"json_labels": {"file": "missing.json"}})
    assert caught.value.key == "plugins.json_labels.file"


@pytest.mark.gen_test
async def test_check_digit_plugin_replaces_the_code_generator(plugin_factory):
    from connect_plugin_check_digit import is_valid

    plugin = await plugin_factory(plugins={"check_digit": {"enabled": True}})
    codes = [dtmf_of(await plugin.api.start("report_move")) for _ in range(20)]
    assert all(len(code) == 10 and is_valid(code) for code in codes)
    assert type(plugin.runtime.parts.code_generator).__name__ == "CheckDigitCodes"


@pytest.mark.gen_test
async def test_memory_store_plugin_replaces_the_store_and_runs_the_whole_flow(plugin_factory, mint, database_url):
    plugin = await plugin_factory(database_url="memory:")
    assert type(plugin.runtime.parts.store).__name__ == "MemoryStore"
    started = (await plugin.api.start("report_move")).json
    assert (await plugin.api.post_result(started["attr_url"], mint())).status == 200
    assert (await plugin.api.post_result(started["attr_url"], mint())).status == 404
    contact = "c0ffee00-0000-4000-8000-000000000001"
    assert (await plugin.api.link(dtmf_of(started), contact)).status == 200
    assert (await plugin.api.info(contact)).json["auth_result"]["status"] == "succes"
    assert await count_sessions(database_url) == 0  # nothing went to the SQL database


class _HalfStore:
    """A store plugin's part that forgot most of the contract, and made one method synchronous."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def ping(self) -> None: ...


class _HalfStorePlugin:
    @staticmethod
    @hookimpl
    def connect_plugin_session_store(settings):
        return _HalfStore()


def test_a_part_that_does_not_fit_its_protocol_stops_start_up_naming_the_plugin(tmp_path, keyset):
    pm = make_manager()
    pm.register(_HalfStorePlugin(), name="half_store")
    config = write_config(tmp_path / "p.toml", keyset)
    with pytest.raises(ConfigError) as caught:
        build_parts(load_settings(config, environ={}), pm)
    message = str(caught.value)
    assert message.startswith("store: _HalfStore from plugin 'half_store' is not a SessionStore: ")
    assert "ping is not async" in message
    assert "no method link" in message
    assert "\n" not in message


@pytest.mark.gen_test
async def test_memory_store_plugin_refuses_replays_and_keeps_the_link_budget(plugin_factory, mint):
    plugin = await plugin_factory(database_url="memory:", link_failure_budget=2)
    token = mint()
    first = (await plugin.api.start("report_move")).json
    second = (await plugin.api.start("report_move")).json
    assert (await plugin.api.post_result(first["attr_url"], token)).status == 200
    assert "(replayed)" in (await plugin.api.post_result(second["attr_url"], token)).json["detail"]
    right = dtmf_of(second)
    wrong = "".join("1" if c == "0" else "0" for c in right)
    for _ in range(2):
        assert (await plugin.api.link(wrong, "c0ffee00-0000-4000-8000-000000000002")).status == 404
    assert (await plugin.api.link(right, "c0ffee00-0000-4000-8000-000000000002")).status == 429
