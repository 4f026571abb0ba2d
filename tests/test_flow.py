"""The whole call flow over real HTTP, on SQLite and on PostgreSQL."""

from __future__ import annotations

import re
import time

import pytest

from tests.plugins.few_codes import few_codes_plugin
from tests.support import dtmf_of, few_codes

CONTACT = "5f3a9c2e-1b7d-4e0a-9c1e-2d4b6a8f0e11"


@pytest.mark.gen_test
async def test_start_answers_tel_url_with_code_and_attr_url(api, plugin):
    response = await api.start("report_move")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json
    assert set(body) == {"client_url", "attr_url"}
    assert re.fullmatch(r"tel:\+31850000000,\d{10}", body["client_url"])
    assert re.fullmatch(re.escape(plugin.base_url) + r"/session_result/[A-Za-z0-9]{32}", body["attr_url"])


@pytest.mark.gen_test
async def test_full_flow_result_then_link_then_info(api, mint):
    started = (await api.start("request_passport")).json
    posted = await api.post_result(started["attr_url"], mint(attributes={"email": "jane@example.com"}))
    assert posted.status == 200
    assert posted.body == b""
    linked = await api.link(dtmf_of(started), CONTACT)
    assert linked.status == 200
    info = await api.info(CONTACT)
    assert info.status == 200
    assert info.json == {
        "purpose": "request_passport",
        "auth_result": {"status": "succes", "attributes": {"email": "jane@example.com"}},
    }


@pytest.mark.gen_test
async def test_info_before_result_shows_purpose_and_null_result(api):
    started = await api.start("report_move")
    await api.link(dtmf_of(started), CONTACT)
    info = await api.info(CONTACT)
    assert info.status == 200
    assert info.json == {"purpose": "report_move", "auth_result": None}


@pytest.mark.gen_test
async def test_start_with_inline_result_has_no_attr_url_and_result_is_shown(api, mint):
    started = await api.start("report_move", auth_result=mint(attributes={"fullname": "Jan Jansen"}))
    assert started.status == 200
    assert set(started.json) == {"client_url"}
    await api.link(dtmf_of(started), CONTACT)
    info = (await api.info(CONTACT)).json
    assert info["auth_result"] == {"status": "succes", "attributes": {"fullname": "Jan Jansen"}}


@pytest.mark.gen_test
async def test_failed_result_is_shown_as_failed_without_attributes(api, mint):
    started = await api.start("report_move", auth_result=mint(status="failed"))
    await api.link(dtmf_of(started), CONTACT)
    assert (await api.info(CONTACT)).json["auth_result"] == {"status": "failed"}


@pytest.mark.gen_test
async def test_session_url_is_passed_to_the_display(api, mint):
    token = mint(session_url="https://auth.example.nl/session/abc")
    started = await api.start("report_move", auth_result=token)
    await api.link(dtmf_of(started), CONTACT)
    result = (await api.info(CONTACT)).json["auth_result"]
    assert result["session_url"] == "https://auth.example.nl/session/abc"


@pytest.mark.gen_test
async def test_stored_result_still_shown_long_after_token_expiry(plugin_factory, mint):
    plugin = await plugin_factory()
    issued = time.time() - 3000  # exp = issued + 300: expired 45 minutes ago
    started = (await plugin.api.start("report_move")).json
    service = plugin.runtime.service
    real_clock = service.clock
    service.clock = lambda: issued + 10  # the result arrives in time ...
    try:
        assert (await plugin.api.post_result(started["attr_url"], mint(now=issued))).status == 200
    finally:
        service.clock = real_clock  # ... and is read now, 50 minutes later
    await plugin.api.link(dtmf_of(started), CONTACT)
    info = await plugin.api.info(CONTACT)
    assert info.status == 200
    assert info.json["auth_result"]["status"] == "succes"


@pytest.mark.gen_test(timeout=60)
async def test_dtmf_codes_of_live_sessions_are_distinct_even_when_random_codes_collide(plugin_factory):
    # 300 codes from 10,000: about 4.5 collisions expected among random picks, so
    # only the store's uniqueness and the retry keep them distinct.
    plugin = await plugin_factory(hook_plugins=[few_codes_plugin], plugins=few_codes(digits=4))
    codes = [dtmf_of(await plugin.api.start("report_move")) for _ in range(300)]
    assert all(code.startswith("424242") for code in codes)
    assert len(set(codes)) == 300


@pytest.mark.gen_test
async def test_session_info_is_not_cached(api):
    started = await api.start("report_move")
    await api.link(dtmf_of(started), CONTACT)
    info = await api.info(CONTACT)
    assert info.headers["Cache-Control"] == "no-store"
