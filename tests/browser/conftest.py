"""Fixtures for the browser tests: Debian's Chromium through Playwright, and live plugins.

Chromium: ``$CONNECT_PLUGIN_CHROMIUM``, else ``/usr/bin/chromium``.  Without
it these tests skip, unless ``CI`` is set: then they fail.  Playwright never
downloads a browser here.  The npm packages the pages are tested with
(``tests/browser/npm``, pinned by its lockfile) are installed by ``.ci/run``, or
with ``npm ci`` on first use; without npm those tests skip (fail under CI).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.browser.live import Calls, LivePlugin
from tests.browser.pages import AXE_SCRIPT, STREAMS_LIBRARY, WAIT_MS, npm_file
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
    """``open_page(locale="en-US", width=640, height=140, zoom=1, axe=False)``: a page in a fresh context.

    ``locale`` sets both ``navigator.languages`` and the ``Accept-Language`` header.
    The default size is the agent page's attribute frame.  ``zoom=2`` is the
    browser's 200 % zoom: the same physical frame, half as many CSS pixels, each
    drawn twice as large.  ``axe=True`` puts axe-core into every frame the page
    opens (see ``pages.axe_violations``).  A test fails when a page throws an
    uncaught exception or breaks its Content-Security-Policy.
    """
    contexts: list[Any] = []
    problems: list[str] = []

    def open_(locale: str = "en-US", width: int = 640, height: int = 140, zoom: int = 1, axe: bool = False) -> Any:
        context = browser.new_context(locale=locale, viewport={"width": width // zoom, "height": height // zoom},
                                      device_scale_factor=zoom)
        context.set_default_timeout(WAIT_MS)
        if axe:
            context.add_init_script(path=str(npm_file(AXE_SCRIPT)))  # run by the browser in every frame, CSP or not
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
    """``live(**settings)``: a started plugin over a fresh SQLite file of its own; stopped after the test.

    ``hook_plugins=[...]`` registers extra plugin objects (hook implementations).
    """
    plugins: list[LivePlugin] = []

    def start(hook_plugins: Sequence[object] = (), **settings: Any) -> LivePlugin:
        port = free_port()
        database = tmp_path / f"sessions{len(plugins)}.sqlite3"
        shutil.copy(sqlite_template, database)
        values = {"internal_url": f"http://127.0.0.1:{port}", "database_url": f"sqlite:///{database}", **settings}
        config = write_config(tmp_path / f"plugin{len(plugins)}.toml", keyset, **values)
        plugin = LivePlugin(config, port, hook_plugins)
        plugins.append(plugin)
        return plugin.start()

    yield start
    for plugin in reversed(plugins):
        plugin.stop()


@pytest.fixture
def calls() -> Callable[[LivePlugin], Calls]:
    """``calls(plugin)``: a blocking client for a plugin's protocol endpoints."""
    return lambda plugin: Calls(plugin.base_url)


@pytest.fixture
def streams_web_dir(tmp_path: Path) -> Path:
    """A ``web_dir`` holding the real ``amazon-connect-streams`` library where the agent page loads it."""
    folder = tmp_path / "web-streams" / "amazon-connect-ui"
    folder.mkdir(parents=True)
    shutil.copy(npm_file(STREAMS_LIBRARY), folder / "connect-streams-min.js")
    return folder.parent
