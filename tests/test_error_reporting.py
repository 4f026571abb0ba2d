"""Error reporting to Sentry: an unexpected error is reported, and the report carries nothing of the request.

A real ``connect-plugin serve`` runs with ``sentry_dsn`` pointing at a stand-in
Sentry server on 127.0.0.1 (it takes envelopes as Sentry's ingestion endpoint
does) and with a store plugin whose ``store_result`` and ``link`` raise
errors nobody expects, with a token and a contact id in their messages and
variables.  The requests that reach them carry a token, codes, a contact id
and attribute values in every place a report could copy them from: path,
query string, headers, cookies, body.  The envelopes that arrive are decoded
and searched for each of them.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import subprocess
from typing import Any

import pytest
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from connect_plugin import reporting
from connect_plugin.config import load_settings
from connect_plugin.errors import ConfigError
from tests.support import ROOT, Api, PluginProcess, cli_command, dtmf_of, write_config

pytest.importorskip("sentry_sdk", reason="the sentry extra is not installed (tox installs it)")

EXPLODING_STORE_PATH = ROOT / "tests" / "plugins" / "exploding_store"
LINK_TOKEN = "lambda-secret-Rb7Kp2Wd9Lx4"
ATTRIBUTE = "Bijzondere-Naam-4417"
CONTACT = "c0ffee00-1111-4222-8333-444455556666"
QUERY_MARK = "qmark-5f4e3d2c"
COOKIE_MARK = "cookie-9a8b7c6d"


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Reporting does not depend on the store: SQLite only."""
    return sqlite_url


class SentryStandIn:
    """Takes ``POST /api/<project>/envelope/`` as Sentry does, and keeps each envelope's raw, decoded bytes."""

    def __init__(self) -> None:
        self.envelopes: list[bytes] = []
        self.arrived = asyncio.Event()
        stand_in = self

        class Envelope(RequestHandler):
            def post(self, project: str) -> None:
                body = self.request.body
                encoding = self.request.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "br":
                    import brotli

                    body = brotli.decompress(body)
                stand_in.envelopes.append(body)
                stand_in.arrived.set()
                self.set_header("Content-Type", "application/json")
                self.finish("{}")

        sockets = bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        self.server = HTTPServer(Application([(r"/api/(\d+)/envelope/", Envelope)]))
        self.server.add_sockets(sockets)

    @property
    def dsn(self) -> str:
        return f"http://0123456789abcdef0123456789abcdef@127.0.0.1:{self.port}/42"

    def events(self) -> list[dict[str, Any]]:
        """The error events among the envelopes' items."""
        return [payload for kind, payload in (item for raw in self.envelopes for item in envelope_items(raw))
                if kind == "event"]

    async def wait_for(self, count: int, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Wait until ``count`` error events have arrived (bounded); return them."""
        async with asyncio.timeout(timeout):
            while len(self.events()) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.events()


def envelope_items(raw: bytes) -> list[tuple[str, Any]]:
    """Sentry's envelope format: a header line, then items, each a header line and a payload."""
    lines = raw.split(b"\n", 1)
    rest = lines[1] if len(lines) > 1 else b""
    items = []
    while rest.strip():
        header_line, _, rest = rest.partition(b"\n")
        header = json.loads(header_line)
        if "length" in header:
            payload, rest = rest[:header["length"]], rest[header["length"]:]
            rest = rest.removeprefix(b"\n")
        else:
            payload, _, rest = rest.partition(b"\n")
        items.append((header.get("type", ""), json.loads(payload) if payload.strip() else None))
    return items


@pytest.mark.gen_test(timeout=120)
async def test_an_unexpected_error_is_reported_without_anything_the_request_carried(
        tmp_path, keyset, mint, database_url):
    sentry = SentryStandIn()
    config = write_config(tmp_path / "reporting.toml", keyset, database_url=database_url, log_level="debug",
                          link_phone_token=LINK_TOKEN, sentry_dsn=sentry.dsn, sentry_environment="acceptance",
                          plugins={"exploding_store": {"on": True}})
    server = PluginProcess(config, env={"PYTHONPATH": str(EXPLODING_STORE_PATH)}, log_dir=tmp_path).start()
    api = Api(server.base_url)
    try:
        token = mint(attributes={"fullname": ATTRIBUTE, "email": f"{ATTRIBUTE.lower()}@example.nl"})
        started = (await api.start("report_move")).json
        result_code, dtmf = started["attr_url"].rsplit("/", 1)[1], dtmf_of(started)
        carried = {"Authorization": f"Bearer {LINK_TOKEN}", "Cookie": f"agent={token}; mark={COOKIE_MARK}",
                   "X-Contact": CONTACT, "X-Attribute": ATTRIBUTE, "X-Request-Id": dtmf}
        query = f"contact={CONTACT}&attr={ATTRIBUTE}&{QUERY_MARK}"
        stored = await api.call("POST", f"/session_result/{result_code}?{query}",
                                raw=token, headers={**carried, "Content-Type": "application/jwt"})
        linked = await api.call("POST", f"/link_phone?{QUERY_MARK}={dtmf}",
                                {"dtmf": dtmf, "sessionid": CONTACT, "attr": ATTRIBUTE}, headers=carried)
        assert (stored.status, linked.status) == (500, 500)
        assert stored.json == linked.json == {"error": "InternalServerError"}
        await sentry.wait_for(2)
        # One more error as a marker: reports leave in order, so anything else the first two requests
        # caused (a report of their 500 access lines, say) would have arrived before it.
        marker = await api.call("POST", "/link_phone", {"dtmf": dtmf, "sessionid": "marker"}, headers=carried)
        assert marker.status == 500
        events = await sentry.wait_for(3)
    finally:
        assert server.terminate() == 0
        sentry.server.stop()

    assert [event["exception"]["values"][-1]["type"] for event in events] == [
        "RuntimeError", "LookupError", "LookupError"]
    by_type = {event["exception"]["values"][-1]["type"]: event for event in events[:2]}
    for event, response, route in ((by_type["RuntimeError"], stored, "/session_result/<resultcode>"),
                                   (by_type["LookupError"], linked, "/link_phone")):
        assert event["environment"] == "acceptance"
        assert event["release"].startswith("connect-plugin@")
        assert event["tags"] == {"request_id": response.headers["X-Request-Id"], "route": route}
        assert "request" not in event
        assert "user" not in event
        assert "breadcrumbs" not in event
        frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
        assert frames[-1]["function"] in ("store_result", "link")  # where it happened is reported ...
        assert all("vars" not in frame for frame in frames)  # ... what the variables held is not
        assert all(value["value"] == "" for value in event["exception"]["values"])
    everything = b"\n".join(sentry.envelopes).decode("utf-8", "replace")
    secrets = [token[:40], token.split(".")[3][:20], token.split(".")[4][:16], result_code, dtmf, CONTACT,
               ATTRIBUTE, ATTRIBUTE.lower(), LINK_TOKEN, QUERY_MARK, COOKIE_MARK]
    leaked = [secret for secret in secrets if secret in everything]
    assert leaked == [], f"the reports hold {leaked}"


def test_a_dsn_without_the_sentry_extra_is_one_line_naming_the_extra(tmp_path, keyset):
    """Without sentry-sdk importable, ``serve`` stops with exit 2 and one line, before listening."""
    hidden = tmp_path / "no-sentry"
    hidden.mkdir()
    (hidden / "sentry_sdk.py").write_text('raise ImportError("No module named \'sentry_sdk\'")\n')
    dsn = "https://0123456789abcdef0123456789abcdef@sentry.example.nl/7"
    config = write_config(tmp_path / "settings.toml", keyset, sentry_dsn=dsn)
    done = subprocess.run([*cli_command(), "serve", "--config", str(config)], capture_output=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(hidden), "HOME": str(tmp_path)},
                          cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.decode().strip().splitlines()[-1] == (
        "connect-plugin: configuration error: sentry_dsn: needs sentry-sdk: pip install 'connect-plugin[sentry]'")
    assert dsn not in (done.stdout + done.stderr).decode()


@pytest.mark.parametrize("dsn", ["sentry.example.nl/7", "https://sentry.example.nl/7", "ftp://key@host/7",
                                 "https://key@sentry.example.nl/"])
def test_a_dsn_that_is_no_dsn_is_refused_without_echoing_it(tmp_path, keyset, dsn):
    with pytest.raises(ConfigError) as refused:
        load_settings(write_config(tmp_path / "settings.toml", keyset, sentry_dsn=dsn), environ={})
    assert refused.value.key == "sentry_dsn"
    assert dsn not in str(refused.value)


def test_an_event_is_rebuilt_from_what_may_be_sent():
    """The allow-list, on an event as the SDK's Tornado and logging integrations make one (and a few extras)."""
    secret = "geheim-4471"
    event = {
        "event_id": "e1", "level": "error", "logger": "connect_plugin.logs", "platform": "python",
        "transaction": f"/session_result/{secret}",
        "logentry": {"message": "unexpected error in %s %s", "params": ["POST", secret], "formatted": secret},
        "request": {"url": f"http://x/session_result/{secret}", "query_string": secret, "data": secret,
                    "headers": {"Authorization": secret}, "cookies": {"a": secret}, "env": {"REMOTE_ADDR": secret}},
        "user": {"ip_address": secret}, "extra": {"sys.argv": [secret]}, "breadcrumbs": {"values": [{"m": secret}]},
        "contexts": {"runtime": {"name": "CPython"}, "response": {"body": secret}, "trace": {"data": secret}},
        "exception": {"values": [{"type": "RuntimeError", "value": secret,
                                  "mechanism": {"type": "logging", "handled": True, "data": {"x": secret}},
                                  "stacktrace": {"frames": [{"function": "f", "lineno": 3, "vars": {"t": secret},
                                                             "context_line": "raise RuntimeError(t)"}]}}]},
        "threads": {"values": [{"stacktrace": {"frames": [{"vars": {"t": secret}}]}}]},
        "spans": [{"description": secret}], "new_field_of_a_later_sdk": secret,
    }
    scrubbed = reporting.scrub(event, None)
    assert secret not in json.dumps(scrubbed)
    assert scrubbed["exception"]["values"][0]["type"] == "RuntimeError"
    assert scrubbed["exception"]["values"][0]["stacktrace"]["frames"][0]["lineno"] == 3
    assert scrubbed["logentry"] == {"message": "unexpected error in %s %s"}
    assert scrubbed["contexts"] == {"runtime": {"name": "CPython"}}


def test_reporting_is_off_without_a_dsn(tmp_path, keyset):
    settings = load_settings(write_config(tmp_path / "settings.toml", keyset), environ={})
    assert reporting.start(settings) is False

