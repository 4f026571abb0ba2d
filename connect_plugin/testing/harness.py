"""What the store checks run on: two stores over one storage, fresh test data, and a runner.

:func:`run` opens two stores from a factory (two plugin instances; for a store
that lives in one process, the same object twice), hands them to a check as
a :class:`Stores`, and closes them.  Every time a check passes is the real
time give or take an hour, since a store may hand it to its backend as a
TTL; every key, token and contact id is random.
"""

from __future__ import annotations

import inspect
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from ..errors import CodeTaken, NotFound, TokenReused
from ..hookspecs import SessionStore
from ..model import FailureWindow, NewResult, NewSession, StoredSession

#: Makes a new, unopened store over the test's storage (may be async).
StoreFactory = Callable[[], SessionStore | Awaitable[SessionStore]]
#: When a store that expires sessions by itself will expire this one (epoch seconds), or ``None`` if it is gone.
ExpiryProbe = Callable[[SessionStore, NewSession], Awaitable[float | None]]
#: One check: an async function of the two stores.
Check = Callable[["Stores"], Coroutine[Any, Any, None]]

CONCURRENT = 20  # requests raced against each other in the concurrency checks
AHEAD = 3600.0  # seconds ahead of now for records that must not end during a check


@dataclass
class Stores:
    """What a check works with: stores ``a`` and ``b`` over one storage, the time, and fresh test data."""

    a: SessionStore
    b: SessionStore
    now: float
    expires_by_itself: bool = False
    expiry: ExpiryProbe | None = None

    def either(self, i: int) -> SessionStore:
        """``a`` for even ``i``, ``b`` for odd: spreads concurrent calls over both."""
        return self.b if i % 2 else self.a

    def session(self, result: NewResult | None = None, purpose: str = "report_move") -> NewSession:
        """A new session with random code and result keys (64 hex digits, as the flow makes them)."""
        return NewSession(secrets.token_hex(32), secrets.token_hex(32), purpose, result)

    def result(self, *, feedback: bool = False, replay_key: str | None = None) -> NewResult:
        """A result with a unique stand-in JWE and replay key, valid for an hour."""
        jwe = "eyJhbGciOiJSU0EtT0FFUC0yNTYifQ." + secrets.token_urlsafe(24)
        return NewResult(jwe, replay_key or secrets.token_hex(32), self.now + AHEAD, feedback)

    def window(self, budget: int = 1000, offset: int = 0) -> FailureWindow:
        """A failure window ending an hour (plus ``offset`` s) from now."""
        return FailureWindow(ends=int(self.now + AHEAD) + offset, budget=budget)

    @staticmethod
    def contact() -> str:
        """A new contact id, shaped like Amazon Connect's."""
        return str(uuid.uuid4())


async def outcome(call: Awaitable[Any]) -> str:
    """``"ok"``, or the name of the contract error the call raised (for counting race results)."""
    try:
        await call
    except (CodeTaken, NotFound, TokenReused) as error:
        return type(error).__name__
    return "ok"


async def linked(s: Stores, session: NewSession, contact: str | None = None) -> str:
    """Create ``session`` on ``a`` and link it to a (new) contact on ``b``; the contact id."""
    contact = contact or s.contact()
    await s.a.create(session, s.now)
    await s.b.link(session.code_key, contact, s.now, s.window())
    return contact


async def session_of(store: SessionStore, contact: str) -> StoredSession:
    """The session linked to ``contact``, which must be there."""
    stored = await store.find_by_contact(contact)
    assert stored is not None, "a linked contact must find its session"
    return stored


async def linked_existing(s: Stores, session: NewSession) -> str:
    """Link an existing session to a new contact; the contact id."""
    contact = s.contact()
    await s.b.link(session.code_key, contact, s.now, s.window())
    return contact


async def expiry_of(s: Stores, session: NewSession) -> float:
    """When a store that expires by itself will expire ``session``, which must be live."""
    assert s.expiry is not None, "a store that expires by itself must say when (session_expiry)"
    when = await s.expiry(s.a, session)
    assert when is not None, "a live session must have an expiry"
    return when


# -- running ------------------------------------------------------------------------------------------


async def make(factory: StoreFactory) -> SessionStore:
    """A store from the factory, which may be async."""
    store = factory()
    return await store if inspect.isawaitable(store) else store


async def run(check: Check, factory: StoreFactory, *,
              expires_by_itself: bool = False, expiry: ExpiryProbe | None = None) -> None:
    """Open two stores from ``factory``, run ``check`` on them, close them."""
    a, b = await make(factory), await make(factory)
    distinct = [a] if a is b else [a, b]
    for store in distinct:
        await store.open()
    try:
        await check(Stores(a, b, time.time(), expires_by_itself, expiry))
    finally:
        for store in distinct:
            await store.close()
