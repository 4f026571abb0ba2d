"""Request ids: every response names one in ``X-Request-Id``; a proxy's is kept only when it is trusted and tame."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from connect_plugin import logs

FRESH = re.compile(r"^[0-9a-f]{16}$")


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Request ids do not depend on the store: SQLite only."""
    return sqlite_url


@pytest.mark.gen_test(timeout=60)
async def test_every_response_names_a_fresh_request_id(plugin):
    api = plugin.api
    answers = [
        await api.call("GET", "/health"),
        await api.call("GET", "/no-such-page"),  # 404 from the fallback
        await api.call("POST", "/health", raw=""),  # 405
        await api.call("GET", "/health", headers={"Host": "attacker.example"}),  # /health takes any Host ...
        await api.call("GET", "/openapi.json", headers={"Host": "attacker.example"}),  # ... a route 421s first
        await api.call("POST", "/start_communication", raw="x", headers={"Content-Type": "text/plain"}),  # 415
        await api.call("GET", "/attribute-ui/display.js"),  # a file
    ]
    assert [a.status for a in answers] == [200, 404, 405, 200, 421, 415, 200]
    ids = [a.headers["X-Request-Id"] for a in answers]
    assert all(FRESH.match(request_id) for request_id in ids), ids
    assert len(set(ids)) == len(ids)


@pytest.mark.gen_test(timeout=60)
async def test_an_incoming_request_id_is_ignored_from_an_untrusted_client(plugin):
    answer = await plugin.api.call("GET", "/health", headers={"X-Request-Id": "from-the-client-1234"})
    assert FRESH.match(answer.headers["X-Request-Id"])


@pytest.mark.gen_test(timeout=60)
async def test_a_trusted_proxys_request_id_is_kept_when_it_is_a_short_plain_token(plugin_factory):
    plugin = await plugin_factory(trusted_proxies=["127.0.0.1"])
    api = plugin.api

    async def answered_id(given: str) -> str:
        return (await api.call("GET", "/health", headers={"X-Request-Id": given})).headers["X-Request-Id"]

    assert await answered_id("5f0c2d9e8b7a4c3d2e1f0a9b8c7d6e5f") == "5f0c2d9e8b7a4c3d2e1f0a9b8c7d6e5f"  # nginx's
    assert await answered_id("req_42.a-b") == "req_42.a-b"
    for unsafe in ("x" * 65, "has space", "a;b", "-leading-dash", "quote\"d", "line%0Abreak"):
        assert FRESH.match(await answered_id(unsafe)), unsafe


def test_json_lines_hold_only_the_known_fields():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonLines())
    handler.addFilter(logs.RequestContext())
    logger = logging.getLogger("tests.json_lines")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        logger.warning("%d things", 3, extra={"whatever_a_library_adds": "geheim", "route": "/health"})
        logger.info({"dict_message": "geheim"})
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert set(first) == {"time", "level", "logger", "message", "route"}
    assert (first["level"], first["logger"], first["message"], first["route"]) == (
        "WARNING", "tests.json_lines", "3 things", "/health")
    assert first["time"].endswith("+00:00")
    assert "geheim" not in json.dumps(second)
    assert third["exc_info"].startswith("Traceback")
    assert third["message"] == "failed"
