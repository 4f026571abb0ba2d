"""Agent sign-in in headless Chromium, through a real OpenID provider's own login page.

Two ``connect-plugin serve`` instances share one PostgreSQL database and one
cookie secret (``sign_in_fixtures.deployment``); the provider is Node's
``oidc-provider``.  Members of the group ``agents`` may see citizens' data:
``alice`` is one, ``bob`` is not.
"""

from __future__ import annotations

import json
import uuid

from tests.browser.pages import shown_attributes, standin_script, state_of
from tests.sign_in_support import STREAMS_URL

pytest_plugins = ("tests.browser.sign_in_fixtures",)  # deployment, agent_page

ATTRIBUTES = {"fullname": "Jane Roe", "email": "jane@example.com"}


def new_contact() -> str:
    """A fresh Amazon Connect contact id (the instances share one database for the module)."""
    return str(uuid.uuid4())


def sign_in(page, deployment, start_url: str, login: str) -> None:
    """Open ``start_url``, sign in at the provider's own pages as ``login``, and come back."""
    page.goto(start_url)
    assert page.url.startswith(deployment.provider.issuer + "/interaction/"), page.url
    page.fill('input[name="login"]', login)
    page.fill('input[name="password"]', "any password will do here")
    page.click('button[type="submit"]')
    page.click('button:has-text("Continue")')  # the provider asks the agent to allow this application
    page.wait_for_url(start_url)


def session_cookie(page) -> dict:
    """The plugin's sign-in cookie in the page's browser context."""
    found = [c for c in page.context.cookies() if c["name"] == "connect_plugin_agent"]
    assert len(found) == 1
    return found[0]


def test_agent_signs_in_at_the_provider_and_sees_the_attributes_arrive_live(deployment, agent_page, mint):
    contact = new_contact()
    calls = deployment.calls(deployment.a)
    started = calls.linked("report_move", contact)
    page = agent_page()
    display = f"{deployment.a.base_url}/attribute-ui/?{contact}"
    sign_in(page, deployment, display, "alice")
    state_of(page, "waiting")
    calls.post_result(started["attr_url"], mint(attributes=ATTRIBUTES))  # after the page loaded
    page.wait_for_selector('main[data-state="verified"] .attribute dd')
    assert shown_attributes(page) == [("fullname", "Jane Roe"), ("email", "jane@example.com")]
    cookie = session_cookie(page)
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    log = deployment.a.output()
    assert "agent alice@gemeente.example signed in (may see citizens' data)" in log
    assert f"agent alice@gemeente.example read the verified attributes of contact {contact}" in log
    assert "Jane Roe" not in log
    assert "jane@example.com" not in log
    assert cookie["value"] not in log
    assert "code=" not in log  # the sign-in's code and state travel in URLs the access log leaves out
    assert "state=" not in log


def test_a_sign_in_made_on_instance_a_is_valid_on_instance_b(deployment, agent_page, mint):
    contact = new_contact()
    deployment.calls(deployment.a).linked("report_move", contact, mint(attributes=ATTRIBUTES))
    page = agent_page()
    sign_in(page, deployment, f"{deployment.a.base_url}/attribute-ui/?{contact}", "alice")
    state_of(page, "verified")
    on_b = f"{deployment.b.base_url}/attribute-ui/?{contact}"
    page.goto(on_b)
    assert page.url == on_b  # no detour to sign in again
    state_of(page, "verified")
    assert ("fullname", "Jane Roe") in shown_attributes(page)
    answer = page.request.get(f"{deployment.b.base_url}/session_info/{contact}")
    assert answer.status == 200
    assert answer.json()["auth_result"]["attributes"] == ATTRIBUTES
    assert f"agent alice@gemeente.example read the verified attributes of contact {contact}" in deployment.b.output()


def test_an_agent_outside_the_allowed_group_signs_in_but_gets_403(deployment, agent_page, mint):
    contact = new_contact()
    deployment.calls(deployment.a).linked("report_move", contact, mint(attributes=ATTRIBUTES))
    page = agent_page()
    sign_in(page, deployment, f"{deployment.a.base_url}/attribute-ui/?{contact}", "bob")
    assert json.loads(page.text_content("body")) == {"error": "Forbidden"}
    for path in (f"/session_info/{contact}", f"/session_events/{contact}"):
        answer = page.request.get(deployment.a.base_url + path)
        assert answer.status == 403, path
        assert "Jane Roe" not in answer.text()
    assert "agent bob@gemeente.example signed in (may not see citizens' data)" in deployment.a.output()


def test_logout_ends_the_sign_in_here_and_at_the_provider(deployment, agent_page, mint):
    contact = new_contact()
    deployment.calls(deployment.a).linked("report_move", contact, mint(attributes=ATTRIBUTES))
    page = agent_page()
    display = f"{deployment.a.base_url}/attribute-ui/?{contact}"
    sign_in(page, deployment, display, "alice")
    state_of(page, "verified")
    page.goto(f"{deployment.a.base_url}/agent/logout")
    assert page.url.startswith(deployment.provider.issuer + "/session/end")
    assert [c for c in page.context.cookies() if c["name"] == "connect_plugin_agent"] == []
    page.click('button[value="yes"]')  # the provider asks whether to end its session too
    page.wait_for_selector("text=Sign-out Success")
    answer = page.request.get(f"{deployment.a.base_url}/session_info/{contact}")
    assert answer.status == 401
    assert answer.json()["login_url"] == f"{deployment.a.base_url}/agent/login"
    page.goto(display)  # back to the provider's login page: nobody is signed in anywhere
    assert page.url.startswith(deployment.provider.issuer + "/interaction/")
    page.wait_for_selector('input[name="login"]')


def test_the_agent_page_works_signed_in_with_the_display_in_its_frame(deployment, agent_page, mint):
    contact = new_contact()
    deployment.calls(deployment.a).linked("report_move", contact, mint(attributes=ATTRIBUTES))
    page = agent_page(width=900, height=640)
    page.route(STREAMS_URL, lambda route: route.fulfill(body=standin_script(), content_type="text/javascript"))
    sign_in(page, deployment, f"{deployment.a.base_url}/amazon-connect-ui/", "alice")
    page.wait_for_function("window.standIn && window.standIn.ccp !== null")
    page.evaluate(f"window.standIn.fire({contact!r})")
    page.frame_locator("#attributes").locator('main[data-state="verified"]').wait_for()
    frame = next(f for f in page.frames if f.url.startswith(f"{deployment.a.base_url}/attribute-ui/"))
    assert ("fullname", "Jane Roe") in shown_attributes(frame)
