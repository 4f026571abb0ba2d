"""Helpers for the browser tests: reading the display, the streams stand-in, screenshots.

``CONNECT_PLUGIN_SCREENSHOTS=1`` makes the tests that show a state keep a
screenshot of it in ``docs/screenshots/``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tests.support import ROOT

SCREENSHOTS = ROOT / "docs" / "screenshots"
STANDIN = Path(__file__).with_name("connect_standin.js")
#: How long a page may take to show what the test waits for (the machine may be busy).
WAIT_MS = 10_000


def keep_screenshot(page: Any, name: str) -> None:
    """Save ``docs/screenshots/<name>.png`` when ``CONNECT_PLUGIN_SCREENSHOTS`` is set."""
    if os.environ.get("CONNECT_PLUGIN_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def standin_script() -> str:
    """The stand-in for the amazon-connect-streams library (see ``connect_standin.js``)."""
    return STANDIN.read_text(encoding="utf-8")


def state_of(page: Any, state: str) -> str | None:
    """Wait until the display is in ``state``; return its status line."""
    page.wait_for_selector(f'main[data-state="{state}"]')
    return page.text_content("#status")


def shown_attributes(page: Any) -> list[tuple[str, str]]:
    """The attribute list as (label, value) pairs, as the page shows them."""
    pairs = page.evaluate("""[...document.querySelectorAll('.attribute')].map(
        (item) => [item.querySelector('dt')?.textContent, item.querySelector('dd')?.textContent])""")
    return [tuple(pair) for pair in pairs]
