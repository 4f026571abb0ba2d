"""The filter on Tornado's loggers, for every line it knows (some come only from other Tornado versions)."""

from __future__ import annotations

import logging

import pytest

from connect_plugin.logs import RedactRequests, install, route_name

CONTACT = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
TOKEN = "eyJ0eXAiOiJKV1QiLCJjdHkiOiJKV1QiLCJlbmMiOiJBMTI4Q0JDLUhTMjU2In0.abc"


def rewritten(logger: str, msg: str, *args: object) -> str:
    record = logging.LogRecord(logger, logging.WARNING, __file__, 1, msg, args, None)
    assert RedactRequests().filter(record)
    return record.getMessage()


@pytest.mark.parametrize(("logger", "msg", "args", "expected"), [
    ("tornado.general", "%d %s: %s", (403, f"GET /attribute-ui/{CONTACT}/x?{CONTACT} (10.0.0.1)",
                                      f"{CONTACT} is not in root static directory"),
     "403 GET /attribute-ui/<...>/x (10.0.0.1): <redacted>"),
    ("tornado.general", "%d %s: %s", (400, f"POST /start_communication?{CONTACT} (::1)",
                                      f"Invalid body: Invalid x-www-form-urlencoded body: {CONTACT}"),
     "400 POST /start_communication (::1): Invalid body"),
    ("tornado.application", "Uncaught exception %s\n%r", (f"GET /session_info/{CONTACT} (127.0.0.1)",
                                                          f"HTTPServerRequest(uri='/session_info/{CONTACT}')"),
     "Uncaught exception GET /session_info/<contact> (127.0.0.1)"),
    ("tornado.general", "Malformed HTTP message from %s: %s", ("127.0.0.1", f"Invalid header value 'Bearer {TOKEN}'"),
     "Malformed HTTP message from 127.0.0.1: Invalid header value"),
    ("tornado.general", "Malformed HTTP message from %s: %s", ("127.0.0.1", f"Invalid Host header: '{CONTACT}'"),
     "Malformed HTTP message from 127.0.0.1: Invalid Host header"),
    ("tornado.general", "Invalid x-www-form-urlencoded body: %s", (f"bad field {TOKEN}",),
     "Invalid x-www-form-urlencoded body: bad field"),
    ("tornado.general", "Invalid cookie signature %r", (TOKEN,), "Invalid cookie signature '<redacted>'"),
    ("tornado.general", "Expired cookie %r", (TOKEN,), "Expired cookie '<redacted>'"),
    ("tornado.general", "Could not open static file %r: %s", (f"/srv/web/{CONTACT}", "Permission denied"),
     "Could not open static file '<redacted>': Permission denied"),
    ("tornado.application", "Delegate for %s %s request not found", ("GET", f"/x/{CONTACT}?{CONTACT}"),
     "Delegate for GET /x/<...> request not found"),
    ("tornado.general", "Timeout reading body from %s", ("127.0.0.1",), "Timeout reading body from 127.0.0.1"),
])
def test_known_tornado_lines_lose_what_the_request_carried(logger, msg, args, expected):
    assert rewritten(logger, msg, *args) == expected


def test_install_puts_the_filter_on_tornados_loggers_once():
    install()
    install()
    for name in ("tornado.general", "tornado.application", "tornado.access"):
        assert sum(isinstance(f, RedactRequests) for f in logging.getLogger(name).filters) == 1


@pytest.mark.parametrize(("path", "shown"), [
    ("/session_result/AbC123xyz", "/session_result/<resultcode>"),
    (f"/session_info/{CONTACT}", "/session_info/<contact>"),
    (f"/session_events/{CONTACT}", "/session_events/<contact>"),
    ("/attribute-ui/connect-streams-min.js", "/attribute-ui/connect-streams-min.js"),
    ("/attribute-ui/", "/attribute-ui/"),
    (f"/attribute-ui/{CONTACT}", "/attribute-ui/<...>"),
    ("/lost/4812093371/x", "/lost/<...>/x"),
    ("/Agent/Login", "/<...>/<...>"),
    (f"/a?{CONTACT}", "/a"),
])
def test_route_names_show_plain_words_only(path, shown):
    assert route_name(path) == shown
