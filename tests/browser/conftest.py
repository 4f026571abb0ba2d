"""Fixtures for the browser tests: Debian's Chromium through Playwright, and live plugins.

Chromium: ``$CONNECT_PLUGIN_CHROMIUM``, else ``/usr/bin/chromium``.  Without
it these tests skip, unless ``CI`` is set: then they fail.  Playwright never
downloads a browser here.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.live import Calls, LivePlugin
from tests.browser.pages import WAIT_MS
from tests.support import KeySet, free_port, write_config

CHROMIUM = os.environ.get("CONNECT_PLUGIN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium for this module's tests."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI needs Chromium at {CHROMIUM} (apt-get install chromium)")
        pytest.skip(f"no Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """``open_page(locale="en-US", width=640, height=140)``: a page in a fresh browser context.

    ``locale`` sets both ``navigator.languages`` and the ``Accept-Language`` header.
    The default size is the agent page's attribute frame.  A test fails when a
    page throws an uncaught exception or breaks its Content-Security-Policy.
    """
    contexts: list[Any] = []
    problems: list[str] = []

    def open_(locale: str = "en-US", width: int = 640, height: int = 140) -> Any:
        context = browser.new_context(locale=locale, viewport={"width": width, "height": height})
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(f"uncaught exception: {error}"))
        page.on("console", lambda message: problems.append(message.text)
                if "Content Security Policy" in message.text else None)
        return page

    yield open_
    for context in contexts:
        context.close()
    assert problems == [], "the pages raised errors or broke their Content-Security-Policy"


@pytest.fixture
def live(tmp_path: Path, keyset: KeySet, sqlite_template: Path) -> Iterator[Callable[..., LivePlugin]]:
    """``live(**settings)``: a started plugin over a fresh SQLite file of its own; stopped after the test."""
    plugins: list[LivePlugin] = []

    def start(**settings: Any) -> LivePlugin:
        port = free_port()
        database = tmp_path / f"sessions{len(plugins)}.sqlite3"
        shutil.copy(sqlite_template, database)
        values = {"internal_url": f"http://127.0.0.1:{port}", "database_url": f"sqlite:///{database}", **settings}
        config = write_config(tmp_path / f"plugin{len(plugins)}.toml", keyset, **values)
        plugin = LivePlugin(config, port)
        plugins.append(plugin)
        return plugin.start()

    yield start
    for plugin in reversed(plugins):
        plugin.stop()


@pytest.fixture
def calls() -> Callable[[LivePlugin], Calls]:
    """``calls(plugin)``: a blocking client for a plugin's protocol endpoints."""
    return lambda plugin: Calls(plugin.base_url)
