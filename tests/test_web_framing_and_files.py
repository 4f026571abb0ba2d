"""Who may frame the pages (frame-ancestors, X-Frame-Options), and files under web_dir stay inside it."""

from __future__ import annotations

import pytest

CONTACT = "0b6f3a52-6c1d-4e8a-9f2b-7d3c5e1a9b40"


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Pages need no database work: SQLite is enough."""
    return sqlite_url


def frame_ancestors(response) -> list[str]:
    """The sources of the page's frame-ancestors directive."""
    for directive in response.headers["Content-Security-Policy"].split(";"):
        name, *sources = directive.split()
        if name == "frame-ancestors":
            return sources
    raise AssertionError("no frame-ancestors")


async def pages(plugin):
    display = await plugin.api.call("GET", f"/attribute-ui/?{CONTACT}")
    agent = await plugin.api.call("GET", "/amazon-connect-ui/")
    assert (display.status, agent.status) == (200, 200)
    return display, agent


@pytest.mark.gen_test(timeout=30)
async def test_by_default_only_this_server_may_frame_either_page(plugin):
    display, agent = await pages(plugin)
    assert frame_ancestors(agent) == ["'self'"]
    assert frame_ancestors(display) == ["'self'", plugin.base_url]
    assert agent.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert display.headers["X-Frame-Options"] == "SAMEORIGIN"


@pytest.mark.gen_test(timeout=30)
async def test_the_display_may_be_framed_by_the_agent_page_wherever_it_is_served(plugin_factory):
    plugin = await plugin_factory(external_url="https://agents.example.nl",
                                  allowed_origins=["https://ccp.example.org", "http://localhost:3000"])
    display, agent = await pages(plugin)
    assert frame_ancestors(display) == ["'self'", "https://agents.example.nl", "https://ccp.example.org",
                                        "http://localhost:3000"]
    assert frame_ancestors(agent) == ["'self'"]
    # X-Frame-Options cannot name other origins: where they may frame a page it is left out.
    assert "X-Frame-Options" not in display.headers
    assert agent.headers["X-Frame-Options"] == "SAMEORIGIN"


@pytest.mark.gen_test(timeout=30)
async def test_frame_ancestors_lets_a_crm_embed_the_agent_page_and_its_display(plugin_factory):
    plugin = await plugin_factory(frame_ancestors=["https://crm.example.nl"])
    display, agent = await pages(plugin)
    assert frame_ancestors(agent) == ["'self'", "https://crm.example.nl"]
    # every ancestor is checked, so the display nested in the agent page needs the CRM too
    assert "https://crm.example.nl" in frame_ancestors(display)
    assert "X-Frame-Options" not in agent.headers
    assert "X-Frame-Options" not in display.headers


@pytest.mark.gen_test(timeout=30)
async def test_the_agent_page_keeps_its_script_policy_besides_framing(plugin_factory):
    plugin = await plugin_factory(streams_url="https://static.example.nl/connect-streams-min.js")
    _, agent = await pages(plugin)
    policy = agent.headers["Content-Security-Policy"]
    assert "script-src 'self' https://static.example.nl;" in policy
    assert policy.endswith("frame-ancestors 'self'")


def web_dir_with_outside(tmp_path):
    web_dir = tmp_path / "web"
    (web_dir / "attribute-ui").mkdir(parents=True)
    (web_dir / "amazon-connect-ui").mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not for browsers\n")
    (outside / "config.js").write_text("var Secret = 'not for browsers';\n")
    return web_dir, outside


@pytest.mark.gen_test(timeout=30)
async def test_a_symlinked_directory_leading_out_of_web_dir_is_refused(plugin_factory, tmp_path):
    web_dir, outside = web_dir_with_outside(tmp_path)
    (web_dir / "attribute-ui" / "assets").symlink_to(outside, target_is_directory=True)
    plugin = await plugin_factory(web_dir=str(web_dir))
    response = await plugin.api.call("GET", "/attribute-ui/assets/secret.txt")
    assert response.status == 403
    assert response.json == {"error": "Forbidden"}
    assert b"not for browsers" not in response.body


@pytest.mark.gen_test(timeout=30)
async def test_a_page_folder_that_is_itself_a_link_out_of_web_dir_is_refused(plugin_factory, tmp_path):
    web_dir, outside = web_dir_with_outside(tmp_path)
    (web_dir / "amazon-connect-ui").rmdir()
    (web_dir / "amazon-connect-ui").symlink_to(outside, target_is_directory=True)
    plugin = await plugin_factory(web_dir=str(web_dir))
    for path in ("/amazon-connect-ui/secret.txt", "/amazon-connect-ui/config.js"):
        response = await plugin.api.call("GET", path)
        assert response.status == 403, path
        assert b"not for browsers" not in response.body


@pytest.mark.gen_test(timeout=30)
async def test_a_symlinked_file_leading_out_of_web_dir_is_refused_for_config_js_too(plugin_factory, tmp_path):
    web_dir, outside = web_dir_with_outside(tmp_path)
    (web_dir / "amazon-connect-ui" / "config.js").symlink_to(outside / "config.js")
    (web_dir / "attribute-ui" / "config.js").symlink_to(outside / "config.js")
    plugin = await plugin_factory(web_dir=str(web_dir))
    for path in ("/amazon-connect-ui/config.js", "/attribute-ui/config.js"):
        response = await plugin.api.call("GET", path)
        assert response.status == 403, path
        assert b"not for browsers" not in response.body


@pytest.mark.gen_test(timeout=30)
async def test_links_that_stay_inside_the_page_folder_are_served(plugin_factory, tmp_path):
    web_dir, _ = web_dir_with_outside(tmp_path)
    versions = web_dir / "amazon-connect-ui" / "v2.1"
    versions.mkdir()
    (versions / "connect-streams-min.js").write_text("/* the deployer's copy */\n")
    (web_dir / "amazon-connect-ui" / "connect-streams-min.js").symlink_to(versions / "connect-streams-min.js")
    plugin = await plugin_factory(web_dir=str(web_dir))
    response = await plugin.api.call("GET", "/amazon-connect-ui/connect-streams-min.js")
    assert (response.status, response.body) == (200, b"/* the deployer's copy */\n")
    assert "javascript" in response.headers["Content-Type"]
