"""The agent page in headless Chromium with Amazon's real ``amazon-connect-streams`` library.

The library (pinned in ``tests/browser/npm``) is served by the plugin from
``web_dir``, as a deployer serves it, under the page's Content-Security-Policy.
It starts its CCP iframe at ``CCP_URL``, where a local stand-in
(``ccp_standin.js``) speaks the library's own postMessage protocol and sends
the agent snapshots whose contacts the library turns into contact events.
"""

from __future__ import annotations

import shutil

import pytest

from tests.browser.pages import (
    CCP_URL,
    STREAMS_LIBRARY,
    ccp_frame,
    display_frame,
    keep_screenshot,
    npm_file,
    serve_ccp_standin,
    shown_attributes,
    state_of,
)

CONTACT = "c0ffee00-1234-4abc-8def-0123456789ab"
NEXT_CONTACT = "decaf000-5678-4abc-8def-0123456789ab"
TRANSLATIONS = {"en": {"report_move": "Report a move", "email": "E-mail address"}}


def agent_page(open_page, plugin):
    """The agent page, its CCP answered by the stand-in."""
    page = open_page("en-US", width=900, height=640)
    serve_ccp_standin(page)
    page.goto(f"{plugin.base_url}/amazon-connect-ui/")
    return page


def frame_src(page):
    """The attribute iframe's current address, as the browser resolved it."""
    return page.eval_on_selector("#attributes", "frame => frame.src")


def wait_for_frame(page, ending):
    """Wait until the attribute iframe's address ends with ``ending``."""
    page.wait_for_function("(ending) => document.getElementById('attributes').src.endsWith(ending)", arg=ending)


def test_the_real_library_loads_under_the_page_csp_and_starts_the_ccp(live, open_page, streams_web_dir):
    plugin = live(web_dir=str(streams_web_dir), amazon_connect_url=CCP_URL)
    page = agent_page(open_page, plugin)
    ccp = ccp_frame(page)  # the library's iframe, acknowledged and configured
    assert ccp.url == CCP_URL
    assert page.eval_on_selector("#ccp iframe", "frame => frame.src") == CCP_URL
    assert ccp.evaluate("window.ccp.configured.softphone") == {"allowFramedSoftphone": True}
    assert "synchronize" in ccp.evaluate("window.ccp.seen")  # the library's keepalive runs
    assert frame_src(page) == "about:blank"
    # open_page fails the test on any Content-Security-Policy report from the page.


def test_a_contact_from_the_ccp_opens_its_display_and_closing_it_blanks_the_frame(live, calls, open_page, mint,
                                                                                 streams_web_dir):
    plugin = live(web_dir=str(streams_web_dir), amazon_connect_url=CCP_URL, translations=TRANSLATIONS)
    calls(plugin).linked("report_move", CONTACT, mint(attributes={"email": "jane@example.com"}))
    page = agent_page(open_page, plugin)
    ccp = ccp_frame(page)
    ccp.evaluate(f"window.ccp.offer({CONTACT!r})")  # rings: the library fires contact::init
    wait_for_frame(page, CONTACT)
    assert frame_src(page) == f"{plugin.base_url}/attribute-ui/?{CONTACT}"
    display = display_frame(page)
    assert state_of(display, "verified") == "Verified attributes"
    assert display.text_content("#purpose") == "Purpose: Report a move"
    assert shown_attributes(display) == [("E-mail address", "jane@example.com")]
    ccp.evaluate(f"window.ccp.accept({CONTACT!r})")
    keep_screenshot(page, "agent-page")
    ccp.evaluate(f"window.ccp.end({CONTACT!r})")  # the caller hung up: after-call work, still shown
    page.wait_for_function("(id) => connect.core.getAgentDataProvider().getContactData(id).state.type === 'ended'",
                           arg=CONTACT)
    assert frame_src(page) == f"{plugin.base_url}/attribute-ui/?{CONTACT}"
    ccp.evaluate(f"window.ccp.clear({CONTACT!r})")  # the agent closes the contact: contact::destroyed
    page.wait_for_function("() => document.getElementById('attributes').src === 'about:blank'")


def test_closing_an_earlier_contact_leaves_the_current_one_shown(live, open_page, streams_web_dir):
    plugin = live(web_dir=str(streams_web_dir), amazon_connect_url=CCP_URL)
    page = agent_page(open_page, plugin)
    ccp = ccp_frame(page)
    ccp.evaluate(f"window.ccp.offer({CONTACT!r})")
    wait_for_frame(page, CONTACT)
    ccp.evaluate(f"window.ccp.offer({NEXT_CONTACT!r})")
    wait_for_frame(page, NEXT_CONTACT)
    ccp.evaluate(f"window.ccp.clear({CONTACT!r})")
    page.wait_for_function("() => connect.core.getAgentDataProvider().getAgentData().snapshot.contacts.length === 1")
    assert frame_src(page).endswith(f"/attribute-ui/?{NEXT_CONTACT}")
    ccp.evaluate(f"window.ccp.clear({NEXT_CONTACT!r})")
    page.wait_for_function("() => document.getElementById('attributes').src === 'about:blank'")


@pytest.mark.parametrize("attribute_url", ["{base}/attribute-ui/", "{base}/attribute-ui/?"],
                         ids=["reference form", "with the question mark"])
def test_a_reference_config_js_opens_the_display_with_one_question_mark(live, calls, open_page, mint, tmp_path,
                                                                       attribute_url):
    folder = tmp_path / "web" / "amazon-connect-ui"
    folder.mkdir(parents=True)
    shutil.copy(npm_file(STREAMS_LIBRARY), folder / "connect-streams-min.js")
    plugin = live(web_dir=str(folder.parent))
    calls(plugin).linked("report_move", CONTACT, mint(attributes={"email": "jane@example.com"}))
    # The reference's amazon-connect-ui/config.js: its two globals, AttributeURL without the "?".
    (folder / "config.js").write_text(
        f'var AmazonConnectURL = "{CCP_URL}/";\n'
        f'var AttributeURL = "{attribute_url.format(base=plugin.base_url)}";\n'
    )
    page = agent_page(open_page, plugin)
    ccp = ccp_frame(page)
    assert ccp.url == f"{CCP_URL}/"
    ccp.evaluate(f"window.ccp.offer({CONTACT!r})")
    wait_for_frame(page, CONTACT)
    assert frame_src(page) == f"{plugin.base_url}/attribute-ui/?{CONTACT}"
    assert state_of(display_frame(page), "verified")  # the display, not a 404


def test_the_library_from_another_origin_through_streams_url(live, open_page):
    streams_url = "https://static.example.nl/amazon-connect-streams/connect-streams-min.js"
    plugin = live(amazon_connect_url=CCP_URL, streams_url=streams_url)
    page = open_page("en-US", width=900, height=640)
    page.route(streams_url, lambda route: route.fulfill(path=str(npm_file(STREAMS_LIBRARY)),
                                                        content_type="text/javascript"))
    serve_ccp_standin(page)
    page.goto(f"{plugin.base_url}/amazon-connect-ui/")
    ccp = ccp_frame(page)  # allowed by the page's script-src for that origin
    ccp.evaluate(f"window.ccp.offer({CONTACT!r})")
    wait_for_frame(page, CONTACT)


def test_a_missing_streams_library_is_reported_on_the_page(live, open_page):
    streams_url = "https://static.example.nl/amazon-connect-streams/connect-streams-min.js"
    plugin = live(amazon_connect_url=CCP_URL, streams_url=streams_url)
    page = open_page("en-US", width=900, height=640)
    page.route(streams_url, lambda route: route.abort())
    page.goto(f"{plugin.base_url}/amazon-connect-ui/")
    problem = page.wait_for_selector("#problem:not([hidden])")
    assert "amazon-connect-streams" in problem.text_content()
    assert streams_url in problem.text_content()


def test_a_missing_ccp_address_is_reported_on_the_page(live, open_page, streams_web_dir):
    plugin = live(web_dir=str(streams_web_dir))
    page = agent_page(open_page, plugin)
    problem = page.wait_for_selector("#problem:not([hidden])")
    assert "amazon_connect_url" in problem.text_content()
