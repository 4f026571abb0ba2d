"""The display when agent sign-in is on: an ended sign-in and a refused agent, never a blank or spinning frame.

The plugin gets an ``AgentAuth`` of the test's own through the
``connect_plugin_agent_auth`` hook, as a deployer's plugin would provide one.
Its verdict is switched by the test: a signed-in agent, no sign-in
(``identify`` answers None: ``401``) or an agent the rules refuse (``403``).
A live stream outlives a sign-in, so each test restarts the plugin to make
the display connect again, as it would after a deployment or a network blip.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.browser.pages import (
    CCP_URL,
    ccp_frame,
    display_frame,
    keep_screenshot,
    serve_ccp_standin,
    shown_attributes,
    state_of,
)
from tests.browser.sign_in_switch import SwitchableSignIn

CONTACT = "5d2c8e14-7b3a-4f60-9e1d-2a4b6c8d0e1f"
TRANSLATIONS = {"en": {"report_move": "Report a move", "email": "E-mail address"}}


def verified_display(live, calls, open_page, mint, sign_in, locale="en-US"):
    """A plugin with ``sign_in``, and a display showing a verified call."""
    plugin = live(hook_plugins=[sign_in], translations=TRANSLATIONS)
    calls(plugin).linked("report_move", CONTACT, mint(attributes={"email": "jane@example.com"}))
    page = open_page(locale)
    page.goto(f"{plugin.base_url}/attribute-ui/?{CONTACT}")
    state_of(page, "verified")
    return plugin, page


def reconnect(plugin):
    """Restart the plugin: the display's stream drops and connects again, meeting the new verdict."""
    plugin.stop()
    plugin.start()


def test_an_ended_sign_in_says_so_links_to_sign_in_and_hides_the_data(live, calls, open_page, mint):
    sign_in = SwitchableSignIn()
    plugin, page = verified_display(live, calls, open_page, mint, sign_in)
    sign_in.verdict = "signed_out"
    reconnect(plugin)
    assert state_of(page, "signed_out") == "Your sign-in has ended"
    assert page.text_content("#announcement") == "Your sign-in has ended"
    assert page.is_hidden("#purpose")
    assert shown_attributes(page) == []
    assert "jane@example.com" not in page.content()
    link = page.query_selector("#sign-in-link")
    assert link.text_content() == "Sign in again"
    href = urlsplit(link.get_attribute("href"))
    assert (f"{href.scheme}://{href.netloc}", href.path) == (plugin.base_url, "/agent/login")
    assert parse_qs(href.query)["next"] == [f"/attribute-ui/?{CONTACT}"]  # back to this display, not to JSON
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")  # past the display's scrolling area, to the link
    assert page.evaluate("() => [document.activeElement.id, document.activeElement.matches(':focus-visible'),"
                         " getComputedStyle(document.activeElement).outlineStyle]") == ["sign-in-link", True, "solid"]
    keep_screenshot(page, "signed-out")
    sign_in.verdict = "signed_in"  # signed in again in another tab; coming back to this one, the display asks
    page.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")
    assert state_of(page, "verified") == "Verified attributes"
    assert shown_attributes(page) == [("E-mail address", "jane@example.com")]


def test_without_a_login_url_the_link_opens_the_display_again(live, calls, open_page, mint):
    sign_in = SwitchableSignIn(with_login_url=False)  # e.g. behind a load balancer that signs agents in
    plugin, page = verified_display(live, calls, open_page, mint, sign_in)
    sign_in.verdict = "signed_out"
    reconnect(plugin)
    state_of(page, "signed_out")
    assert page.get_attribute("#sign-in-link", "href") == f"{plugin.base_url}/attribute-ui/?{CONTACT}"


def test_an_agent_who_may_not_see_the_call_is_told_so_in_dutch(live, calls, open_page, mint):
    sign_in = SwitchableSignIn()
    plugin, page = verified_display(live, calls, open_page, mint, sign_in, locale="nl-NL")
    sign_in.verdict = "forbidden"
    reconnect(plugin)
    assert state_of(page, "forbidden") == "U mag de gegevens van dit gesprek niet zien"
    assert page.is_hidden("#sign-in")
    assert shown_attributes(page) == []
    assert "jane@example.com" not in page.content()


def test_an_english_forbidden_display(live, calls, open_page, mint):
    sign_in = SwitchableSignIn()
    plugin, page = verified_display(live, calls, open_page, mint, sign_in)
    sign_in.verdict = "forbidden"
    reconnect(plugin)
    assert state_of(page, "forbidden") == "You may not see this call's data"
    keep_screenshot(page, "forbidden")


def test_the_first_paint_says_sign_in_again_when_the_data_server_refuses(live, calls, open_page, mint, tmp_path):
    web_dir = tmp_path / "web" / "attribute-ui"
    web_dir.mkdir(parents=True)
    pages = live(web_dir=str(web_dir.parent))  # serves the display, no sign-in of its own
    sign_in = SwitchableSignIn(verdict="signed_out")
    data = live(hook_plugins=[sign_in], allowed_origins=[pages.origin])
    (web_dir / "config.js").write_text(f"window.SERVER_URL = {data.base_url!r};\n")
    calls(data).linked("report_move", CONTACT, mint())
    page = open_page("en-US")
    page.goto(f"{pages.base_url}/attribute-ui/?{CONTACT}")
    assert state_of(page, "signed_out") == "Your sign-in has ended"
    href = urlsplit(page.get_attribute("#sign-in-link", "href"))
    assert f"{href.scheme}://{href.netloc}{href.path}" == f"{data.base_url}/agent/login"


def test_in_the_agent_page_the_link_opens_a_new_tab_and_the_ccp_stays(live, calls, open_page, mint, streams_web_dir):
    sign_in = SwitchableSignIn()
    plugin = live(hook_plugins=[sign_in], web_dir=str(streams_web_dir), amazon_connect_url=CCP_URL)
    calls(plugin).linked("report_move", CONTACT, mint())
    page = open_page("en-US", width=900, height=640)
    serve_ccp_standin(page)
    page.goto(f"{plugin.base_url}/amazon-connect-ui/")
    ccp_frame(page).evaluate(f"window.ccp.offer({CONTACT!r})")
    page.wait_for_function("(id) => document.getElementById('attributes').src.endsWith(id)", arg=CONTACT)
    display = display_frame(page)
    state_of(display, "verified")
    sign_in.verdict = "signed_out"
    reconnect(plugin)
    state_of(display, "signed_out")
    link = display.query_selector("#sign-in-link")
    assert link.text_content() == "Sign in again (opens in a new tab)"
    with page.context.expect_page() as opened:
        link.click()
    assert opened.value.url.startswith(f"{plugin.base_url}/agent/login?next=")
    assert page.url == f"{plugin.base_url}/amazon-connect-ui/"  # the agent page (and the call) stayed
    assert page.eval_on_selector("#attributes", "frame => frame.src").endswith(CONTACT)
    keep_screenshot(page, "agent-page-signed-out")


def test_a_display_on_another_origin_sends_the_sign_in_cookie(live, calls, open_page, mint, tmp_path):
    web_dir = tmp_path / "web" / "attribute-ui"
    web_dir.mkdir(parents=True)
    pages = live(web_dir=str(web_dir.parent))
    data = live(hook_plugins=[SwitchableSignIn(cookie="agent_session")], allowed_origins=[pages.origin],
                translations=TRANSLATIONS)
    (web_dir / "config.js").write_text(f"window.SERVER_URL = {data.base_url!r};\n")
    started = calls(data).linked("report_move", CONTACT)
    page = open_page("en-US")
    page.context.add_cookies([{"name": "agent_session", "value": "signed-in", "url": data.base_url}])
    page.goto(f"{pages.base_url}/attribute-ui/?{CONTACT}")
    # A request without the cookie would be a 401, and the display would say "sign in again".
    assert state_of(page, "waiting") == "Waiting for the authentication result…"  # /session_info, /display_labels
    assert page.text_content("#purpose-label") == "Report a move"
    calls(data).post_result(started["attr_url"], mint(attributes={"email": "jane@example.com"}))
    assert state_of(page, "verified") == "Verified attributes"  # through the stream
    assert shown_attributes(page) == [("E-mail address", "jane@example.com")]
