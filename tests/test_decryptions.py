"""Where the RSA work goes: none for unknown result codes, off the event loop, at most two per session.

A spy around ``jwe.decrypt`` (the real function still runs) counts the
decryptions and notes the thread each ran on.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import pytest

from connect_plugin import jwe
from tests.support import dtmf_of

CONTACT = "dec0dec0-0000-4000-8000-000000000001"


class Decryptions:
    """Counts real decryptions and the threads they ran on."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []

    @property
    def count(self) -> int:
        return len(self.threads)


@pytest.fixture
def decryptions(monkeypatch) -> Decryptions:
    seen = Decryptions()
    real = jwe.decrypt

    def spy(*args, **kwargs):
        seen.threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(jwe, "decrypt", spy)
    return seen


@pytest.mark.gen_test
async def test_a_token_for_an_unknown_result_code_is_404_without_decryption(api, mint, decryptions):
    response = await api.post_result("/session_result/" + "x" * 32, mint())
    assert response.status == 404
    assert decryptions.count == 0


@pytest.mark.gen_test
async def test_a_token_for_a_session_with_a_result_is_404_without_decryption(api, mint, decryptions):
    started = (await api.start("report_move")).json
    assert (await api.post_result(started["attr_url"], mint())).status == 200
    before = decryptions.count
    assert (await api.post_result(started["attr_url"], mint(attributes={"email": "x@example.nl"}))).status == 404
    assert decryptions.count == before


@pytest.mark.gen_test
async def test_tokens_are_decrypted_off_the_event_loop(api, mint, decryptions):
    started = (await api.start("report_move")).json
    await api.post_result(started["attr_url"], mint())
    await api.link(dtmf_of(started), CONTACT)
    assert (await api.info(CONTACT)).status == 200
    assert decryptions.count == 2
    assert threading.main_thread() not in decryptions.threads  # the event loop runs on the main thread


@pytest.mark.gen_test
async def test_a_session_costs_two_decryptions_and_its_link_none(api, mint, decryptions):
    started = (await api.start("report_move")).json
    await api.post_result(started["attr_url"], mint())
    assert decryptions.count == 1
    assert (await api.link(dtmf_of(started), CONTACT)).status == 200
    assert decryptions.count == 1  # no session_url: nothing to decrypt for feedback
    assert (await api.info(CONTACT)).status == 200
    assert decryptions.count == 2


@pytest.mark.gen_test
async def test_a_link_decrypts_only_a_result_that_asked_for_feedback(api, mint, decryptions):
    started = (await api.start("report_move")).json
    await api.post_result(started["attr_url"], mint(session_url="https://auth.example.nl/session/1"))
    assert (await api.link(dtmf_of(started), CONTACT)).status == 200
    for _ in range(500):  # feedback is sent in the background; wait for its decryption
        if decryptions.count == 2:
            break
        await asyncio.sleep(0.01)
    assert decryptions.count == 2


class Gate:
    """Holds decryptions on receipt threads while closed (at most 30 s), as a slow CPU would."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.opened.set()

    def close(self) -> None:
        self.opened.clear()

    def open(self) -> None:
        self.opened.set()


@pytest.fixture
def receipt_gate(monkeypatch) -> Gate:
    gate = Gate()
    real = jwe.decrypt

    def gated(*args, **kwargs):
        if threading.current_thread().name.startswith("connect-plugin-receipt"):
            gate.opened.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(jwe, "decrypt", gated)
    yield gate
    gate.open()


async def until(condition, what: str) -> None:
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def many_at_once(api):
    """The same client, able to hold more than Tornado's default of 10 requests open at once."""
    from tornado.httpclient import AsyncHTTPClient

    from tests.support import Api

    wide = Api(api.base_url)
    wide.http = AsyncHTTPClient(force_instance=True, max_clients=64)
    return wide


def junk_tokens(mint, keyset, count: int) -> list[str]:
    """Tokens for the plugin's key, signed by a key nobody configured: each costs a decryption, then 400."""
    from tests.support import new_private_key

    stranger = type(keyset)(keyset.decrypt, new_private_key("RSA"))
    return [mint(attributes={"email": f"junk{i}@example.invalid"}, keys=stranger) for i in range(count)]


@pytest.mark.gen_test(timeout=60)
async def test_tokens_beyond_the_receipt_queue_are_refused_at_once_with_429(api, mint, keyset, receipt_gate):
    from connect_plugin.service import MAX_PENDING_RECEIPTS

    started = (await api.start("report_move")).json
    junk = junk_tokens(mint, keyset, MAX_PENDING_RECEIPTS + 4)
    receipt_gate.close()
    wide = many_at_once(api)
    posts = [asyncio.ensure_future(wide.post_result(started["attr_url"], token)) for token in junk]
    await until(lambda: sum(p.done() for p in posts) == 4, "four posts refused while the others wait")
    refused = [p.result() for p in posts if p.done()]
    assert [r.status for r in refused] == [429] * 4
    assert all(r.headers["Retry-After"] == "1" and r.json == {"error": "TooManyRequests"} for r in refused)
    receipt_gate.open()
    answered = Counter([(await p).status for p in posts])
    assert answered == Counter({400: MAX_PENDING_RECEIPTS, 429: 4})  # the waiting ones were checked, and refused


@pytest.mark.gen_test(timeout=60)
async def test_an_inline_result_beyond_the_receipt_queue_is_refused_with_429_and_starts_nothing(
        api, mint, keyset, receipt_gate, database_url):
    from connect_plugin.service import MAX_PENDING_RECEIPTS
    from tests.support import count_sessions

    started = (await api.start("report_move")).json
    receipt_gate.close()
    wide = many_at_once(api)
    waiting = [asyncio.ensure_future(wide.post_result(started["attr_url"], token))
               for token in junk_tokens(mint, keyset, MAX_PENDING_RECEIPTS + 1)]
    await until(lambda: any(p.done() for p in waiting), "the queue full: one post refused")
    inline = await wide.start("report_move", auth_result=mint(attributes={"email": "late@example.com"}))
    assert inline.status == 429
    assert inline.json == {"error": "TooManyRequests"}
    assert inline.headers["Retry-After"] == "1"
    receipt_gate.open()
    await asyncio.gather(*waiting)
    assert await count_sessions(database_url) == 1  # only the first session: the refused start left nothing


@pytest.mark.gen_test(timeout=60)
async def test_an_agent_read_does_not_wait_behind_tokens_being_checked(api, mint, keyset, receipt_gate):
    started = (await api.start("report_move")).json
    assert (await api.post_result(started["attr_url"], mint())).status == 200
    assert (await api.link(dtmf_of(started), CONTACT)).status == 200
    receipt_gate.close()
    other = (await api.start("report_move")).json
    flood = [asyncio.ensure_future(api.post_result(other["attr_url"], token))
             for token in junk_tokens(mint, keyset, 4)]
    info = await api.info(CONTACT)  # the receipt threads are all held
    assert info.status == 200
    assert info.json["auth_result"]["status"] == "succes"
    assert not any(p.done() for p in flood)
    receipt_gate.open()
    assert [(await p).status for p in flood] == [400] * 4
