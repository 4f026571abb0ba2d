"""Framing in a real browser: a page on a foreign origin cannot frame the display or the agent page.

The framing page is served by a small server of its own on loopback: another
port is another origin.
"""

from __future__ import annotations

import asyncio
import html
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from tests.browser.pages import WAIT_MS

CONTACT = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
#: What Chromium shows in a frame it refused to fill.
REFUSED = "chrome-error://chromewebdata/"


class FramerPage(RequestHandler):
    """``GET /agent?src=<url>``: a page whose only content is an iframe of ``url``."""

    def get(self) -> None:
        src = html.escape(self.get_query_argument("src"))
        self.finish(f'<!doctype html><title>framer</title><iframe id="framed" src="{src}"></iframe>')


class Framer:
    """The framing server, on its own loop in a thread; ``origin`` is where it serves."""

    def __init__(self) -> None:
        sockets = bind_sockets(0, "127.0.0.1")
        self.origin = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(self.loop)
            self.server = HTTPServer(Application([(r"/agent", FramerPage)]))
            self.server.add_sockets(sockets)
            self.loop.call_soon(ready.set)
            self.loop.run_forever()

        self.thread = threading.Thread(target=serve, name="framer", daemon=True)
        self.thread.start()
        ready.wait(10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.server.stop)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture
def framer(browser: Any) -> Iterator[Any]:
    """``framer(url)``: a page on the framing server's origin around ``url``, and where its frame ended up.

    ``goto`` returns after the load event, which waits for the iframe too; a
    frame the browser refused to fill holds Chromium's error page instead.
    """
    server = Framer()
    contexts: list[Any] = []

    def open_(url: str) -> tuple[Any, str]:
        context = browser.new_context()
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        page = context.new_page()
        page.goto(f"{server.origin}/agent?src={quote(url, safe='')}")
        (frame,) = page.main_frame.child_frames
        return page, frame.url

    open_.origin = server.origin  # type: ignore[attr-defined]
    yield open_
    for context in contexts:
        context.close()
    server.stop()


def test_a_foreign_origin_cannot_frame_the_display(live, calls, framer, mint):
    plugin = live()
    calls(plugin).linked("report_move", CONTACT, mint())
    page, framed = framer(f"{plugin.base_url}/attribute-ui/?{CONTACT}")
    assert framed == REFUSED
    assert page.frame_locator("#framed").locator("main#display").count() == 0


def test_a_foreign_origin_cannot_frame_the_agent_page(live, framer):
    plugin = live()
    _, framed = framer(f"{plugin.base_url}/amazon-connect-ui/")
    assert framed == REFUSED


def test_an_agent_page_on_an_allowed_origin_frames_the_display(live, calls, framer, mint):
    plugin = live(allowed_origins=[framer.origin])
    calls(plugin).linked("report_move", CONTACT, mint())
    url = f"{plugin.base_url}/attribute-ui/?{CONTACT}"
    page, framed = framer(url)
    assert framed == url
    page.frame_locator("#framed").locator('main[data-state="verified"]').wait_for()


def test_frame_ancestors_lets_the_named_origin_frame_the_agent_page(live, framer):
    plugin = live(frame_ancestors=[framer.origin])
    url = f"{plugin.base_url}/amazon-connect-ui/"
    page, framed = framer(url)
    assert framed == url
    page.frame_locator("#framed").locator("#attributes").wait_for(state="attached")
