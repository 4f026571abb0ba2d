"""``GET /session_events/<contact>`` over real HTTP/1.1, on SQLite and on PostgreSQL.

The client below is a plain socket: it sends the request a browser's
EventSource sends and reads the chunked stream as it arrives, so each test
sees exactly what a display would, when it would.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from tests.sse_client import EventStream
from tests.support import dtmf_of, free_port

CONTACT = "0b6f3a52-6c1d-4e8a-9f2b-7d3c5e1a9b40"
OTHER_CONTACT = "9e2d4c6b-8a0f-4b1d-a3c5-e7f9b1d3c5a7"
TRANSLATIONS = {
    "nl": {"report_move": "Verhuizing doorgeven", "email": "E-mailadres"},
    "en": {"report_move": "Report a move", "email": "E-mail address"},
}


async def linked(api: Any, purpose: str = "report_move", contact: str = CONTACT, **start: Any) -> dict[str, Any]:
    """Start a session and link it to ``contact``; the start answer."""
    started = await api.start(purpose, **start)
    assert (await api.link(dtmf_of(started), contact)).status == 200
    return started.json


@pytest.mark.gen_test(timeout=30)
async def test_stream_opens_with_retry_labels_and_the_current_state(plugin_factory):
    plugin = await plugin_factory(translations=TRANSLATIONS)
    await linked(plugin.api)
    stream = await EventStream.open(plugin.base_url, f"/session_events/{CONTACT}", {"Accept-Language": "en-GB,en"})
    assert stream.status == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.headers["cache-control"] == "no-store"
    assert (await stream.next()).retry == 2000
    labels = await stream.next()
    assert labels.event == "labels"
    assert labels.json["locale"] == "en"
    assert labels.json["labels"]["waiting"] == "Waiting for the authentication result…"
    assert labels.json["labels"]["report_move"] == "Report a move"
    session = await stream.next()
    assert session.event == "session"
    assert session.json == {"state": "waiting", "locale": "en", "purpose": "report_move",
                            "purpose_label": "Report a move"}
    stream.close()


@pytest.mark.gen_test(timeout=30)
async def test_result_posted_after_the_stream_opened_arrives_as_a_verified_event(plugin_factory, mint, caplog):
    caplog.set_level(logging.DEBUG, logger="connect_plugin")
    caplog.set_level(logging.DEBUG, logger="tornado")
    plugin = await plugin_factory(translations=TRANSLATIONS)
    started = await linked(plugin.api)
    stream = await EventStream.open(plugin.base_url, f"/session_events/{CONTACT}", {"Accept-Language": "nl"})
    assert (await stream.next_event("session")).json["state"] == "waiting"
    token = mint(attributes={"email": "jane@example.com", "fullname": "Jane Roe"},
                 session_url="https://auth.example.nl/session/1")
    posted_at = time.monotonic()
    assert (await plugin.api.post_result(started["attr_url"], token)).status == 200
    event = (await stream.next_event("session")).json
    elapsed = time.monotonic() - posted_at
    print(f"\nresult post -> verified event: {elapsed * 1000:.0f} ms")
    assert elapsed < 5
    assert event == {
        "state": "verified", "locale": "nl", "purpose": "report_move", "purpose_label": "Verhuizing doorgeven",
        "attributes": [
            {"key": "email", "label": "E-mailadres", "value": "jane@example.com"},
            {"key": "fullname", "label": None, "value": "Jane Roe"},
        ],
    }  # no session_url: session feedback is the server's business
    stream.close()
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith(("connect_plugin", "tornado")))
    assert "jane@example.com" not in logged
    assert "Jane Roe" not in logged
    assert CONTACT not in logged


@pytest.mark.gen_test(timeout=30)
async def test_failed_result_is_a_failed_event_without_attributes(plugin_factory, mint):
    plugin = await plugin_factory()
    await linked(plugin.api, auth_result=mint(status="failed"))
    stream = await EventStream.open(plugin.base_url, f"/session_events/{CONTACT}")
    event = (await stream.next_event("session")).json
    assert event["state"] == "failed"
    assert "attributes" not in event
    stream.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_quiet_stream_gets_keepalive_comments(plugin_factory):
    plugin = await plugin_factory(events_keepalive=1)
    await linked(plugin.api)
    stream = await EventStream.open(plugin.base_url, f"/session_events/{CONTACT}")
    await stream.next_event("session")
    block = await stream.next(timeout=5)
    assert block.comments == ["keepalive"]
    assert block.event is None
    stream.close()


@pytest.mark.gen_test(timeout=30)
async def test_unknown_contact_is_no_session_until_a_call_is_linked_to_it(plugin_factory):
    plugin = await plugin_factory()
    stream = await EventStream.open(plugin.base_url, f"/session_events/{CONTACT}")
    assert stream.status == 200
    assert (await stream.next_event("session")).json["state"] == "no_session"
    await linked(plugin.api, "request_passport")
    event = (await stream.next_event("session")).json
    assert (event["state"], event["purpose"]) == ("waiting", "request_passport")
    stream.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_stream_sees_only_its_own_contact(plugin_factory, mint):
    plugin = await plugin_factory(events_keepalive=1)
    await linked(plugin.api)
    stream = await EventStream.open(plugin.base_url, f"/session_events/{CONTACT}")
    assert (await stream.next_event("session")).json["state"] == "waiting"
    await linked(plugin.api, "request_passport", OTHER_CONTACT, auth_result=mint())
    block = await stream.next(timeout=5)  # the other call's link wakes nobody here
    assert block.comments == ["keepalive"]
    stream.close()


@pytest.mark.gen_test(timeout=30)
async def test_locale_follows_accept_language_and_falls_back_to_default_locale(plugin_factory):
    translations = {**TRANSLATIONS, "fr": {"report_move": "Déménager"}}
    plugin = await plugin_factory(default_locale="en", translations=translations)
    await linked(plugin.api)
    cases = {"nl-NL,nl;q=0.9": "nl", "de-DE,fr;q=0.5": "fr", "de-DE": "en", "en;q=0,nl;q=0.2": "nl", "": "en"}
    for header, expected in cases.items():
        stream = await EventStream.open(plugin.base_url, f"/session_events/{CONTACT}",
                                        {"Accept-Language": header} if header else {})
        labels = (await stream.next_event("labels")).json
        session = (await stream.next_event("session")).json
        stream.close()
        assert (labels["locale"], session["locale"]) == (expected, expected), header
    # fr has labels but no built-in interface strings: English ones, the configured label
    stream = await EventStream.open(plugin.base_url, f"/session_events/{CONTACT}", {"Accept-Language": "fr"})
    labels = (await stream.next_event("labels")).json["labels"]
    assert (labels["purpose"], labels["report_move"]) == ("Purpose", "Déménager")
    stream.close()


@pytest.mark.gen_test(timeout=30)
async def test_cors_echoes_an_allowed_origin_and_no_other(plugin_factory):
    plugin = await plugin_factory(allowed_origins=["https://display.example.nl"])
    await linked(plugin.api)
    for path in (f"/session_events/{CONTACT}", f"/session_info/{CONTACT}", "/session_info/unknown-contact"):
        allowed = await EventStream.open(plugin.base_url, path, {"Origin": "https://display.example.nl"})
        denied = await EventStream.open(plugin.base_url, path, {"Origin": "https://evil.example"})
        allowed.close()
        denied.close()
        assert allowed.headers["access-control-allow-origin"] == "https://display.example.nl", path
        assert "access-control-allow-origin" not in denied.headers, path
        assert "Origin" in allowed.headers["vary"]
    preflight = await plugin.api.call("OPTIONS", f"/session_events/{CONTACT}",
                                      headers={"Origin": "https://display.example.nl",
                                               "Access-Control-Request-Method": "GET"})
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://display.example.nl"
    assert preflight.headers["Access-Control-Allow-Methods"] == "GET"
    start = await plugin.api.call("POST", "/start_communication", {"purpose": "x"},
                                  headers={"Origin": "https://display.example.nl"})
    assert "Access-Control-Allow-Origin" not in start.headers  # only the display's endpoints
    refused = await plugin.api.call("OPTIONS", "/start_communication", headers={"Origin": "https://display.example.nl"})
    assert refused.status == 405


@pytest.mark.gen_test(timeout=30)
async def test_without_allowed_origins_no_origin_may_read(plugin_factory):
    plugin = await plugin_factory()
    await linked(plugin.api)
    stream = await EventStream.open(plugin.base_url, f"/session_events/{CONTACT}",
                                    {"Origin": f"http://127.0.0.1:{free_port()}"})
    stream.close()
    assert "access-control-allow-origin" not in stream.headers


@pytest.mark.gen_test(timeout=30)
async def test_store_down_sends_unavailable_with_a_longer_retry_and_ends(plugin_factory):
    plugin = await plugin_factory(database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/nothing")
    stream = await EventStream.open(plugin.base_url, f"/session_events/{CONTACT}")
    assert stream.status == 200  # an EventSource gives up for good on an error status
    session = await stream.next_event("session")
    assert session.json["state"] == "unavailable"
    assert session.retry == 5000
    assert await stream.ends(5)


@pytest.mark.gen_test(timeout=30)
async def test_a_display_that_goes_away_stops_listening(plugin_factory):
    plugin = await plugin_factory()
    await linked(plugin.api)
    notifier = plugin.runtime.parts.notifier
    streams = [await EventStream.open(plugin.base_url, f"/session_events/{CONTACT}") for _ in range(3)]
    for stream in streams:
        await stream.next_event("session")
    assert notifier.listener_count() == 3
    for stream in streams:
        stream.close()
    deadline = time.monotonic() + 5
    while notifier.listener_count() and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert notifier.listener_count() == 0
    assert plugin.runtime.app.in_flight.count == 0


@pytest.mark.gen_test(timeout=30)
async def test_a_graceful_stop_ends_open_streams_at_once(plugin_factory):
    plugin = await plugin_factory()
    await linked(plugin.api)
    stream = await EventStream.open(plugin.base_url, f"/session_events/{CONTACT}")
    await stream.next_event("session")
    began = time.monotonic()
    await plugin.runtime.stop(grace=10)
    assert time.monotonic() - began < 5  # not the grace period: the stream let go when told
    assert await stream.ends(1)


@pytest.mark.gen_test(timeout=30)
async def test_a_path_that_cannot_be_a_contact_id_is_404(plugin_factory):
    plugin = await plugin_factory()
    response = await plugin.api.call("GET", "/session_events/a%20b")
    assert response.status == 404
    assert response.json == {"error": "NotFound"}
