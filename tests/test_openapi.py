"""The OpenAPI description: valid, shipped in the package, served as this plugin runs, true to its routes."""

from __future__ import annotations

import json
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from connect_plugin import openapi
from connect_plugin.config import load_settings
from tests.support import KeySet, write_config

PATH_PARAMETER = re.compile(r"\{[^}/]+\}")
ROUTE_GROUP = re.compile(r"\((?:[^()]|\([^()]*\))*\)")


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The description does not depend on the store: SQLite only."""
    return sqlite_url


def packaged_description() -> dict[str, Any]:
    """The description as installed with the distribution (package data), not the source tree's file."""
    return json.loads(files("connect_plugin").joinpath("openapi.json").read_text(encoding="utf-8"))


def settings_with(tmp_path: Path, keyset: KeySet, **values: Any) -> Any:
    return load_settings(write_config(tmp_path / "settings.toml", keyset, **values), environ={})


def template_matches(template: str, path: str) -> bool:
    """Whether a concrete ``path`` fits an OpenAPI path template (a parameter is one path segment)."""
    pattern = PATH_PARAMETER.sub("[^/]+", re.escape(template).replace(r"\{", "{").replace(r"\}", "}"))
    return re.fullmatch(pattern, path) is not None


def sample_path(route_pattern: str) -> str:
    """A concrete path that a Tornado route pattern matches (each group filled with ``x``)."""
    return ROUTE_GROUP.sub("x", route_pattern).rstrip("$").replace("\\", "")


def test_packaged_description_is_valid_openapi_3_1():
    description = packaged_description()
    validate(description)
    assert description["openapi"].startswith("3.1.")


@pytest.mark.gen_test
async def test_served_description_is_valid_and_names_this_plugin(plugin):
    response = await plugin.api.call("GET", "/openapi.json")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/json")
    served = response.json
    validate(served)
    assert served["servers"][0]["url"] == plugin.base_url  # internal_url
    assert served["info"]["version"] != ""


@pytest.mark.gen_test
async def test_served_description_leaves_out_what_this_plugin_does_not_serve(plugin):
    served = (await plugin.api.call("GET", "/openapi.json")).json
    # The default test plugin: loopback, no agent sign-in, no bearer token, no metrics.
    assert not [path for path in served["paths"] if path.startswith("/agent/") or path == "/metrics"]
    assert served["paths"]["/link_phone"]["post"]["security"] == []
    assert served["paths"]["/session_info/{contactid}"]["get"]["security"] == []
    assert set(served["components"]["securitySchemes"]) == set()
    # ... and every path it describes is one this plugin answers (never the fallback's 404 for a route).
    for path in served["paths"]:
        concrete = PATH_PARAMETER.sub("nothing-here", path)
        answer = await plugin.api.call("OPTIONS", concrete)
        assert answer.status != 404, path


def test_description_follows_the_settings(tmp_path, keyset):
    token = "a-bearer-token-of-32-characters!"
    with_token = openapi.for_settings(settings_with(tmp_path, keyset, link_phone_token=token))
    assert with_token["paths"]["/link_phone"]["post"]["security"] == [{"linkPhoneToken": []}]
    assert with_token["paths"]["/end_call"]["post"]["security"] == [{"linkPhoneToken": []}]
    assert with_token["components"]["securitySchemes"]["linkPhoneToken"]["scheme"] == "bearer"
    opened = openapi.for_settings(settings_with(tmp_path, keyset, link_phone_token="none"))
    assert opened["paths"]["/link_phone"]["post"]["security"] == []
    external = openapi.for_settings(settings_with(tmp_path, keyset, external_url="https://agents.example.nl"))
    assert [server["url"] for server in external["servers"]] == ["http://127.0.0.1:8000", "https://agents.example.nl"]


def test_conditions_of_the_packaged_description(tmp_path, keyset):
    settings = settings_with(tmp_path, keyset)
    assert openapi.holds(None, settings)
    assert openapi.holds({"setting": "agent_auth", "equals": None}, settings)
    assert not openapi.holds({"setting": "agent_auth", "equals": "oidc"}, settings)
    assert not openapi.holds({"setting": "link_phone_token", "set": True}, settings)
    assert not openapi.holds({"setting": "a_setting_of_a_later_version", "set": True}, settings)
    assert openapi.holds({"setting": "a_setting_of_a_later_version", "set": False}, settings)
    described = packaged_description()
    conditional = {path for path, item in described["paths"].items() if "x-when" in item}
    assert conditional == {"/agent/login", "/agent/callback", "/agent/logout", "/metrics"}


def test_every_route_of_the_application_is_described(plugin):
    described = list(openapi.for_settings(plugin.runtime.settings)["paths"])
    undescribed = []
    for rule in plugin.runtime.app.wildcard_router.rules:
        path = sample_path(rule.matcher.regex.pattern)
        if path in ("/attribute-ui", "/amazon-connect-ui"):
            continue  # the slash-less redirects, said in the pages' descriptions
        if not any(template_matches(template, path) for template in described):
            undescribed.append(rule.matcher.regex.pattern)
    assert undescribed == []


def test_every_documented_error_is_a_json_error_body():
    described = packaged_description()
    responses = described["components"]["responses"]
    for path, item in described["paths"].items():
        for operation in openapi.operations(item):
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    response = responses[response["$ref"].rsplit("/", 1)[1]] if "$ref" in response else response
                    assert list(response["content"]) == ["application/json"], (path, status)


def test_shared_endpoints_keep_the_ecosystem_shapes():
    """The fields and shapes ``comm_plugin.openapi.yml`` (ID Contact's docs) gives the shared endpoints.

    Its ``/start_communication`` takes ``{"purpose": string (required), "auth_result": string}``
    as JSON and answers ``{"client_url": URI (required), "attr_url": URI}``; the
    authentication result is posted to ``attr_url`` as ``application/jwt``; session
    feedback is a POST with ``type`` = ``user_active`` | ``logout``; the plugin may
    be guarded by HTTP Basic.
    """
    described = packaged_description()
    schemas = described["components"]["schemas"]
    start = described["paths"]["/start_communication"]["post"]
    body = start["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/StartRequest"}
    request = schemas["StartRequest"]
    assert request["required"] == ["purpose"]
    assert set(request["properties"]) == {"purpose", "auth_result"}
    assert schemas["Purpose"]["type"] == "string"
    answer = schemas["StartResponse"]
    assert answer["required"] == ["client_url"]
    assert {name: field["format"] for name, field in answer["properties"].items()} == {
        "client_url": "uri", "attr_url": "uri"}
    result = described["components"]["pathItems"]["SessionResult"]["post"]
    assert list(result["requestBody"]["content"]) == ["application/jwt"]
    feedback = described["webhooks"]["sessionFeedback"]["post"]["parameters"][0]
    assert (feedback["name"], feedback["in"]) == ("type", "query")
    assert feedback["schema"]["enum"] == ["user_active", "logout"]
    basic = described["components"]["securitySchemes"]["coreBasic"]
    assert (basic["type"], basic["scheme"]) == ("http", "basic")
    assert schemas["AuthResult"]["properties"]["status"]["enum"] == ["succes", "failed"]
