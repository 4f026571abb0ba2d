"""The agent page in headless Chromium: a stand-in for amazon-connect-streams fires contact events."""

from __future__ import annotations

from tests.browser.pages import keep_screenshot, shown_attributes, standin_script

CCP_URL = "https://example.my.connect.aws/ccp-v2"
STREAMS_URL = "https://static.example.nl/amazon-connect-streams/connect-streams-min.js"
CONTACT = "c0ffee00-1234-4abc-8def-0123456789ab"
NEXT_CONTACT = "decaf000-5678-4abc-8def-0123456789ab"


def agent_page(open_page, plugin, streams=True):
    """The agent page with the streams library's URL answered by the stand-in (or failing)."""
    page = open_page("en-US", width=900, height=640)
    if streams:
        page.route(STREAMS_URL, lambda route: route.fulfill(body=standin_script(), content_type="text/javascript"))
    else:
        page.route(STREAMS_URL, lambda route: route.abort())
    page.goto(f"{plugin.base_url}/amazon-connect-ui/")
    return page


def frame_src(page):
    """The attribute iframe's current address, as the browser resolved it."""
    return page.eval_on_selector("#attributes", "frame => frame.src")


def test_the_ccp_is_started_with_the_configured_address(live, open_page):
    plugin = live(amazon_connect_url=CCP_URL, streams_url=STREAMS_URL)
    page = agent_page(open_page, plugin)
    page.wait_for_function("window.standIn && window.standIn.ccp !== null")
    ccp = page.evaluate("window.standIn.ccp")
    assert ccp == {"containerId": "ccp", "options": {"ccpUrl": CCP_URL, "softphone": {"allowFramedSoftphone": True}}}
    assert frame_src(page) == "about:blank"


def test_a_new_contact_opens_its_display_and_destroying_it_blanks_the_frame(live, calls, open_page, mint):
    plugin = live(amazon_connect_url=CCP_URL, streams_url=STREAMS_URL,
                  translations={"en": {"report_move": "Report a move", "email": "E-mail address"}})
    calls(plugin).linked("report_move", CONTACT, mint(attributes={"email": "jane@example.com"}))
    page = agent_page(open_page, plugin)
    page.wait_for_function("window.standIn && window.standIn.ccp !== null")
    page.evaluate(f"window.standIn.fire({CONTACT!r})")
    assert frame_src(page) == f"{plugin.base_url}/attribute-ui/?{CONTACT}"
    frame = page.frame_locator("#attributes")
    frame.locator('main[data-state="verified"]').wait_for()
    assert frame.locator("#purpose").text_content() == "Purpose: Report a move"
    display = next(f for f in page.frames if f.url.startswith(f"{plugin.base_url}/attribute-ui/"))
    assert shown_attributes(display) == [("E-mail address", "jane@example.com")]
    keep_screenshot(page, "agent-page")
    page.evaluate(f"window.standIn.destroy({CONTACT!r})")
    assert frame_src(page) == "about:blank"


def test_destroying_an_earlier_contact_leaves_the_current_one_shown(live, open_page):
    plugin = live(amazon_connect_url=CCP_URL, streams_url=STREAMS_URL)
    page = agent_page(open_page, plugin)
    page.wait_for_function("window.standIn && window.standIn.ccp !== null")
    page.evaluate(f"window.standIn.fire({CONTACT!r})")
    page.evaluate(f"window.standIn.fire({NEXT_CONTACT!r})")
    assert frame_src(page).endswith(f"/attribute-ui/?{NEXT_CONTACT}")
    page.evaluate(f"window.standIn.destroy({CONTACT!r})")
    assert frame_src(page).endswith(f"/attribute-ui/?{NEXT_CONTACT}")
    page.evaluate(f"window.standIn.destroy({NEXT_CONTACT!r})")
    assert frame_src(page) == "about:blank"


def test_a_deployer_config_js_and_library_copy_from_web_dir_are_used(live, open_page, tmp_path):
    folder = tmp_path / "web" / "amazon-connect-ui"
    folder.mkdir(parents=True)
    (folder / "config.js").write_text(
        'var AmazonConnectURL = "https://mine.my.connect.aws/ccp-v2/";\n'
        'var AttributeURL = "https://display.example.nl/attribute-ui/?";\n'
    )
    (folder / "connect-streams-min.js").write_text(standin_script())  # the library, served by the plugin
    plugin = live(web_dir=str(folder.parent), amazon_connect_url=CCP_URL)
    page = open_page("en-US", width=900, height=640)
    page.route("https://display.example.nl/**", lambda route: route.fulfill(body="display", content_type="text/plain"))
    page.goto(f"{plugin.base_url}/amazon-connect-ui/")
    page.wait_for_function("window.standIn && window.standIn.ccp !== null")
    assert page.evaluate("window.standIn.ccp.options.ccpUrl") == "https://mine.my.connect.aws/ccp-v2/"
    page.evaluate(f"window.standIn.fire({CONTACT!r})")
    assert frame_src(page) == f"https://display.example.nl/attribute-ui/?{CONTACT}"


def test_a_missing_streams_library_is_reported_on_the_page(live, open_page):
    plugin = live(amazon_connect_url=CCP_URL, streams_url=STREAMS_URL)
    page = agent_page(open_page, plugin, streams=False)
    problem = page.wait_for_selector("#problem:not([hidden])")
    assert "amazon-connect-streams" in problem.text_content()
    assert STREAMS_URL in problem.text_content()


def test_a_missing_ccp_address_is_reported_on_the_page(live, open_page):
    plugin = live(streams_url=STREAMS_URL)
    page = agent_page(open_page, plugin)
    problem = page.wait_for_selector("#problem:not([hidden])")
    assert "amazon_connect_url" in problem.text_content()
