"""The store contract as async checks: one function per guarantee of ``hookspecs.SessionStore``.

Each check gets a :class:`~connect_plugin.testing.harness.Stores`: two opened,
empty stores over the same storage.  ``StoreContract`` (``__init__.py``) turns
each into a pytest test; ``harness.run`` runs one anywhere.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from collections.abc import Awaitable
from typing import Any

from ..errors import StoreUnavailable
from ..hookspecs import SessionStore
from ..model import NewSession
from .harness import AHEAD, CONCURRENT, Stores, expiry_of, linked, linked_existing, outcome, session_of

# -- sessions and their codes ---------------------------------------------------------------


async def new_session_awaits_its_result(s: Stores) -> None:
    session = s.session()
    await s.a.create(session, s.now)
    assert await s.b.awaits_result(session.result_key) is True, "a new session must await its result"
    assert await s.b.awaits_result(secrets.token_hex(32)) is False, "an unknown result key awaits nothing"
    assert await s.b.find_by_contact(s.contact()) is None, "an unknown contact id has no session"


async def clashing_code_key_is_code_taken_and_stores_nothing(s: Stores) -> None:
    first = s.session()
    await s.a.create(first, s.now)
    clash = NewSession(first.code_key, secrets.token_hex(32), "other")
    assert await outcome(s.b.create(clash, s.now)) == "CodeTaken", "a code key in use must be CodeTaken"
    assert await s.a.awaits_result(clash.result_key) is False, "CodeTaken must store nothing"
    await s.a.create(NewSession(secrets.token_hex(32), clash.result_key, "other"), s.now)  # its result key is free
    contact = s.contact()
    await s.b.link(first.code_key, contact, s.now, s.window())
    assert (await session_of(s.a, contact)).purpose == first.purpose, "the first session must be untouched"


async def clashing_result_key_is_code_taken_and_stores_nothing(s: Stores) -> None:
    first = s.session()
    await s.a.create(first, s.now)
    clash = NewSession(secrets.token_hex(32), first.result_key, "other")
    assert await outcome(s.b.create(clash, s.now)) == "CodeTaken", "a result key in use must be CodeTaken"
    assert await outcome(s.a.link(clash.code_key, s.contact(), s.now, s.window())) == "NotFound", \
        "CodeTaken must store nothing (its code key linked)"
    await s.a.create(NewSession(clash.code_key, secrets.token_hex(32), "other"), s.now)  # its code key is free


async def code_taken_spends_no_replay_key(s: Stores) -> None:
    first = s.session()
    await s.a.create(first, s.now)
    result = s.result()
    assert await outcome(s.b.create(NewSession(first.code_key, secrets.token_hex(32), "x", result), s.now)) \
        == "CodeTaken"
    await s.a.create(s.session(result), s.now)  # the replay key was not spent by the refused create


async def concurrent_creates_with_one_code_key_store_exactly_one(s: Stores) -> None:
    code_key = secrets.token_hex(32)
    sessions = [NewSession(code_key, secrets.token_hex(32), f"p{i}") for i in range(CONCURRENT)]
    outcomes = await asyncio.gather(*(outcome(s.either(i).create(x, s.now)) for i, x in enumerate(sessions)))
    assert Counter(outcomes) == Counter({"ok": 1, "CodeTaken": CONCURRENT - 1}), outcomes
    waiting = [await s.a.awaits_result(x.result_key) for x in sessions]
    assert waiting == [o == "ok" for o in outcomes], "only the winner may be stored"


async def inline_result_is_stored_at_create(s: Stores) -> None:
    result = s.result(feedback=True)
    session = s.session(result)
    await s.a.create(session, s.now)
    assert await s.b.awaits_result(session.result_key) is False, "a session created with its result awaits none"
    assert await outcome(s.b.store_result(session.result_key, s.result(), s.now)) == "NotFound"
    contact = s.contact()
    assert await s.b.link(session.code_key, contact, s.now, s.window()) == result.jwe
    stored = await session_of(s.a, contact)
    assert (stored.purpose, stored.auth_result, stored.feedback) == (session.purpose, result.jwe, True)


# -- results ------------------------------------------------------------------------------------


async def store_result_sets_the_result_once(s: Stores) -> None:
    session = s.session()
    await s.a.create(session, s.now)
    first = s.result()
    assert await s.b.store_result(session.result_key, first, s.now) is None, "unlinked: no contact id to return"
    assert await s.a.awaits_result(session.result_key) is False
    second = s.result()
    assert await outcome(s.a.store_result(session.result_key, second, s.now)) == "NotFound", \
        "a session that has its result takes no other"
    contact = await linked_existing(s, session)
    assert (await session_of(s.a, contact)).auth_result == first.jwe, "the first result must stay"
    await s.b.create(s.session(second), s.now)  # the refused result's replay key was not spent


async def store_result_returns_the_linked_contact(s: Stores) -> None:
    session = s.session()
    contact = await linked(s, session)
    assert await s.a.store_result(session.result_key, s.result(), s.now) == contact


async def store_result_for_an_unknown_result_key_is_not_found_and_spends_nothing(s: Stores) -> None:
    result = s.result()
    assert await outcome(s.a.store_result(secrets.token_hex(32), result, s.now)) == "NotFound"
    session = s.session()
    await s.a.create(session, s.now)
    await s.b.store_result(session.result_key, result, s.now)  # its replay key is still unspent


async def concurrent_results_for_one_session_store_exactly_one(s: Stores) -> None:
    session = s.session()
    contact = await linked(s, session)
    results = [s.result() for _ in range(CONCURRENT)]
    outcomes = await asyncio.gather(*(outcome(s.either(i).store_result(session.result_key, r, s.now))
                                      for i, r in enumerate(results)))
    assert Counter(outcomes) == Counter({"ok": 1, "NotFound": CONCURRENT - 1}), outcomes
    winner = results[outcomes.index("ok")]
    assert (await session_of(s.a, contact)).auth_result == winner.jwe, "the stored result must be the winner's"
    loser = results[outcomes.index("NotFound")]
    await s.b.create(s.session(loser), s.now)  # a loser's replay key was not spent


# -- one session per token -----------------------------------------------------------------------


async def replay_key_is_accepted_for_one_session_only(s: Stores) -> None:
    first, second = s.session(), s.session()
    for session in (first, second):
        await s.a.create(session, s.now)
    replay_key = secrets.token_hex(32)
    await s.a.store_result(first.result_key, s.result(replay_key=replay_key), s.now)
    again = s.result(replay_key=replay_key)  # the same signed result, in another JWE
    assert await outcome(s.b.store_result(second.result_key, again, s.now)) == "TokenReused"
    assert await s.a.awaits_result(second.result_key) is True, "TokenReused must store nothing"


async def replay_key_spent_inline_at_create_is_refused_everywhere_after(s: Stores) -> None:
    replay_key = secrets.token_hex(32)
    await s.a.create(s.session(s.result(replay_key=replay_key)), s.now)
    waiting = s.session()
    await s.a.create(waiting, s.now)
    assert await outcome(s.b.store_result(waiting.result_key, s.result(replay_key=replay_key), s.now)) \
        == "TokenReused"
    refused = s.session(s.result(replay_key=replay_key))
    assert await outcome(s.b.create(refused, s.now)) == "TokenReused"
    await s.a.create(NewSession(refused.code_key, refused.result_key, "x"), s.now)  # its codes were not taken


async def one_replay_key_posted_to_many_sessions_at_once_is_accepted_once(s: Stores) -> None:
    sessions = [s.session() for _ in range(CONCURRENT)]
    for session in sessions:
        await s.a.create(session, s.now)
    replay_key = secrets.token_hex(32)
    outcomes = await asyncio.gather(*(outcome(s.either(i).store_result(x.result_key, s.result(replay_key=replay_key),
                                                                        s.now)) for i, x in enumerate(sessions)))
    assert Counter(outcomes) == Counter({"ok": 1, "TokenReused": CONCURRENT - 1}), outcomes
    waiting = [await s.a.awaits_result(x.result_key) for x in sessions]
    assert waiting == [o != "ok" for o in outcomes], "only the winner's session may have the result"


async def one_replay_key_in_concurrent_inline_creates_is_accepted_once(s: Stores) -> None:
    replay_key = secrets.token_hex(32)
    sessions = [s.session(s.result(replay_key=replay_key)) for _ in range(CONCURRENT)]
    outcomes = await asyncio.gather(*(outcome(s.either(i).create(x, s.now)) for i, x in enumerate(sessions)))
    assert Counter(outcomes) == Counter({"ok": 1, "TokenReused": CONCURRENT - 1}), outcomes
    loser = sessions[outcomes.index("TokenReused")]
    await s.a.create(NewSession(loser.code_key, loser.result_key, "x"), s.now)  # a loser stored nothing


# -- links ----------------------------------------------------------------------------------------------


async def link_gives_a_code_one_contact_and_relinking_is_a_success(s: Stores) -> None:
    session = s.session()
    contact, other = s.contact(), s.contact()
    await s.a.create(session, s.now)
    assert await s.a.link(session.code_key, contact, s.now, s.window()) is None
    assert await s.b.link(session.code_key, contact, s.now, s.window()) is None, "the same pair again succeeds"
    assert await outcome(s.b.link(session.code_key, other, s.now, s.window())) == "NotFound"
    assert await s.a.find_by_contact(other) is None, "a refused link links nothing"
    stored = await session_of(s.a, contact)
    assert (stored.purpose, stored.auth_result, stored.feedback) == (session.purpose, None, False)


async def contact_is_linked_to_one_session_only(s: Stores) -> None:
    first, second = s.session(purpose="first"), s.session(purpose="second")
    contact = await linked(s, first)
    await s.a.create(second, s.now)
    assert await outcome(s.b.link(second.code_key, contact, s.now, s.window())) == "NotFound"
    assert (await session_of(s.a, contact)).purpose == "first"
    await s.a.link(second.code_key, s.contact(), s.now, s.window())  # the refused session is still free


async def link_of_an_unknown_code_is_not_found(s: Stores) -> None:
    contact = s.contact()
    assert await outcome(s.a.link(secrets.token_hex(32), contact, s.now, s.window())) == "NotFound"
    assert await s.a.find_by_contact(contact) is None


async def concurrent_links_of_one_code_link_exactly_one_contact(s: Stores) -> None:
    session = s.session()
    await s.a.create(session, s.now)
    contacts = [s.contact() for _ in range(CONCURRENT)]
    outcomes = await asyncio.gather(*(outcome(s.either(i).link(session.code_key, c, s.now, s.window()))
                                      for i, c in enumerate(contacts)))
    assert Counter(outcomes) == Counter({"ok": 1, "NotFound": CONCURRENT - 1}), outcomes
    found = [await s.a.find_by_contact(c) is not None for c in contacts]
    assert found == [o == "ok" for o in outcomes], "only the winning contact may find the session"


async def concurrent_links_of_one_contact_link_exactly_one_session(s: Stores) -> None:
    sessions = [s.session(purpose=f"p{i}") for i in range(CONCURRENT)]
    for session in sessions:
        await s.a.create(session, s.now)
    contact = s.contact()
    outcomes = await asyncio.gather(*(outcome(s.either(i).link(x.code_key, contact, s.now, s.window()))
                                      for i, x in enumerate(sessions)))
    assert Counter(outcomes) == Counter({"ok": 1, "NotFound": CONCURRENT - 1}), outcomes
    winner = sessions[outcomes.index("ok")]
    assert (await session_of(s.b, contact)).purpose == winner.purpose


async def link_returns_the_stored_result_only_when_it_asked_for_feedback(s: Stores) -> None:
    plain, silent, asking = s.session(), s.session(), s.session()
    for session in (plain, silent, asking):
        await s.a.create(session, s.now)
    await s.a.store_result(silent.result_key, s.result(feedback=False), s.now)
    wants = s.result(feedback=True)
    await s.a.store_result(asking.result_key, wants, s.now)
    assert await s.b.link(plain.code_key, s.contact(), s.now, s.window()) is None, "no result: nothing to return"
    assert await s.b.link(silent.code_key, s.contact(), s.now, s.window()) is None, "no feedback asked: None"
    assert await s.b.link(asking.code_key, s.contact(), s.now, s.window()) == wants.jwe


async def find_by_contact_reads_purpose_result_and_feedback(s: Stores) -> None:
    session = s.session(purpose="request_permit")
    contact = await linked(s, session)
    result = s.result(feedback=True)
    await s.a.store_result(session.result_key, result, s.now)
    stored = await session_of(s.b, contact)
    assert (stored.purpose, stored.auth_result, stored.feedback) == ("request_permit", result.jwe, True)


# -- the link failure budget -----------------------------------------------------------------------


async def failure_counts_rise_by_one_per_window(s: Stores) -> None:
    first, second = s.window().ends, s.window(offset=60).ends
    assert [await s.either(i).count_link_failure(first) for i in range(3)] == [1, 2, 3]
    assert await s.b.count_link_failure(second) == 1, "each window counts on its own"


async def spent_failure_window_refuses_every_link_even_the_right_code(s: Stores) -> None:
    session = s.session()
    await s.a.create(session, s.now)
    window = s.window(budget=3)
    for _ in range(2):
        await s.a.count_link_failure(window.ends)
    contact = s.contact()
    await s.b.link(session.code_key, contact, s.now, window)  # 2 of 3: still allowed
    other = s.session()
    await s.a.create(other, s.now)
    await s.a.count_link_failure(window.ends)
    late = s.contact()
    assert await outcome(s.b.link(other.code_key, late, s.now, window)) == "NotFound", "a spent window links nothing"
    assert await s.a.find_by_contact(late) is None
    assert await outcome(s.b.link(session.code_key, contact, s.now, window)) == "NotFound", "not even a re-link"
    await s.b.link(other.code_key, late, s.now, s.window(budget=3, offset=60))  # the next window is fresh


async def concurrent_failures_on_two_connections_are_all_counted(s: Stores) -> None:
    window_end = s.window().ends
    counts = await asyncio.gather(*(s.either(i).count_link_failure(window_end) for i in range(2 * CONCURRENT)))
    assert sorted(counts) == list(range(1, 2 * CONCURRENT + 1)), "every failure counted once, in one sequence"


# -- activity, idle sessions and ended records --------------------------------------------------------


async def every_write_records_activity(s: Stores) -> None:
    session = s.session()
    contact = s.contact()
    t = s.now
    if s.expires_by_itself:
        await s.a.create(session, t)
        created = await expiry_of(s, session)
        assert created > t, "a new session must expire after its creation"
        await s.b.store_result(session.result_key, s.result(), t + 100)
        assert abs(await expiry_of(s, session) - (created + 100)) < 0.01, "store_result must move the expiry"
        await s.b.link(session.code_key, contact, t + 200, s.window())
        assert abs(await expiry_of(s, session) - (created + 200)) < 0.01, "link must move the expiry"
        return
    await s.a.create(session, t)
    assert await s.a.delete_idle(t, 10) == 0, "activity at creation"
    await s.b.store_result(session.result_key, s.result(), t + 100)
    assert await s.a.delete_idle(t + 50, 10) == 0, "store_result must record activity"
    await s.b.link(session.code_key, contact, t + 200, s.window())
    assert await s.a.delete_idle(t + 150, 10) == 0, "link must record activity"
    assert await s.b.find_by_contact(contact) is not None
    assert await s.a.delete_idle(t + 250, 10) == 1
    assert await s.b.find_by_contact(contact) is None


async def delete_idle_deletes_idle_sessions_at_most_limit_a_call(s: Stores) -> None:
    fresh = s.session()
    await s.a.create(fresh, s.now)
    if s.expires_by_itself:
        assert await s.a.delete_idle(s.now + 10 * AHEAD, 2) == 0, "a store that expires by itself deletes nothing"
        assert await s.a.awaits_result(fresh.result_key) is True
        return
    old = [s.session() for _ in range(5)]
    contacts = [s.contact() for _ in old]
    for session, contact in zip(old, contacts, strict=True):
        await s.a.create(session, s.now - 1000)
        await s.a.link(session.code_key, contact, s.now - 1000, s.window())
    calls = [await s.either(i).delete_idle(s.now - 500, 2) for i in range(4)]
    assert calls == [2, 2, 1, 0], f"at most limit per call, and all of them: {calls}"
    for session, contact in zip(old, contacts, strict=True):
        assert await s.a.awaits_result(session.result_key) is False
        assert await s.b.find_by_contact(contact) is None
        await s.a.create(NewSession(session.code_key, secrets.token_hex(32), "again"), s.now)  # its code is free
    assert await s.a.awaits_result(fresh.result_key) is True, "an active session must stay"


async def delete_expired_forgets_only_ended_records_at_most_limit_a_call(s: Stores) -> None:
    windows = [s.window(offset=60 * i).ends for i in range(3)]
    for window_end in windows:
        await s.a.count_link_failure(window_end)
    replay_keys = [secrets.token_hex(32) for _ in range(3)]
    for replay_key in replay_keys:
        await s.a.create(s.session(s.result(replay_key=replay_key)), s.now)
    assert await s.b.delete_expired(s.now, 100) == 0, "nothing has ended yet"
    assert await s.a.count_link_failure(windows[0]) == 2, "a window's count lives until the window ends"
    assert await outcome(s.a.create(s.session(s.result(replay_key=replay_keys[0])), s.now)) == "TokenReused", \
        "a replay key lives until it expires"
    later = s.now + 3 * AHEAD
    calls = [await s.either(i).delete_expired(later, 2) for i in range(4)]
    if s.expires_by_itself:
        assert calls == [0, 0, 0, 0], "a store whose records expire by themselves deletes nothing"
    else:
        assert calls == [2, 2, 2, 0], f"at most limit per call, and all of them (3 windows, 3 keys): {calls}"


# -- the backend gone ------------------------------------------------------------------------------------


async def backend_gone_is_store_unavailable(store: SessionStore, within: float) -> None:
    """Every call raises ``StoreUnavailable`` (bounded by ``within`` s: a hang would hold a request)."""
    s = Stores(store, store, time.time())
    session = s.session()

    async def bounded(name: str, call: Awaitable[Any], may_answer: bool = False) -> None:
        try:
            await asyncio.wait_for(call, within)
        except StoreUnavailable:
            return
        except TimeoutError:
            raise AssertionError(f"{name} neither answered nor raised StoreUnavailable within {within} s") from None
        assert may_answer, f"{name} answered with its backend gone: it must raise StoreUnavailable"

    await bounded("open", store.open(), may_answer=True)  # a store may open, and answer 503 until it is back
    try:
        await bounded("ping", store.ping())
        await bounded("create", store.create(session, s.now))
        await bounded("awaits_result", store.awaits_result(session.result_key))
        await bounded("store_result", store.store_result(session.result_key, s.result(), s.now))
        await bounded("link", store.link(session.code_key, s.contact(), s.now, s.window()))
        await bounded("count_link_failure", store.count_link_failure(s.window().ends))
        await bounded("find_by_contact", store.find_by_contact(s.contact()))
        await bounded("delete_idle", store.delete_idle(s.now, 10), may_answer=True)  # 0 when it expires by itself
        await bounded("delete_expired", store.delete_expired(s.now, 10), may_answer=True)
    finally:
        await asyncio.wait_for(store.close(), within)
