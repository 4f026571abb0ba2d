"""Malformed request targets: a 4xx JSON answer, never a 500, and nothing of the query in the logs.

Sent over a plain socket, byte for byte as written here: an HTTP client
library would clean them up first.
"""

from __future__ import annotations

import json
import logging

import pytest

from tests.support import raw_request

CONTACT = "5e1f0c3a-9d2b-4c7e-8a6f-1b2c3d4e5f60"


def get(target: bytes) -> bytes:
    return b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize(("target", "status", "detail"), [
    (b"/attribute-ui/?%00" + CONTACT.encode(), 400, "control characters"),
    (b"/attribute-ui/?%ff%fe", 400, "not UTF-8"),
    (b"/attribute-ui/?" + CONTACT.encode() + b"\xff", 400, "percent-encoded"),
    (b"/attribute-ui\xc3\xa9/", 400, "percent-encoded"),
    (b"/attribute-ui?" + CONTACT.encode() + b"%0d%0aSet-Cookie:x=1", 400, "control characters"),
    (b"*", 400, "must be a path"),
    (b"/attribute-ui/" + b"a" * 5000, 414, "over 4096 bytes"),
    (b"/attribute-ui/?" + b"a" * 5000, 414, "over 4096 bytes"),
])
async def test_malformed_targets_are_refused_with_a_json_4xx(plugin, target, status, detail, caplog):
    caplog.set_level(logging.DEBUG)
    got, body = await raw_request(plugin.runtime.port, get(target))
    assert got == status, body
    answer = json.loads(body)
    assert answer["error"] in ("BadRequest", "URITooLong")
    assert detail in answer["detail"]
    assert CONTACT not in caplog.text
    assert "Set-Cookie" not in caplog.text
    assert all(record.levelno < logging.ERROR for record in caplog.records), caplog.text


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("target", [
    b"/attribute-ui/%00?" + CONTACT.encode(),
    b"/attribute-ui/%ff",
    b"/attribute-ui/%c2%84",
    b"/attribute-ui/%c0%ae%c0%ae/secret",
    b"/session_info/%00",
    b"/session_events/%c2%84",
    b"/amazon-connect-ui/%0d%0a",
    b"/attribute-ui/..%2f..%2fetc%2fpasswd",
    b"/attribute-ui/..%5c..%5cwin.ini",
    b"/attribute-ui//etc/passwd",
    b"//session_info/" + CONTACT.encode(),
])
async def test_paths_that_can_name_nothing_served_are_404(plugin, target, caplog):
    caplog.set_level(logging.DEBUG)
    status, body = await raw_request(plugin.runtime.port, get(target))
    assert status == 404, body
    assert json.loads(body) == {"error": "NotFound"}
    assert CONTACT not in caplog.text
    assert all(record.levelno < logging.ERROR for record in caplog.records), caplog.text


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("target", [b"/attribute-ui/../../etc/passwd", b"/attribute-ui/%2e%2e/%2e%2e/etc/passwd",
                                    b"/amazon-connect-ui/../../connect_plugin/config/settings.py",
                                    b"/attribute-ui/%2E%2E/__init__.py?" + CONTACT.encode()])
async def test_dot_segments_out_of_a_page_folder_are_forbidden(plugin, target, caplog):
    caplog.set_level(logging.DEBUG)
    status, body = await raw_request(plugin.runtime.port, get(target))
    assert status == 403
    assert json.loads(body) == {"error": "Forbidden"}
    assert CONTACT not in caplog.text


@pytest.mark.gen_test(timeout=60)
@pytest.mark.parametrize("head", [
    b"GET /attribute-ui/?" + CONTACT.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Token: a\x01" + CONTACT.encode()
    + b"\r\n\r\n",
    b"GET /attribute-ui/?" + CONTACT.encode() + b" HTTP/1.1\r\nHost: " + CONTACT.encode() + b"/x\r\n\r\n",
    b"GET /attribute-ui/?" + CONTACT.encode() + b" HTTP/1.1\r\nHost: a\r\nHost: " + CONTACT.encode() + b"\r\n\r\n",
    b"GET /attribute-ui/?" + CONTACT.encode() + b" HTTP/1.1\r\n\r\n",  # no Host
    b"GET /attribute-ui/?" + CONTACT.encode() + b"\x01 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GE\x00T /attribute-ui/?" + CONTACT.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET /attribute-ui/?" + CONTACT.encode() + b" HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n",
])
async def test_malformed_requests_are_refused_without_logging_what_they_carried(plugin, head, caplog):
    caplog.set_level(logging.DEBUG)
    status, _ = await raw_request(plugin.runtime.port, head)
    assert status is None or 400 <= status < 500
    assert CONTACT not in caplog.text
    assert all(record.levelno < logging.ERROR for record in caplog.records), caplog.text


@pytest.mark.gen_test(timeout=60)
async def test_a_request_head_over_64_kib_is_dropped_without_an_error(plugin, caplog):
    caplog.set_level(logging.DEBUG)
    status, _ = await raw_request(plugin.runtime.port, get(b"/attribute-ui/?" + CONTACT.encode() + b"a" * 70_000))
    assert status is None or 400 <= status < 500
    assert CONTACT not in caplog.text
    assert all(record.levelno < logging.ERROR for record in caplog.records), caplog.text
    assert (await plugin.api.call("GET", "/health")).status == 200


@pytest.mark.gen_test(timeout=60)
async def test_unusual_methods_and_unknown_paths_are_4xx_and_logged_without_secrets(plugin, caplog):
    caplog.set_level(logging.DEBUG)
    code = "4812093371"
    for head in (
        f"{code} /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode(),
        f"GET /lost/{code}/{CONTACT}?{CONTACT} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode(),
        f"DELETE /session_info/{CONTACT} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode(),
    ):
        status, _ = await raw_request(plugin.runtime.port, head)
        assert status is not None
        assert 400 <= status < 500
    assert code not in caplog.text
    assert CONTACT not in caplog.text


@pytest.mark.gen_test(timeout=60)
async def test_the_display_redirect_keeps_a_clean_query_and_logs_none_of_it(plugin, caplog):
    caplog.set_level(logging.DEBUG)
    status, _ = await raw_request(plugin.runtime.port, get(b"/attribute-ui?" + CONTACT.encode()))
    assert status == 302
    assert CONTACT not in caplog.text
