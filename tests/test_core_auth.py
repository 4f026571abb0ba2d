"""Core credentials: with ``core_auth_user``/``core_auth_password``, the core's endpoints need HTTP Basic."""

from __future__ import annotations

import base64

import pytest

from connect_plugin.config import load_settings
from connect_plugin.errors import ConfigError
from tests.support import count_sessions, dtmf_of, write_config

USER, PASSWORD = "core", "a password the core knows"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def core_plugin(plugin_factory):
    return await plugin_factory(core_auth_user=USER, core_auth_password=PASSWORD)


@pytest.mark.gen_test
@pytest.mark.parametrize("headers", [
    {},
    basic(USER, "wrong"),
    basic("someone", PASSWORD),
    {"Authorization": "Bearer " + PASSWORD},
    {"Authorization": "Basic not-base64!"},
])
async def test_start_without_the_core_credentials_is_401_and_stores_nothing(plugin_factory, database_url, headers):
    plugin = await core_plugin(plugin_factory)
    response = await plugin.api.call("POST", "/start_communication", {"purpose": "report_move"}, headers=headers)
    assert response.status == 401
    assert response.json["error"] == "Unauthorized"
    assert response.headers["WWW-Authenticate"] == 'Basic realm="connect-plugin"'
    assert PASSWORD not in response.body.decode()
    assert await count_sessions(database_url) == 0


@pytest.mark.gen_test
async def test_start_with_the_core_credentials_is_200(plugin_factory):
    plugin = await core_plugin(plugin_factory)
    response = await plugin.api.call("POST", "/start_communication", {"purpose": "report_move"},
                                     headers=basic(USER, PASSWORD))
    assert response.status == 200
    assert (await plugin.api.link(dtmf_of(response), "c0e0c0e0-0000-4000-8000-000000000001")).status == 200


@pytest.mark.gen_test
async def test_clean_db_needs_the_core_credentials_too(plugin_factory):
    plugin = await core_plugin(plugin_factory)
    assert (await plugin.api.call("GET", "/clean_db")).status == 401
    assert (await plugin.api.call("GET", "/clean_db", headers=basic(USER, PASSWORD))).status == 200


@pytest.mark.gen_test
async def test_without_core_credentials_configured_the_core_endpoints_stay_open(api):
    assert (await api.start("report_move")).status == 200
    assert (await api.call("GET", "/clean_db")).status == 200


@pytest.mark.parametrize(("given", "missing"), [
    ({"core_auth_user": USER}, "core_auth_password"),
    ({"core_auth_password": PASSWORD}, "core_auth_user"),
])
def test_one_core_credential_without_the_other_stops_start_up(tmp_path, keyset, given, missing):
    with pytest.raises(ConfigError) as caught:
        load_settings(write_config(tmp_path / "c.toml", keyset, **given), environ={})
    assert caught.value.key == missing
    assert PASSWORD not in str(caught.value)
