"""Where the RSA work goes: none for unknown result codes, off the event loop, at most two per session.

A spy around ``jwe.decrypt`` (the real function still runs) counts the
decryptions and notes the thread each ran on.
"""

from __future__ import annotations

import asyncio
import threading

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
