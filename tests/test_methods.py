"""A method a route does not serve: 405 in the plugin's JSON shape, with the Allow header RFC 9110 asks for."""

from __future__ import annotations

import pytest

CONTACT = "2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d"


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/start_communication", {"POST"}),
        ("PUT", "/session_result/abc", {"POST"}),
        ("GET", "/link_phone", {"POST"}),
        ("DELETE", "/end_call", {"POST"}),
        ("POST", f"/session_info/{CONTACT}", {"GET", "OPTIONS"}),
        ("POST", f"/session_events/{CONTACT}", {"GET", "OPTIONS"}),
        ("POST", "/display_labels", {"GET", "OPTIONS"}),
        ("POST", "/clean_db", {"GET"}),
        ("POST", "/health", {"GET"}),
        ("POST", "/openapi.json", {"GET"}),
        ("POST", "/attribute-ui/", {"GET", "HEAD"}),
        ("POST", "/amazon-connect-ui/config.js", {"GET"}),
        ("POST", "/attribute-ui", {"GET"}),
    ],
)
async def test_an_unserved_method_is_405_with_allow(api, method, path, allowed):
    response = await api.call(method, path, raw=b"" if method in ("POST", "PUT") else None)
    assert response.status == 405
    assert response.json == {"error": "MethodNotAllowed"}
    assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed
