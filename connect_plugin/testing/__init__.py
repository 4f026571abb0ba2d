"""The store contract as a test kit: does a store keep every guarantee the flow relies on?

Each guarantee written in ``hookspecs.SessionStore`` is one test of
:class:`StoreContract`.  A store plugin runs them all from its own tests by
subclassing it and saying how to build its store::

    import pytest
    from connect_plugin.testing import StoreContract

    from my_store import MyStore


    class TestMyStore(StoreContract):
        @pytest.fixture
        def store_factory(self):
            return MyStore  # called for each store: a new, unopened store over this test's (empty) storage

The kit needs pytest (``pip install 'connect-plugin[testing]'``) and no
async plugin: each test runs its checks on an event loop of its own.

* ``store_factory`` is called twice per test: the two stores it makes play two
  plugin instances on one storage, and the concurrency checks race calls over
  both.  A store that lives in one process returns the same object each time.
  Every test needs empty storage: make the fixture give each test its own
  (a new database, a new key prefix).
* ``unreachable_store_factory``, if overridden, makes a store whose backend
  does not answer (a closed port): every call must then raise
  ``StoreUnavailable``, within ``unavailable_within`` seconds.
* ``expires_by_itself = True`` for a store whose sessions expire by
  themselves (a TTL moved by every write) and whose ``delete_idle`` and
  ``delete_expired`` therefore return 0; such a store says when a session
  will expire by overriding :meth:`StoreContract.session_expiry`.

The checks pass the real time as ``now`` (a store may give it to its backend
as an expiry) and use random keys, tokens and contact ids.
"""

from __future__ import annotations

import asyncio

import pytest

pytest.register_assert_rewrite("connect_plugin.testing.harness", "connect_plugin.testing.store_checks")

from ..hookspecs import SessionStore  # noqa: E402 (after the assertion rewrite is registered)
from ..model import NewSession  # noqa: E402
from . import store_checks as checks  # noqa: E402
from .harness import Check, StoreFactory, Stores, make, run  # noqa: E402

__all__ = ["Check", "StoreContract", "StoreFactory", "Stores", "checks", "make", "run"]


class StoreContract:
    """Tests of every guarantee of ``hookspecs.SessionStore``; subclass it as ``Test<YourStore>``."""

    #: Sessions expire by themselves (a TTL); ``delete_idle`` and ``delete_expired`` return 0.
    expires_by_itself: bool = False
    #: Seconds a call may take to raise ``StoreUnavailable`` with the backend gone.
    unavailable_within: float = 10.0

    @pytest.fixture
    def store_factory(self) -> StoreFactory:
        """Override: a callable making a new, unopened store over this test's empty storage."""
        raise NotImplementedError("override the store_factory fixture in your StoreContract subclass")

    @pytest.fixture
    def unreachable_store_factory(self) -> StoreFactory | None:
        """Override: a callable making a store whose backend does not answer (``None``: skip that test)."""
        return None

    async def session_expiry(self, store: SessionStore, session: NewSession) -> float | None:
        """For ``expires_by_itself``: when ``session`` will expire (epoch seconds), ``None`` if it is gone."""
        raise NotImplementedError("a store that expires by itself must override session_expiry")

    def check(self, factory: StoreFactory, check: Check) -> None:
        """Run one check on two new stores from ``factory``, on an event loop of its own."""
        expiry = self.session_expiry if self.expires_by_itself else None
        asyncio.run(run(check, factory, expires_by_itself=self.expires_by_itself, expiry=expiry))

    # -- sessions and their codes

    def test_new_session_awaits_its_result(self, store_factory: StoreFactory) -> None:
        self.check(store_factory, checks.new_session_awaits_its_result)

    def test_clashing_code_key_is_code_taken_and_stores_nothing(self, store_factory: StoreFactory) -> None:
        self.check(store_factory, checks.clashing_code_key_is_code_taken_and_stores_nothing)

    def test_clashing_result_key_is_code_taken_and_stores_nothing(self, store_factory: StoreFactory) -> None:
        self.check(store_factory, checks.clashing_result_key_is_code_taken_and_stores_nothing)

    def test_code_taken_spends_no_replay_key(self, store_factory: StoreFactory) -> None:
        self.check(store_factory, checks.code_taken_spends_no_replay_key)

    def test_concurrent_creates_with_one_code_key_store_exactly_one(self, store_factory: StoreFactory) -> None:
        self.check(store_factory, checks.concurrent_creates_with_one_code_key_store_exactly_one)

    def test_inline_result_is_stored_at_create(self, store_factory: StoreFactory) -> None:
        self.check(store_factory, checks.inline_result_is_stored_at_create)

    # -- one result per session

    def test_store_result_sets_the_result_once(self, store_factory: StoreFactory) -> None:
        self.check(store_factory, checks.store_result_sets_the_result_once)

    def test_store_result_returns_the_linked_contact(self, store_factory: StoreFactory) -> None:
        self.check(store_factory, checks.store_result_returns_the_linked_contact)

    def test_store_result_for_an_unknown_result_key_is_not_found_and_spends_nothing(
        self, store_factory: StoreFactory
    ) -> None:
        self.check(store_factory, checks.store_result_for_an_unknown_result_key_is_not_found_and_spends_nothing)

    def test_concurrent_results_for_one_session_store_exactly_one(self, store_factory: StoreFactory) -> None:
        self.check(store_factory, checks.concurrent_results_for_one_session_store_exactly_one)

    # -- one session per token

    def test_replay_key_is_accepted_for_one_session_only(self, store_factory: StoreFactory) -> None:
        self.check(store_factory, checks.replay_key_is_accepted_for_one_session_only)

    def test_replay_key_spent_inline_at_create_is_refused_everywhere_after(self, store_factory: StoreFactory) -> None:
        self.check(store_factory, checks.replay_key_spent_inline_at_create_is_refused_everywhere_after)

    def test_one_replay_key_posted_to_many_sessions_at_once_is_accepted_once(
        self, store_factory: StoreFactory
    ) -> None:
        self.check(store_factory, checks.one_replay_key_posted_to_many_sessions_at_once_is_accepted_once)

    def test_one_replay_key_in_concurrent_inline_creates_is_accepted_once(self, store_factory: StoreFactory) -> None:
        self.check(store_factory, checks.one_replay_key_in_concurrent_inline_creates_is_accepted_once)

    # -- atomic links

    def test_link_gives_a_code_one_contact_and_relinking_is_a_success(self, store_factory: StoreFactory) -> None:
        self.check(store_factory, checks.link_gives_a_code_one_contact_and_relinking_is_a_success)

    def test_contact_is_linked_to_one_session_only(self, store_factory: StoreFactory) -> None:
        self.check(store_factory, checks.contact_is_linked_to_one_session_only)

    def test_link_of_an_unknown_code_is_not_found(self, store_factory: StoreFactory) -> None:
        self.check(store_factory, checks.link_of_an_unknown_code_is_not_found)

    def test_concurrent_links_of_one_code_link_exactly_one_contact(self, store_factory: StoreFactory) -> None:
        self.check(store_factory, checks.concurrent_links_of_one_code_link_exactly_one_contact)

    def test_concurrent_links_of_one_contact_link_exactly_one_session(self, store_factory: StoreFactory) -> None:
        self.check(store_factory, checks.concurrent_links_of_one_contact_link_exactly_one_session)

    def test_link_returns_the_stored_result_only_when_it_asked_for_feedback(
        self, store_factory: StoreFactory
    ) -> None:
        self.check(store_factory, checks.link_returns_the_stored_result_only_when_it_asked_for_feedback)

    def test_find_by_contact_reads_purpose_result_and_feedback(self, store_factory: StoreFactory) -> None:
        self.check(store_factory, checks.find_by_contact_reads_purpose_result_and_feedback)

    # -- the link failure budget

    def test_failure_counts_rise_by_one_per_window(self, store_factory: StoreFactory) -> None:
        self.check(store_factory, checks.failure_counts_rise_by_one_per_window)

    def test_spent_failure_window_refuses_every_link_even_the_right_code(self, store_factory: StoreFactory) -> None:
        self.check(store_factory, checks.spent_failure_window_refuses_every_link_even_the_right_code)

    def test_concurrent_failures_on_two_connections_are_all_counted(self, store_factory: StoreFactory) -> None:
        self.check(store_factory, checks.concurrent_failures_on_two_connections_are_all_counted)

    # -- activity, idle sessions, ended records

    def test_every_write_records_activity(self, store_factory: StoreFactory) -> None:
        self.check(store_factory, checks.every_write_records_activity)

    def test_delete_idle_deletes_idle_sessions_at_most_limit_a_call(self, store_factory: StoreFactory) -> None:
        self.check(store_factory, checks.delete_idle_deletes_idle_sessions_at_most_limit_a_call)

    def test_delete_expired_forgets_only_ended_records_at_most_limit_a_call(
        self, store_factory: StoreFactory
    ) -> None:
        self.check(store_factory, checks.delete_expired_forgets_only_ended_records_at_most_limit_a_call)

    # -- the backend gone

    def test_backend_gone_is_store_unavailable(self, unreachable_store_factory: StoreFactory | None) -> None:
        if unreachable_store_factory is None:
            pytest.skip("no unreachable_store_factory: override it to check StoreUnavailable")

        async def go() -> None:
            store = await make(unreachable_store_factory)
            await checks.backend_gone_is_store_unavailable(store, self.unavailable_within)

        asyncio.run(go())
