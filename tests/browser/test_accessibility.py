"""WCAG 2.1 AA for the agent's screens: axe-core on every display state and on the agent page,
the keyboard, and 200 % zoom in the 140-pixel frame the agent page gives the display.

axe-core (pinned in ``tests/browser/npm``) is put into every frame by the
browser itself (``open_page(axe=True)``), under the pages' own
Content-Security-Policy.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.browser.pages import (
    CCP_URL,
    axe_violations,
    ccp_frame,
    display_frame,
    keep_screenshot,
    serve_ccp_standin,
    shown_attributes,
    state_of,
)
from tests.browser.sign_in_switch import SwitchableSignIn

CONTACT = "8a1f3c5e-2b4d-4f6a-8c0e-1d3f5a7b9c2e"
TRANSLATIONS = {"en": {"report_move": "Report a move", "email": "E-mail address", "fullname": "Full name",
                       "address": "Address", "birthdate": "Date of birth"}}
ATTRIBUTES = {"fullname": "Jane Roe", "email": "jane.roe@example.com", "birthdate": "1990-04-12",
              "address": "Stationsstraat 12, 1234 AB Utrecht"}
STATES = ["loading", "waiting", "verified", "failed", "no_session", "unreachable", "signed_out", "forbidden"]


def hold(route: Any) -> None:
    """Leave a request unanswered (the page waits, as behind a slow network)."""


def display_in(state: str, live, calls, mint, page) -> Any:
    """Open the display for a call and bring it into ``state``."""
    sign_in = SwitchableSignIn()
    plugin = live(hook_plugins=[sign_in], translations=TRANSLATIONS)
    if state == "failed":
        calls(plugin).linked("report_move", CONTACT, mint(status="failed"))
    elif state in ("verified", "signed_out", "forbidden"):
        calls(plugin).linked("report_move", CONTACT, mint(attributes=ATTRIBUTES))
    elif state != "no_session":
        calls(plugin).linked("report_move", CONTACT)
    if state == "loading":
        for pattern in ("**/session_info/**", "**/session_events/**", "**/display_labels"):
            page.route(pattern, hold)
    page.goto(f"{plugin.base_url}/attribute-ui/?{CONTACT}")
    if state in ("unreachable", "signed_out", "forbidden"):
        state_of(page, "waiting" if state == "unreachable" else "verified")
        sign_in.verdict = {"signed_out": "signed_out", "forbidden": "forbidden"}.get(state, "signed_in")
        plugin.stop()
        if state != "unreachable":
            plugin.start()
    state_of(page, state)
    return page


@pytest.mark.parametrize("zoom", [1, 2], ids=["100%", "200%"])
@pytest.mark.parametrize("state", STATES)
def test_every_display_state_has_no_axe_violations(live, calls, mint, open_page, state, zoom):
    page = display_in(state, live, calls, mint, open_page("en-US", zoom=zoom, axe=True))
    assert axe_violations(page) == []


def test_the_agent_page_has_no_axe_violations(live, calls, mint, open_page, streams_web_dir):
    plugin = live(web_dir=str(streams_web_dir), amazon_connect_url=CCP_URL, translations=TRANSLATIONS)
    calls(plugin).linked("report_move", CONTACT, mint(attributes=ATTRIBUTES))
    page = open_page("en-US", width=900, height=640, axe=True)
    serve_ccp_standin(page)
    page.goto(f"{plugin.base_url}/amazon-connect-ui/")
    ccp_frame(page).evaluate(f"window.ccp.offer({CONTACT!r})")
    state_of(display_frame(page), "verified")
    assert axe_violations(page) == []  # the page and, through axe's frame messaging, the display in it
    problem = open_page("en-US", width=900, height=640, axe=True)
    problem.goto(f"{live().base_url}/amazon-connect-ui/")  # no CCP address: the page says so
    problem.wait_for_selector("#problem:not([hidden])")
    assert axe_violations(problem) == []


def focused(page) -> str:
    """What has the keyboard focus, through frames: ``"display:display"``, ``"splitter"``, ``"ccp:button"``."""
    tag, ident = page.evaluate("() => [document.activeElement.tagName, document.activeElement.id]")
    if tag != "IFRAME":
        return ident or tag.lower()
    frame, name = (display_frame(page), "display") if ident == "attributes" else (ccp_frame(page), "ccp")
    tag, ident = frame.evaluate("() => [document.activeElement.tagName, document.activeElement.id]")
    return f"{name}:{ident or tag.lower()}"


def focus_settles(page, expected: str, timeout: float = 3.0) -> bool:
    """Whether the focus reaches ``expected`` within ``timeout`` s (moving it across frames is not instant)."""
    deadline = time.monotonic() + timeout
    while focused(page) != expected:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def focus_ring(frame) -> dict[str, str]:
    """The focused element's outline, as drawn."""
    return frame.evaluate("""() => {
        const style = getComputedStyle(document.activeElement);
        return {style: style.outlineStyle, width: style.outlineWidth, visible: String(document.activeElement
            .matches(':focus-visible'))};
    }""")


def test_the_agent_page_is_usable_by_keyboard_in_a_sensible_order_with_visible_focus(live, calls, mint, open_page,
                                                                                    streams_web_dir):
    plugin = live(web_dir=str(streams_web_dir), amazon_connect_url=CCP_URL, translations=TRANSLATIONS)
    many = {**ATTRIBUTES, **{f"attribute_{n}": f"value {n}" for n in range(10)}}
    calls(plugin).linked("report_move", CONTACT, mint(attributes=many))
    page = open_page("en-US", width=900, height=640)
    serve_ccp_standin(page)
    page.goto(f"{plugin.base_url}/amazon-connect-ui/")
    ccp_frame(page).evaluate(f"window.ccp.offer({CONTACT!r})")
    display = display_frame(page)
    state_of(display, "verified")

    for expected in ("display:display", "splitter", "ccp:button"):  # top to bottom, as seen
        page.keyboard.press("Tab")
        # Moving the focus into a frame is not instant (the top page's body holds it in between): wait for it.
        assert focus_settles(page, expected), f"after Tab the focus is on {focused(page)!r}, not {expected!r}"

    page.keyboard.press("Shift+Tab")
    assert focus_settles(page, "splitter")  # out of the CCP's frame first: a second key could overtake it
    page.keyboard.press("Shift+Tab")
    assert focus_settles(page, "display:display")
    assert focus_ring(display) == {"style": "solid", "width": "2px", "visible": "true"}
    page.keyboard.press("PageDown")  # the attributes below the fold, by keyboard
    display.wait_for_function("() => document.getElementById('display').scrollTop > 0")

    page.keyboard.press("Tab")
    assert focus_settles(page, "splitter")  # out of the display's frame
    assert focus_ring(page) == {"style": "solid", "width": "3px", "visible": "true"}
    height = page.eval_on_selector("#attributes", "frame => frame.getBoundingClientRect().height")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert page.eval_on_selector("#attributes", "frame => frame.getBoundingClientRect().height") == height + 40
    assert page.get_attribute("#splitter", "aria-valuenow") == str(int(height) + 40)


def test_at_200_percent_zoom_in_the_140_pixel_frame_nothing_is_cut_off(live, calls, mint, open_page):
    plugin = live(translations=TRANSLATIONS)
    calls(plugin).linked("report_move", CONTACT, mint(attributes=ATTRIBUTES))
    page = open_page("en-US", width=640, height=140, zoom=2)  # the agent page's frame, at 200 %
    page.goto(f"{plugin.base_url}/attribute-ui/?{CONTACT}")
    state_of(page, "verified")
    keep_screenshot(page, "verified-zoom-200")
    assert page.evaluate("[innerWidth, innerHeight, devicePixelRatio]") == [320, 70, 2]
    sizes = page.evaluate("""() => { const main = document.getElementById('display');
        return [main.scrollWidth, main.clientWidth, main.scrollHeight, main.clientHeight]; }""")
    assert sizes[0] <= sizes[1]  # no sideways scrolling: the text reflows ...
    assert sizes[2] > sizes[3]  # ... and the frame scrolls down to the rest
    cut = page.evaluate("""() => [...document.querySelectorAll('#status, #purpose, dt, dd')]
        .filter((el) => el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1)
        .map((el) => el.textContent)""")
    assert cut == []  # no label or value is clipped or ellipsised
    for value in ATTRIBUTES.values():
        box = page.evaluate("""(text) => {
            const dd = [...document.querySelectorAll('dd')].find((el) => el.textContent === text);
            dd.scrollIntoView({block: 'nearest'});
            const r = dd.getBoundingClientRect(), main = document.getElementById('display').getBoundingClientRect();
            return [r.top >= main.top - 0.5, r.bottom <= main.bottom + 0.5, r.width > 0,
                    parseFloat(getComputedStyle(dd).fontSize)];
        }""", value)
        assert box[:3] == [True, True, True], value  # reachable by scrolling, whole
        assert box[3] >= 13  # CSS px, drawn at 26 device pixels
    assert len(shown_attributes(page)) == len(ATTRIBUTES)
