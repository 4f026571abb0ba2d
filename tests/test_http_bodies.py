"""Request bodies: the JSON endpoints read only JSON (415 otherwise), and hostile JSON is a 400, never a 500."""

from __future__ import annotations

import logging

import pytest

from tests.support import count_sessions, dtmf_of, raw_request

CONTACT = "3d5a7c9e-1b2f-4a6c-8e0d-2f4b6d8a0c1e"
JSON_ENDPOINTS = ("/start_communication", "/link_phone", "/end_call")
START = '{"purpose": "report_move"}'


def unsupported(response) -> bool:
    return response.status == 415 and response.json["error"] == "UnsupportedMediaType"


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("path", JSON_ENDPOINTS)
@pytest.mark.parametrize("content_type", [
    None, "text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x", "application/jsonp", "application/json-patch+json", "text/json",
    "application/json; charset=utf-16", "application/jwt",
])
async def test_json_endpoints_refuse_other_media_types_with_415(plugin, database_url, path, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    body = START if path == "/start_communication" else f'{{"dtmf": "1234567890", "sessionid": "{CONTACT}"}}'
    response = await plugin.api.call("POST", path, raw=body, headers=headers)
    assert unsupported(response), (response.status, response.body)
    assert "application/json" in response.json["detail"] or "UTF-8" in response.json["detail"]
    assert await count_sessions(database_url) == 0


@pytest.mark.gen_test(timeout=30)
async def test_a_cross_site_form_post_starts_nothing(plugin, database_url):
    # What a hostile page's <form enctype="text/plain"> sends: a body that happens to be JSON.
    response = await plugin.api.call("POST", "/start_communication", raw='{"purpose": "x", "pad": "="}',
                                     headers={"Content-Type": "text/plain", "Origin": "https://evil.example"})
    assert unsupported(response)
    assert await count_sessions(database_url) == 0


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON", "application/json; charset=UTF-8",
                                          'application/json;charset="utf-8"'])
async def test_json_with_or_without_a_charset_is_read(api, content_type):
    response = await api.call("POST", "/start_communication", raw=START, headers={"Content-Type": content_type})
    assert response.status == 200, response.body


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("content_type", [None, "application/jwt", "application/jwt; charset=us-ascii",
                                          "application/jose", "text/plain", "application/octet-stream"])
async def test_the_result_endpoint_takes_the_token_as_the_ecosystem_and_generic_clients_post_it(
        plugin, mint, content_type):
    api = plugin.api
    started = (await api.start("report_move")).json
    token = mint()
    path = "/session_result/" + started["attr_url"].rsplit("/", 1)[1]
    type_line = f"Content-Type: {content_type}\r\n" if content_type else ""  # a client library would add one
    status, body = await raw_request(plugin.runtime.port, (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{type_line}Content-Length: {len(token)}\r\n"
        f"Connection: close\r\n\r\n{token}").encode())
    assert status == 200, body
    await api.link(dtmf_of(started), CONTACT)
    assert (await api.info(CONTACT)).json["auth_result"]["status"] == "succes"


@pytest.mark.gen_test(timeout=30)
@pytest.mark.parametrize("content_type", ["application/json", "multipart/form-data; boundary=x", "image/png",
                                          "application/x-www-form-urlencoded"])
async def test_the_result_endpoint_refuses_bodies_that_cannot_be_a_compact_token(api, mint, content_type):
    started = (await api.start("report_move")).json
    response = await api.call("POST", "/session_result/" + started["attr_url"].rsplit("/", 1)[1], raw=mint(),
                              headers={"Content-Type": content_type})
    assert unsupported(response)
    assert "application/jwt" in response.json["detail"]
    retry = await api.post_result(started["attr_url"], mint())
    assert retry.status == 200  # nothing was used up


HOSTILE = [
    ("[" * 60_000, "nested deeper than 32 levels"),
    ('{"purpose": ' + "[" * 30_000 + "]" * 30_000 + "}", "nested deeper than 32 levels"),
    ('{"purpose": "report_move", "x": ' + "{\"a\": " * 40 + "1" + "}" * 40 + "}", "nested deeper than 32 levels"),
    ('{"purpose": "report_move", "n": 1' + "0" * 5000 + "}", "more than 1000 digits"),
    ('{"purpose": "report_move", "n": 1e999}', "out of range"),
    ('{"purpose": "report_move", "n": -1e999}', "out of range"),
    ('{"purpose": "report_move", "n": 0.' + "1" * 2100 + "}", "more than 1000 digits"),
    ('{"purpose": "report_move", "n": NaN}', "NaN is not a JSON number"),
    ('{"purpose": "report_move", "n": Infinity}', "Infinity is not a JSON number"),
    ('{"purpose": "report_move", "n": -Infinity}', "-Infinity is not a JSON number"),
    ('{"purpose": "report_move", "purpose": "other"}', "duplicate key"),
    ('{"purpose": "a\\ud800b"}', "lone UTF-16 surrogate"),
    ('{"purpose": "report_move", "x": ["\\udfff"]}', "lone UTF-16 surrogate"),
    ('{"purpose": "report_move", "\\ud83d": 1}', "lone UTF-16 surrogate"),
    (b'{"purpose": "\xff\xfe"}', "not UTF-8"),
    (b'{"purpose": "\xed\xa0\x80"}', "not UTF-8"),  # a surrogate encoded in UTF-8 bytes
    ('\ufeff{"purpose": "report_move"}', "not valid JSON"),
]


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize(("body", "detail"), HOSTILE, ids=range(len(HOSTILE)))
async def test_hostile_json_is_a_400_naming_the_problem_and_stores_nothing(plugin, database_url, body, detail,
                                                                           caplog):
    caplog.set_level(logging.DEBUG)
    response = await plugin.api.call("POST", "/start_communication", raw=body,
                                     headers={"Content-Type": "application/json"})
    assert response.status == 400, response.body
    assert response.json["error"] == "BadRequest"
    assert detail in response.json["detail"]
    assert await count_sessions(database_url) == 0
    assert all(record.levelno < logging.ERROR for record in caplog.records), caplog.text


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("path", ["/link_phone", "/end_call"])
async def test_hostile_json_to_the_lambda_endpoints_is_a_400(api, path):
    for body, detail in HOSTILE:
        response = await api.call("POST", path, raw=body, headers={"Content-Type": "application/json"})
        assert response.status == 400, (detail, response.body)
        assert detail in response.json["detail"]


@pytest.mark.gen_test(timeout=30)
async def test_a_surrogate_pair_and_plain_numbers_are_fine(api):
    response = await api.call("POST", "/start_communication",
                              raw='{"purpose": "report_move \\ud83d\\ude00", "n": [1, -2.5e3, 12345678901234567890]}',
                              headers={"Content-Type": "application/json"})
    assert response.status == 200, response.body


@pytest.mark.gen_test(timeout=30)
async def test_a_body_far_over_the_limit_is_refused_from_its_head_with_one_json_413(plugin):
    import asyncio

    body = b'{"purpose": "' + b"x" * 400_000 + b'"}'
    reader, writer = await asyncio.open_connection("127.0.0.1", int(plugin.base_url.rsplit(":", 1)[1]))
    head = (f"POST /start_communication HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    writer.write(head)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(65536), 10)  # answered before any of the body was sent
    writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"
    assert rest.count(b"HTTP/1.1") == 0  # one answer, no bare 400 after it
    assert answer.endswith(b'"error": "PayloadTooLarge", "detail": "request body over 65536 bytes"}')
