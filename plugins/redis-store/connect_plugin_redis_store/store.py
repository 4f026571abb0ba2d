"""The session store over Redis: every guarantee of the contract is one Lua script (``scripts.py``).

Sessions expire by themselves: every write sets their keys to expire at
``now + session_ttl`` (``PEXPIREAT``), so ``delete_idle`` and
``delete_expired`` have nothing to do; spent replay keys expire when their
token would be refused anyway, failure counts when their window has ended
(plus a minute, for instances whose clocks differ).

What Redis holds is what the SQL store holds: the code key (never the code),
the result key (never the result code), the purpose, the contact id and the
result as the JWE received.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

from redis import exceptions as rx
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from connect_plugin.api import (
    CodeTaken,
    FailureWindow,
    NewResult,
    NewSession,
    NotFound,
    StoredSession,
    StoreUnavailable,
    TokenReused,
)

from . import scripts

log = logging.getLogger(__name__)

#: Failure counts are kept this long after their window ends: an instance whose clock lags still sees them.
WINDOW_GRACE = 60.0
#: Server replies that mean "not now" (loading, read-only replica, out of memory, persistence failing).
_UNAVAILABLE_REPLIES = ("LOADING", "READONLY", "OOM", "MISCONF", "MASTERDOWN", "TRYAGAIN", "BUSY", "NOREPLICAS")


def make_client(url: str, *, timeout: float, connections: int) -> Redis:
    """A client for ``url`` whose every wait (connect, reply, free connection) is bounded by ``timeout``.

    No retries: a command that failed may have run, and the store's writes
    are not all idempotent.  A pooled connection that the server closed is
    replaced when it is next taken from the pool.
    """
    pool = BlockingConnectionPool.from_url(
        url, max_connections=connections, timeout=timeout, socket_timeout=timeout,
        socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0), decode_responses=True,
    )
    return Redis(connection_pool=pool)


def unavailable(error: BaseException) -> bool:
    """Whether ``error`` means the server is away or refuses work for now (not a bug of ours)."""
    if isinstance(error, rx.ConnectionError | rx.TimeoutError | OSError | TimeoutError):
        return True
    return isinstance(error, rx.ResponseError) and str(error).startswith(_UNAVAILABLE_REPLIES)


def epoch_ms(seconds: float) -> int:
    """Epoch seconds as the whole milliseconds ``PXAT``/``PEXPIREAT`` take (at least 1: 0 is refused)."""
    return max(1, math.ceil(seconds * 1000))


@dataclass(frozen=True)
class Keys:
    """The names of one deployment's keys: everything starts with its prefix."""

    prefix: str

    def session(self, result_key: str) -> str:
        return f"{self.prefix}session:{result_key}"

    def code(self, code_key: str) -> str:
        return f"{self.prefix}code:{code_key}"

    def contact(self, contact_id: str) -> str:
        return f"{self.prefix}contact:{contact_id}"

    def token(self, replay_key: str) -> str:
        return f"{self.prefix}token:{replay_key}"

    def failures(self, window_end: int) -> str:
        return f"{self.prefix}failures:{window_end}"


class RedisStore:
    """A ``SessionStore`` on one Redis server, shared by any number of plugin instances."""

    def __init__(self, url: str, *, prefix: str, session_ttl: float, pool_size: int = 5,
                 timeout: float = 1.0) -> None:
        self.url = url
        self.keys = Keys(prefix)
        self.session_ttl = session_ttl
        self.timeout = timeout
        self._pool_size = pool_size
        self._client: Redis | None = None
        self._scripts: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"RedisStore(prefix={self.keys.prefix!r})"  # the URL may hold a password

    # -- life cycle ----------------------------------------------------------------

    async def open(self) -> None:
        """Make the client and its scripts; start even when Redis does not answer yet (503 until it does)."""
        self._client = make_client(self.url, timeout=self.timeout, connections=self._pool_size)
        for name in ("CREATE", "STORE_RESULT", "LINK", "COUNT_FAILURE", "FIND_BY_CONTACT"):
            self._scripts[name] = self._client.register_script(getattr(scripts, name))
        try:
            await self.ping()
        except StoreUnavailable:
            log.warning("session store unreachable at start-up; serving 503 until it answers")

    async def close(self) -> None:
        """Close the client's connections."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def ping(self) -> None:
        """``PING``; ``StoreUnavailable`` when Redis does not answer."""
        await self._run(self._redis().ping())

    # -- the contract ----------------------------------------------------------------

    async def create(self, session: NewSession, now: float) -> None:
        """Store a session (and its inline result) unless a code is taken or its token was spent."""
        keys = [self.keys.session(session.result_key), self.keys.code(session.code_key)]
        args: list[Any] = [session.result_key, session.code_key, session.purpose, now, self._expiry(now)]
        if session.result is not None:
            result = session.result
            keys.append(self.keys.token(result.replay_key))
            args += [result.jwe, int(result.feedback), epoch_ms(result.replay_expires)]
        outcome = await self._script("CREATE", keys, args)
        if outcome == "taken":
            raise CodeTaken()
        if outcome == "reused":
            raise TokenReused()

    async def awaits_result(self, result_key: str) -> bool:
        """Whether the session exists and has no result (one ``HMGET``)."""
        purpose, result = await self._run(self._redis().hmget(self.keys.session(result_key), ["purpose", "result"]))
        return purpose is not None and result is None

    async def store_result(self, result_key: str, result: NewResult, now: float) -> str | None:
        """Set the result where none is set, and spend its replay key, in one script."""
        keys = [self.keys.session(result_key), self.keys.token(result.replay_key)]
        args = [self.keys.prefix, result.jwe, int(result.feedback), now, self._expiry(now),
                epoch_ms(result.replay_expires)]
        outcome = await self._script("STORE_RESULT", keys, args)
        if outcome[0] == "reused":
            raise TokenReused()
        if outcome[0] != "ok":
            raise NotFound()
        return outcome[1] if len(outcome) > 1 else None

    async def link(self, code_key: str, contact_id: str, now: float, window: FailureWindow) -> str | None:
        """Link the code's session to the contact, unless either is taken or the window's budget is spent."""
        keys = [self.keys.code(code_key), self.keys.contact(contact_id), self.keys.failures(window.ends)]
        args = [self.keys.prefix, contact_id, now, self._expiry(now), window.budget]
        outcome = await self._script("LINK", keys, args)
        if outcome[0] != "ok":
            raise NotFound()
        return outcome[1] if len(outcome) > 1 else None

    async def count_link_failure(self, window_end: int) -> int:
        """``INCR`` the window's count, kept until the window has ended."""
        expire = epoch_ms(window_end + WINDOW_GRACE)
        return int(await self._script("COUNT_FAILURE", [self.keys.failures(window_end)], [expire]))

    async def find_by_contact(self, contact_id: str) -> StoredSession | None:
        """The session linked to the contact, read in one script."""
        found = await self._script("FIND_BY_CONTACT", [self.keys.contact(contact_id)],
                                   [self.keys.prefix, contact_id])
        if not found:
            return None
        purpose, jwe, feedback = [*found, None, None][:3]
        return StoredSession(purpose=purpose, auth_result=jwe, feedback=feedback == "1")

    async def expires_at(self, result_key: str) -> float | None:
        """When the session with this result key will expire (epoch seconds), ``None`` if there is none."""
        milliseconds = await self._run(self._redis().pexpiretime(self.keys.session(result_key)))
        return None if milliseconds < 0 else milliseconds / 1000

    async def delete_idle(self, before: float, limit: int) -> int:
        """Nothing to do: idle sessions expire by themselves (their keys' TTL)."""
        return 0

    async def delete_expired(self, now: float, limit: int) -> int:
        """Nothing to do: replay keys and failure counts expire by themselves."""
        return 0

    # -- plumbing ----------------------------------------------------------------------

    def _expiry(self, now: float) -> int:
        return epoch_ms(now + self.session_ttl)

    def _redis(self) -> Redis:
        if self._client is None:
            raise RuntimeError("store not opened")
        return self._client

    async def _script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        self._redis()
        return await self._run(self._scripts[name](keys=keys, args=args))

    async def _run(self, command: Any) -> Any:
        """Await one command; a server that is away or refuses work is ``StoreUnavailable``."""
        try:
            return await command
        except Exception as error:
            if not unavailable(error):
                raise
            log.warning("session store error: %s", type(error).__name__)
            raise StoreUnavailable("the session store does not answer", reason=_reason(error)) from None


def _reason(error: BaseException) -> str:
    """One line on why (for logs and the command line): the kind of failure, and Redis's reply word."""
    if isinstance(error, rx.ResponseError):
        return f"{type(error).__name__}: {str(error).split(' ', 1)[0]}"
    return type(error).__name__
