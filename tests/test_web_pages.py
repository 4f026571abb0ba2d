"""The browser pages as files over real HTTP: headers, the agent page's generated config.js, ``web_dir``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from connect_plugin import labels
from connect_plugin.config import load_settings
from connect_plugin.errors import ConfigError
from tests.support import write_config


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Pages need no database work: SQLite is enough."""
    return sqlite_url


def deployer_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    """A ``web_dir`` holding ``files`` (relative path -> text)."""
    root = tmp_path / "web"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    root.mkdir(exist_ok=True)
    return root


@pytest.mark.gen_test(timeout=30)
async def test_display_page_is_served_with_a_strict_policy_and_no_referrer(plugin):
    response = await plugin.api.call("GET", "/attribute-ui/?0b6f3a52-6c1d-4e8a-9f2b-7d3c5e1a9b40")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/html")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    body = response.body.decode()
    assert '<script src="config.js"></script>' in body
    assert "<script>" not in body  # nothing inline: the policy would refuse it


@pytest.mark.gen_test(timeout=30)
async def test_display_files_are_served_and_the_default_config_sets_nothing(plugin):
    for name, kind in (("display.js", "javascript"), ("display.css", "text/css"), ("strings.json", "json")):
        response = await plugin.api.call("GET", f"/attribute-ui/{name}")
        assert response.status == 200, name
        assert kind in response.headers["Content-Type"], name
    config = (await plugin.api.call("GET", "/attribute-ui/config.js")).body.decode()
    code = [line for line in config.splitlines() if line.strip() and not line.strip().startswith("//")]
    assert code == []


@pytest.mark.gen_test(timeout=30)
async def test_display_address_without_slash_redirects_keeping_the_contact_id(plugin):
    request = HTTPRequest(plugin.base_url + "/attribute-ui?0b6f3a52-6c1d", follow_redirects=False)
    response = await AsyncHTTPClient().fetch(request, raise_error=False)
    assert response.code == 302
    assert response.headers["Location"] == "/attribute-ui/?0b6f3a52-6c1d"


@pytest.mark.gen_test(timeout=30)
async def test_unknown_page_file_is_404(plugin):
    missing = await plugin.api.call("GET", "/attribute-ui/nothing.js")
    assert (missing.status, missing.json) == (404, {"error": "NotFound"})
    outside = await plugin.api.call("GET", "/attribute-ui/../connect_plugin/config.py")
    assert outside.status in (400, 403, 404)
    assert outside.json["error"] in ("BadRequest", "Forbidden", "NotFound")


def test_built_in_strings_have_the_same_keys_in_dutch_and_english():
    strings = json.loads(labels.STRINGS_FILE.read_text(encoding="utf-8"))
    assert set(strings) == {"nl", "en"}
    assert set(strings["nl"]) == set(strings["en"])
    for key in ("waiting", "attributes", "failed", "no_session", "unreachable", "purpose", "loading"):
        assert strings["nl"][key], key
        assert strings["en"][key], key


@pytest.mark.gen_test(timeout=30)
async def test_agent_config_js_is_made_from_the_settings(plugin_factory):
    plugin = await plugin_factory(amazon_connect_url="https://example.my.connect.aws/ccp-v2",
                                  ccp_login_url="https://idp.example.nl/app/amazon-connect",
                                  attribute_url='https://display.example.nl/attribute-ui/?"</script>',
                                  streams_url="https://static.example.nl/connect-streams-min.js")
    response = await plugin.api.call("GET", "/amazon-connect-ui/config.js")
    assert response.status == 200
    assert "javascript" in response.headers["Content-Type"]
    values = dict(re.findall(r'^var (\w+) = (".*");$', response.body.decode(), re.MULTILINE))
    assert json.loads(values["AmazonConnectURL"]) == "https://example.my.connect.aws/ccp-v2"
    assert json.loads(values["CCPLoginURL"]) == "https://idp.example.nl/app/amazon-connect"
    assert json.loads(values["AttributeURL"]) == 'https://display.example.nl/attribute-ui/?"</script>'
    assert "</script>" not in response.body.decode()
    assert json.loads(values["StreamsURL"]) == "https://static.example.nl/connect-streams-min.js"
    page = await plugin.api.call("GET", "/amazon-connect-ui/")
    assert page.status == 200
    assert "script-src 'self' https://static.example.nl;" in page.headers["Content-Security-Policy"]


@pytest.mark.gen_test(timeout=30)
async def test_agent_config_defaults_point_at_this_plugin(plugin):
    body = (await plugin.api.call("GET", "/amazon-connect-ui/config.js")).body.decode()
    assert 'var AttributeURL = "../attribute-ui/";' in body  # the reference's form: the page adds the ?
    assert 'var StreamsURL = "connect-streams-min.js";' in body


@pytest.mark.gen_test(timeout=30)
async def test_files_in_web_dir_are_served_before_the_built_in_ones(plugin_factory, tmp_path):
    web_dir = deployer_dir(tmp_path, {
        "attribute-ui/config.js": "window.SERVER_URL = 'https://plugin.example.nl';\n",
        "amazon-connect-ui/config.js": "var AmazonConnectURL = 'https://mine.example/ccp-v2/';\n",
        "amazon-connect-ui/connect-streams-min.js": "/* the deployer's copy */\n",
        "secret.txt": "not for browsers\n",
    })
    plugin = await plugin_factory(web_dir=str(web_dir), amazon_connect_url="https://settings.example/ccp-v2")
    display_config = await plugin.api.call("GET", "/attribute-ui/config.js")
    assert display_config.body == b"window.SERVER_URL = 'https://plugin.example.nl';\n"
    agent_config = await plugin.api.call("GET", "/amazon-connect-ui/config.js")
    assert agent_config.body == b"var AmazonConnectURL = 'https://mine.example/ccp-v2/';\n"
    streams = await plugin.api.call("GET", "/amazon-connect-ui/connect-streams-min.js")
    assert (streams.status, streams.body) == (200, b"/* the deployer's copy */\n")
    # still the built-in page, and nothing outside the page folders
    assert b'src="display.js"' in (await plugin.api.call("GET", "/attribute-ui/")).body
    (web_dir / "attribute-ui" / "linked.txt").symlink_to(web_dir / "secret.txt")
    linked = await plugin.api.call("GET", "/attribute-ui/linked.txt")
    assert linked.status == 403
    assert b"not for browsers" not in linked.body
    for path in ("/attribute-ui/..%2Fsecret.txt", "/attribute-ui/%2E%2E/secret.txt", "/attribute-ui/../secret.txt"):
        response = await plugin.api.call("GET", path)
        assert response.status in (400, 403, 404), path
        assert b"not for browsers" not in response.body


def test_web_dir_is_found_next_to_the_config_file_and_must_exist(tmp_path, keyset):
    (tmp_path / "web").mkdir()
    config = write_config(tmp_path / "plugin.toml", keyset, web_dir="web", events_keepalive=30)
    settings = load_settings(config, environ={})
    assert settings.web_dir == str((tmp_path / "web").resolve())
    assert settings.events_keepalive == 30
    with pytest.raises(ConfigError) as error:
        load_settings(write_config(tmp_path / "bad.toml", keyset, web_dir="nowhere"), environ={})
    assert error.value.key == "web_dir"
    with pytest.raises(ConfigError) as error:
        load_settings(write_config(tmp_path / "bad.toml", keyset, events_keepalive=0), environ={})
    assert error.value.key == "events_keepalive"


@pytest.mark.gen_test(timeout=30)
async def test_display_labels_keep_the_interface_language_and_fall_back_to_default_locale_for_tags(plugin_factory):
    plugin = await plugin_factory(translations={
        "nl": {"report_move": "Verhuizing doorgeven", "attributes": "Gecontroleerde gegevens"},
        "en": {"email": "E-mail address"},
    })
    response = await plugin.api.call("GET", "/display_labels", headers={"Accept-Language": "en-US,en;q=0.8"})
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert (response.json["locale"], response.json["default_locale"]) == ("en", "nl")
    labels = response.json["labels"]
    assert labels["report_move"] == "Verhuizing doorgeven"  # no English label: the default locale's, not the tag
    assert labels["email"] == "E-mail address"
    assert labels["attributes"] == "Verified attributes"  # an interface string stays in the browser's language
    german = (await plugin.api.call("GET", "/display_labels", headers={"Accept-Language": "de"})).json
    assert (german["locale"], german["labels"]["attributes"]) == ("nl", "Gecontroleerde gegevens")


@pytest.mark.gen_test(timeout=30)
async def test_display_labels_answer_only_origins_that_may_read_session_data(plugin_factory):
    plugin = await plugin_factory(allowed_origins=["https://agents.example.nl"])
    allowed = await plugin.api.call("GET", "/display_labels", headers={"Origin": "https://agents.example.nl"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://agents.example.nl"
    other = await plugin.api.call("GET", "/display_labels", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
