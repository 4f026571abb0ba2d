"""One result per token: a signed result is accepted for one session only, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from tests.support import count_rows, count_sessions, dtmf_of

REPLAYED = "invalid auth_result token (replayed): "


@pytest.mark.gen_test
async def test_a_token_posted_to_a_second_session_is_400_replayed_and_stores_nothing(api, mint):
    token = mint(attributes={"fullname": "Jan Jansen"})
    first = (await api.start("report_move")).json
    second = (await api.start("report_move")).json
    assert (await api.post_result(first["attr_url"], token)).status == 200
    refused = await api.post_result(second["attr_url"], token)
    assert refused.status == 400
    assert refused.json["error"] == "BadRequest"
    assert refused.json["detail"].startswith(REPLAYED)
    await api.link(dtmf_of(second), "replay-victim-0001")
    assert (await api.info("replay-victim-0001")).json["auth_result"] is None


@pytest.mark.gen_test
async def test_the_same_result_re_encrypted_is_still_a_replay(api, mint, keyset):
    from connect_plugin import jwe, tokens

    token = mint()
    # Anyone with the plugin's public key can wrap the same signed result in a fresh JWE.
    _header, payload = jwe.decrypt(token, keyset.decrypt)
    rewrapped = jwe.encrypt(payload, keyset.encrypt, {"typ": "JWT", "cty": "JWT"})
    assert rewrapped != token
    assert tokens.read_auth_result(rewrapped, keyset.decrypt, keyset.verify) is not None
    first = (await api.start("report_move")).json
    second = (await api.start("report_move")).json
    assert (await api.post_result(first["attr_url"], token)).status == 200
    assert (await api.post_result(second["attr_url"], rewrapped)).json["detail"].startswith(REPLAYED)


@pytest.mark.gen_test
async def test_an_inline_result_reused_at_start_is_400_and_leaves_no_session(api, mint, database_url):
    token = mint()
    assert (await api.start("report_move", auth_result=token)).status == 200
    refused = await api.start("report_move", auth_result=token)
    assert refused.status == 400
    assert refused.json["detail"].startswith(REPLAYED)
    assert await count_sessions(database_url) == 1


@pytest.mark.gen_test
async def test_a_posted_result_cannot_be_reused_inline(api, mint, database_url):
    token = mint()
    started = (await api.start("report_move")).json
    assert (await api.post_result(started["attr_url"], token)).status == 200
    assert (await api.start("report_move", auth_result=token)).status == 400
    assert await count_sessions(database_url) == 1


@pytest.mark.gen_test(timeout=60)
async def test_one_token_posted_to_many_sessions_at_once_is_accepted_exactly_once(api, mint):
    sessions = [(await api.start("report_move")).json for _ in range(20)]
    token = mint(attributes={"fullname": "Piet Pietersen"})
    posted = await asyncio.gather(*(api.post_result(s["attr_url"], token) for s in sessions))
    assert Counter(p.status for p in posted) == Counter({200: 1, 400: 19})
    for p in posted:
        if p.status == 400:
            assert p.json["detail"].startswith(REPLAYED)


@pytest.mark.gen_test(timeout=60)
async def test_distinct_tokens_posted_at_once_are_all_accepted(api, mint):
    sessions = [(await api.start("report_move")).json for _ in range(20)]
    tokens = [mint(attributes={"email": f"c{i}@example.nl"}) for i in range(20)]
    posted = await asyncio.gather(*(api.post_result(s["attr_url"], t) for s, t in zip(sessions, tokens, strict=True)))
    assert all(p.status == 200 for p in posted)


@pytest.mark.gen_test
async def test_used_tokens_are_forgotten_by_cleanup_once_expired(plugin_factory, mint, database_url):
    plugin = await plugin_factory(token_leeway=60)
    started = (await plugin.api.start("report_move")).json
    assert (await plugin.api.post_result(started["attr_url"], mint(lifetime=300))).status == 200
    assert await count_rows(database_url, "comm_used_token") == 1
    await plugin.api.call("GET", "/clean_db")
    assert await count_rows(database_url, "comm_used_token") == 1  # the token has not expired yet
    now = time.time()
    plugin.runtime.service.clock = lambda: now + 300 + 60 + 1  # past exp and the leeway
    await plugin.api.call("GET", "/clean_db")
    assert await count_rows(database_url, "comm_used_token") == 0


@pytest.mark.gen_test
async def test_identical_failed_results_for_two_sessions_are_both_accepted(api, keyset):
    from connect_plugin import tokens
    from connect_plugin.model import AuthResult

    now = time.time()
    failed = AuthResult(status="failed")
    first = tokens.make_auth_result(failed, keyset.encrypt, keyset.sign, now=now)
    second = tokens.make_auth_result(failed, keyset.encrypt, keyset.sign, now=now)  # same claims, same second
    one, two = (await api.start()).json, (await api.start()).json
    assert (await api.post_result(one["attr_url"], first)).status == 200
    assert (await api.post_result(two["attr_url"], second)).status == 200
    three = (await api.start()).json
    again = await api.post_result(three["attr_url"], first)
    assert again.status == 400
    assert "replayed" in again.json["detail"]
