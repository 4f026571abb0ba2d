"""The real server's debug log, after every endpoint and hostile input: no code, token, query string or contact id.

``connect-plugin serve`` runs as deployers run it, at ``log_level = "debug"``,
once with each ``log_format``; the test drives every endpoint with real codes,
tokens, contact ids and attribute values, then malformed and hostile requests
that carry them, and finally scans everything the process wrote.  The JSON
run also checks the shape: one object per line, the request's fields on its
access line, and the request id the response named.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.support import Api, PluginProcess, dtmf_of, free_port, raw_request, write_config

LINK_TOKEN = "lambda-secret-Zq8Xw2Lk5Pv7Rt4"
ATTRIBUTE = "Geheime-Waarde-5531"
CONTACT = "feedc0de-0000-4000-8000-00000000d3b6"
LATE_CONTACT = "feedc0de-0000-4000-8000-00000000aaaa"
FEEDBACK_SECRET = "sess-9f8e7d6c5b4a"
QUERY_MARK = "qmark-7a6b5c4d"
METRICS_TOKEN = "metrics-secret-Hq3Ws9Ze1Nc6"


async def first_event(port: int, contact: str) -> bytes:
    """Open the display's event stream, read until the first session event, and hang up."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET /session_events/{contact}?{QUERY_MARK} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"event: session"), 20)
    finally:
        writer.close()


async def drive_every_endpoint(server: PluginProcess, mint) -> list[str]:
    """Use every endpoint as the ecosystem does; return the secrets that went over the wire."""
    api = Api(server.base_url)
    lambda_auth = {"Authorization": f"Bearer {LINK_TOKEN}"}
    session_url = f"http://127.0.0.1:{free_port()}/session/{FEEDBACK_SECRET}?sid={FEEDBACK_SECRET}"
    token = mint(attributes={"fullname": ATTRIBUTE}, session_url=session_url)
    inline = mint(attributes={"fullname": ATTRIBUTE})

    started = (await api.start("report_move")).json
    result_code = started["attr_url"].rsplit("/", 1)[1]
    assert (await api.post_result(started["attr_url"], token)).status == 200
    assert (await api.post_result(started["attr_url"], token)).status == 404  # used
    assert (await api.post_result(started["attr_url"], token[:-6] + "AAAAAA")).status in (400, 404)
    assert (await api.call("POST", f"/session_result/{result_code}", raw=token,
                           headers={"Content-Type": "multipart/form-data; boundary=b"})).status == 415
    assert (await api.call("POST", f"/link_phone?{QUERY_MARK}", {"dtmf": dtmf_of(started), "sessionid": CONTACT},
                           headers={"Authorization": f"Bearer wrong-{LINK_TOKEN}"})).status == 401
    assert (await api.link(dtmf_of(started), CONTACT, token=LINK_TOKEN)).status == 200
    assert (await api.info(CONTACT)).json["auth_result"]["attributes"]["fullname"] == ATTRIBUTE
    assert b"event: session" in await first_event(server.port, CONTACT)
    preflight = await api.call("OPTIONS", f"/session_info/{CONTACT}", headers={"Origin": "https://x.example"})
    assert preflight.status == 204

    late = (await api.start("request_permit", auth_result=inline)).json
    bad_inline = await api.start("report_move", auth_result=inline[:-6] + "AAAAAA")
    assert bad_inline.status == 400
    assert (await api.link(dtmf_of(late), LATE_CONTACT, token=LINK_TOKEN)).status == 200
    assert (await api.call("POST", "/end_call", {"sessionid": CONTACT}, headers=lambda_auth)).status == 200
    assert (await api.call("POST", "/end_call", {"sessionid": "not-linked-4711"},
                           headers=lambda_auth)).status == 404

    for path in (f"/attribute-ui/?{CONTACT}", f"/attribute-ui?{CONTACT}", f"/amazon-connect-ui/?{QUERY_MARK}",
                 "/amazon-connect-ui/config.js", "/attribute-ui/display.js", "/clean_db", "/health",
                 "/openapi.json"):
        assert (await api.call("GET", path)).status in (200, 302), path
    scraped = await api.call("GET", f"/metrics?{QUERY_MARK}", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert scraped.status == 200
    assert (await api.call("GET", "/metrics", headers={"Authorization": f"Bearer {LINK_TOKEN}"})).status == 401
    secrets = [ATTRIBUTE, token[:40], token.split(".")[3][:20], inline.split(".")[3][:20], dtmf_of(started),
               dtmf_of(late), result_code, CONTACT, LATE_CONTACT, LINK_TOKEN, FEEDBACK_SECRET, QUERY_MARK,
               METRICS_TOKEN]
    assert [secret for secret in secrets if secret in scraped.body.decode()] == []
    return secrets


async def send_hostile_input(server: PluginProcess, secrets: list[str]) -> None:
    """Malformed and hostile requests, each carrying a secret where a careless log would copy it."""
    api = Api(server.base_url)
    code, token = secrets[4], secrets[1]
    json_type = {"Content-Type": "application/json"}
    for response in [
        await api.call("GET", f"/session_info/{CONTACT}?{QUERY_MARK}", headers={"Host": f"{code}.evil.example"}),
        await api.call("POST", "/start_communication", raw=f"purpose={code}",
                       headers={"Content-Type": "application/x-www-form-urlencoded"}),
        await api.call("POST", "/link_phone", raw=f'{{"dtmf": "{code}", "sessionid": "{CONTACT}", "dtmf": 1}}',
                       headers={**json_type, "Authorization": f"Bearer {LINK_TOKEN}"}),
        await api.call("POST", "/start_communication", raw="[" * 60_000, headers=json_type),
        await api.call("POST", "/start_communication", raw=f'{{"purpose": "{code}\\ud800"}}', headers=json_type),
        await api.call("GET", f"/lost/{code}/{CONTACT}?{QUERY_MARK}"),
        await api.call("GET", f"/session_info/{CONTACT}", headers={"X-Forwarded-For": code,
                                                                    "Cookie": f"agent={token}"}),
        await api.call("GET", f"/attribute-ui/{CONTACT}.js?{QUERY_MARK}"),
        await api.call("GET", "/health", headers={"X-Request-Id": code}),
        await api.call("POST", "/link_phone", {"dtmf": code, "sessionid": CONTACT},
                       headers={"Authorization": f"Bearer {LINK_TOKEN}", "X-Request-Id": CONTACT}),
    ]:
        assert 200 <= response.status < 500
    for head in [
        f"GET /attribute-ui/%00?{CONTACT} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode(),
        f"GET /attribute-ui/%ff?{CONTACT} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode(),
        f"GET /attribute-ui/..%2f{code}?{CONTACT} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode(),
        f"GET /x?{CONTACT} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\x01\r\n\r\n".encode(),
        f"GET /x?{CONTACT} HTTP/1.1\r\nHost: {code}/{CONTACT}\r\n\r\n".encode(),
        f"{code} /health?{CONTACT} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode(),
        f"GET /attribute-ui/?{CONTACT}{'a' * 70_000} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode(),
        f"GET /attribute-ui/?{CONTACT}{'a' * 5000} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode(),
        (f"POST /start_communication HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b"
         f"\r\nContent-Length: {len(code)}\r\nConnection: close\r\n\r\n{code}").encode(),
    ]:
        status, _ = await raw_request(server.port, head)
        assert status is None or 400 <= status < 500, head[:60]


@pytest.mark.gen_test(timeout=120)
@pytest.mark.parametrize("log_format", ["plain", "json"])
async def test_the_debug_log_of_a_real_server_holds_no_code_token_query_or_contact_id(
        tmp_path, keyset, mint, database_url, log_format):
    config = write_config(tmp_path / "debug.toml", keyset, database_url=database_url, log_level="debug",
                          link_phone_token=LINK_TOKEN, log_format=log_format, metrics=True,
                          metrics_token=METRICS_TOKEN)
    server = PluginProcess(config, log_dir=tmp_path).start()
    try:
        secrets = await drive_every_endpoint(server, mint)
        await send_hostile_input(server, secrets)
        health = await Api(server.base_url).call("GET", "/health")
        assert health.status == 200
    finally:
        assert server.terminate() == 0
    log = server.output()
    assert "DEBUG" in log
    assert "tornado.access" in log
    assert "session feedback (user_active) to 127.0.0.1 refused" in log
    assert "Traceback" not in log
    assert " ERROR " not in log
    assert '"level": "ERROR"' not in log
    leaked = [secret for secret in secrets if secret in log]
    assert leaked == [], f"the log holds {leaked}"
    if log_format == "json":
        check_json_lines(log, health.headers["X-Request-Id"])


def check_json_lines(log: str, request_id: str) -> None:
    """Every line one JSON object with time, level, logger, message; access lines with the request's fields."""
    entries = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert entries
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= set(entry), entry
        assert set(entry) <= {"time", "level", "logger", "message", "request_id", "route", "method", "status",
                              "duration_ms", "client", "exc_info", "stack_info"}, entry
    access = [entry for entry in entries if entry["logger"] == "tornado.access"]
    assert all({"route", "method", "status", "duration_ms", "client", "request_id"} <= set(e) for e in access)
    last_health = [entry for entry in access if entry["route"] == "/health"][-1]
    assert (last_health["request_id"], last_health["status"], last_health["method"]) == (request_id, 200, "GET")
    assert last_health["client"] == "127.0.0.1"
    # Lines written while a request is handled carry its id too: the failure budget's, the feedback's ...
    refused = [entry for entry in entries if "session feedback (user_active)" in entry["message"]]
    assert refused
    assert all(entry.get("request_id") for entry in refused)
