"""Helpers for the browser tests: reading the display, the npm packages, the CCP stand-in, axe, screenshots.

``CONNECT_PLUGIN_SCREENSHOTS=1`` makes the tests that show a state keep a
screenshot of it in ``docs/screenshots/``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT

SCREENSHOTS = ROOT / "docs" / "screenshots"
HERE = Path(__file__).parent
#: ``npm ci --prefix tests/browser/npm`` installs the packages here (pinned in its package-lock.json).
NPM_MODULES = HERE / "npm" / "node_modules"
STREAMS_LIBRARY = "amazon-connect-streams/release/connect-streams-min.js"
AXE_SCRIPT = "axe-core/axe.min.js"
#: Where the agent page finds Amazon's CCP in the tests: a local stand-in (``ccp_standin.js``).
CCP_URL = "https://ccp.example.my.connect.aws/ccp-v2"
#: How long a page may take to show what the test waits for (the machine may be busy).
WAIT_MS = 10_000
#: WCAG 2.1 level A and AA, and axe's best practices.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


def standin_script() -> str:
    """The hand-written stand-in for the streams library (``connect_standin.js``): for the sign-in tests only."""
    return (HERE / "connect_standin.js").read_text(encoding="utf-8")


def npm_file(name: str) -> Path:
    """A file of the pinned npm packages, installed with ``npm ci`` on first use when ``.ci/run`` has not.

    Without npm (or the registry) the test skips, and fails under CI.
    """
    path = NPM_MODULES / name
    npm = shutil.which("npm")
    if not path.is_file() and npm is not None:
        subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
                       cwd=NPM_MODULES.parent, check=False, timeout=300, stdout=subprocess.DEVNULL)
    if not path.is_file():
        message = f"{path} is missing: run `npm ci --prefix tests/browser/npm` (.ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def keep_screenshot(page: Any, name: str) -> None:
    """Save ``docs/screenshots/<name>.png`` when ``CONNECT_PLUGIN_SCREENSHOTS`` is set."""
    if os.environ.get("CONNECT_PLUGIN_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def state_of(page: Any, state: str) -> str | None:
    """Wait until the display is in ``state``; return its status line."""
    page.wait_for_selector(f'main[data-state="{state}"]')
    return page.text_content("#status")


def shown_attributes(page: Any) -> list[tuple[str, str]]:
    """The attribute list as (label, value) pairs, as the page shows them."""
    pairs = page.evaluate("""() => [...document.querySelectorAll('.attribute')].map(
        (item) => [item.querySelector('dt')?.textContent, item.querySelector('dd')?.textContent])""")
    return [tuple(pair) for pair in pairs]


def serve_ccp_standin(page: Any) -> None:
    """Answer ``CCP_URL`` (and its script) with the CCP stand-in, in every frame of the page's context."""
    html = (HERE / "ccp_standin.html").read_text(encoding="utf-8")

    def answer(route: Any) -> None:
        if route.request.url.endswith("/ccp_standin.js"):
            route.fulfill(path=str(HERE / "ccp_standin.js"), content_type="text/javascript")
        else:
            route.fulfill(body=html, content_type="text/html")

    page.context.route(CCP_URL.rsplit("/", 1)[0] + "/**", answer)


def ccp_frame(page: Any) -> Any:
    """The CCP stand-in's frame, once the real library has started it and sent its configuration."""
    page.wait_for_function("() => window.connect?.core?.initialized === true")
    frame = next(frame for frame in page.frames if frame.url.startswith(CCP_URL))
    frame.wait_for_function("() => window.ccp?.configured != null")
    return frame


def display_frame(page: Any) -> Any:
    """The attribute display's frame in the agent page (what it shows now)."""
    return page.query_selector("#attributes").content_frame()


def axe_violations(page: Any, **context: Any) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A/AA and best-practice violations on the page and its frames (``axe=True`` pages).

    Each as ``{"id", "impact", "help", "targets"}``; ``context`` is axe's
    include/exclude context (default: the whole document).
    """
    page.wait_for_function("() => typeof window.axe === 'object'")
    return page.evaluate(
        """async ([context, tags]) => {
            const results = await axe.run(Object.keys(context).length ? context : document,
                                          {runOnly: {type: "tag", values: tags}, resultTypes: ["violations"]});
            return results.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
                                                  targets: v.nodes.map((node) => node.target.join(" "))}));
        }""",
        [context, AXE_TAGS],
    )
