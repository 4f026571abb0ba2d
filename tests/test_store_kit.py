"""The contract kit fails a store that breaks a guarantee: each broken store below breaks one, and is caught.

Each is the memory-store example with one mistake a store author could make.
"""

from __future__ import annotations

import asyncio

import pytest
from connect_plugin_memory_store import MemoryStore, Row

from connect_plugin.api import CodeTaken, FailureWindow, NotFound
from connect_plugin.testing import checks, run


class RacyResults(MemoryStore):
    """Checks, then awaits (another request runs), then writes: two results can win."""

    async def store_result(self, result_key, result, now):
        row = self.by_result.get(result_key)
        if row is None or row.result is not None:
            raise NotFound()
        await asyncio.sleep(0)
        row.result, row.last_activity = result, now
        self._spend(result)
        return row.contact_id


class RacyLinks(MemoryStore):
    """Awaits between its check and its write: two contacts can link one code."""

    async def link(self, code_key, contact_id, now, window):
        row = self.by_code.get(code_key)
        if row is None or row.contact_id not in (None, contact_id):
            raise NotFound()
        await asyncio.sleep(0)
        row.contact_id, row.last_activity = contact_id, now
        self.by_contact[contact_id] = row
        return None


class RacyCreates(MemoryStore):
    """Awaits between its check and its write: two sessions can take one code."""

    async def create(self, session, now):
        if session.code_key in self.by_code:
            raise CodeTaken()
        await asyncio.sleep(0)
        self.by_code[session.code_key] = self.by_result[session.result_key] = Row(session, now)


class HalfWrittenClash(MemoryStore):
    """Takes the code key before it finds the result key taken: CodeTaken stores something."""

    async def create(self, session, now):
        if session.code_key in self.by_code:
            raise CodeTaken()
        self.by_code[session.code_key] = Row(session, now)
        if session.result_key in self.by_result:
            raise CodeTaken()
        self.by_result[session.result_key] = self.by_code[session.code_key]


class ForgetfulTokens(MemoryStore):
    """Never records a replay key: one token, many sessions."""

    def _spend(self, result):
        pass


class NoBudget(MemoryStore):
    """Links whatever the failure window says."""

    async def link(self, code_key, contact_id, now, window):
        return await super().link(code_key, contact_id, now, FailureWindow(window.ends, 10**9))


class LinkWithoutActivity(MemoryStore):
    """Forgets to record a link as activity: a call in progress could be deleted as idle."""

    async def link(self, code_key, contact_id, now, window):
        before = self.by_code[code_key].last_activity if code_key in self.by_code else now
        answer = await super().link(code_key, contact_id, now, window)
        self.by_code[code_key].last_activity = before
        return answer


class UnboundedDeletes(MemoryStore):
    """Deletes every idle session in one call, however many: one long stall of the store."""

    async def delete_idle(self, before, limit):
        return await super().delete_idle(before, 10**9)


class Hangs(MemoryStore):
    """A store whose backend went silent and that waits for ever."""

    async def ping(self):
        await asyncio.sleep(3600)


BROKEN = [
    (RacyResults, checks.concurrent_results_for_one_session_store_exactly_one),
    (RacyLinks, checks.concurrent_links_of_one_code_link_exactly_one_contact),
    (RacyCreates, checks.concurrent_creates_with_one_code_key_store_exactly_one),
    (HalfWrittenClash, checks.clashing_result_key_is_code_taken_and_stores_nothing),
    (ForgetfulTokens, checks.replay_key_is_accepted_for_one_session_only),
    (ForgetfulTokens, checks.one_replay_key_posted_to_many_sessions_at_once_is_accepted_once),
    (NoBudget, checks.spent_failure_window_refuses_every_link_even_the_right_code),
    (LinkWithoutActivity, checks.every_write_records_activity),
    (UnboundedDeletes, checks.delete_idle_deletes_idle_sessions_at_most_limit_a_call),
]


@pytest.mark.parametrize(("broken", "check"), BROKEN, ids=[f"{b.__name__}-{c.__name__}" for b, c in BROKEN])
def test_the_kit_fails_a_store_that_breaks_a_guarantee(broken, check):
    store = broken()
    with pytest.raises(AssertionError):
        asyncio.run(run(check, lambda: store))


@pytest.mark.parametrize(("broken", "check"), BROKEN, ids=[f"{b.__name__}-{c.__name__}" for b, c in BROKEN])
def test_the_same_check_passes_on_the_unbroken_store(broken, check):
    store = MemoryStore()
    asyncio.run(run(check, lambda: store))


def test_the_kit_fails_a_store_that_hangs_when_its_backend_is_gone():
    with pytest.raises(AssertionError, match=r"neither answered nor raised StoreUnavailable within 0\.2 s"):
        asyncio.run(checks.backend_gone_is_store_unavailable(Hangs(), within=0.2))


def test_the_kit_fails_a_store_that_answers_when_its_backend_is_gone():
    with pytest.raises(AssertionError, match="ping answered with its backend gone"):
        asyncio.run(checks.backend_gone_is_store_unavailable(MemoryStore(), within=5))
