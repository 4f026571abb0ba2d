"""The call flow: start a session, take its result, link the call, answer the agent.

This is the one place that knows the order of things.  It knows no HTTP
(handlers call it) and no SQL (the store does that); tokens are read by
``tokens``, in a few threads so that the event loop keeps answering while
RSA works, with a bound on how many tokens may wait for them.  Every method
raises ``errors.PluginError`` subclasses for the handlers to render.

Codes reach the store only as keys (``codes.code_key``, ``codes.result_key``);
a result is stored as the JWE received, with its replay key (one session per
token) and whether it asked for session feedback, so that a link decrypts
nothing unless feedback needs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from . import codes, tokens
from .budget import WINDOW_SECONDS, LinkBudget
from .config import Settings
from .config.settings import usable_cpus
from .crypto_pool import CryptoPool, WorkerLost
from .display import DisplayWatch, display_labels
from .errors import CodesExhausted, CodeTaken, InvalidToken, NotFound, PluginError, TokenReused, TooManyRequests
from .feedback import LOGOUT, USER_ACTIVE, SessionFeedback
from .hookspecs import CodeGenerator, Notifier, SessionStore, Translator
from .metrics import Metrics
from .model import Agent, AuthResult, NewResult, NewSession, SessionInfo

log = logging.getLogger(__name__)
#: Who read which contact's verified attributes (agent sign-in only; never attribute values).
audit = logging.getLogger("connect_plugin.audit")

DTMF_ALPHABET = frozenset("0123456789")
#: Threads that check tokens on receipt (untrusted input): enough to use the cores, few enough to leave the
#: event loop one.  Stored results, read again for agents and feedback, have a thread of their own, so a flood
#: of junk tokens never queues in front of an agent's read.
CRYPTO_THREADS = max(1, min(4, usable_cpus() // 2))
#: Receipts that may wait for a crypto thread at once; beyond, a token is refused at once (429, Retry-After: 1)
#: without any decryption: a flood of tokens for a live code cannot pile up work the event loop must carry.
MAX_PENDING_RECEIPTS = 16
#: Most rows per delete while cleaning up: each statement is short, and other requests run in between.
CLEANUP_BATCH = 500
#: Fewest rows per delete: the batch shrinks towards this while a delete takes longer than ``CLEANUP_STEP``.
CLEANUP_MIN_BATCH = 50
#: Seconds one delete should take at most: a write that arrives meanwhile waits about this long.
CLEANUP_STEP = 0.010
#: Seconds of rest between two deletes while cleaning up: the database's other writers (and its disk) get a turn.
CLEANUP_PAUSE = 0.005

T = TypeVar("T")


@dataclass(frozen=True)
class Started:
    """The answer to ``start_communication``."""

    client_url: str
    attr_url: str | None

    def to_json(self) -> dict[str, str]:
        """The wire form; ``attr_url`` is left out when the result came inline."""
        out = {"client_url": self.client_url}
        if self.attr_url is not None:
            out["attr_url"] = self.attr_url
        return out


class FlowService:
    """The plugin's behaviour, independent of transport and storage.

    ``code_secret`` is the server's key for DTMF codes (``codes.code_secret_for``).
    ``clock`` gives the time everywhere (tests move it); ``budget_window`` is
    the length in seconds of a link failure window; ``metrics`` counts what
    happens (``metrics.Metrics``: nothing, unless ``metrics = true``).  The
    service owns its crypto threads: :meth:`close` shuts them down.
    """

    def __init__(
        self,
        settings: Settings,
        store: SessionStore,
        code_generator: CodeGenerator,
        translator: Translator,
        notifier: Notifier,
        *,
        code_secret: bytes,
        clock: Callable[[], float] = time.time,
        feedback: SessionFeedback | None = None,
        budget_window: int = WINDOW_SECONDS,
        metrics: Metrics | None = None,
        crypto: CryptoPool | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.store = store
        self.code_generator = code_generator
        self.translator = translator
        self.notifier = notifier
        self.clock = clock
        self.feedback = feedback
        self.budget = LinkBudget(settings.link_failure_budget, budget_window)
        self.policy = token_policy(settings)
        self._code_secret = code_secret
        self.crypto = crypto
        self._receipts = ThreadPoolExecutor(CRYPTO_THREADS, thread_name_prefix="connect-plugin-receipt")
        self._rereads = ThreadPoolExecutor(1, thread_name_prefix="connect-plugin-reread")
        self._pending_receipts = 0
        self._background: set[asyncio.Task[None]] = set()
        self._watches_end = False

    def __repr__(self) -> str:
        return f"FlowService(store={self.store!r})"

    async def start(self, purpose: str, auth_result: str | None = None) -> Started:
        """Create a session with a fresh DTMF code (and its result, when given inline).

        An inline result is verified before anything is stored, so a bad or
        replayed token leaves no session behind.
        """
        now = self.clock()
        inline = None
        if auth_result is not None:
            _, inline = await self._receive(auth_result, now)
        for _ in range(self.settings.code_attempts):
            dtmf = self._new_dtmf()
            result_code = codes.new_result_code(self.settings.result_length)
            session = NewSession(codes.code_key(self._code_secret, dtmf), codes.result_key(result_code),
                                 purpose, inline)
            try:
                await self.store.create(session, now)
            except CodeTaken:
                continue
            except TokenReused:
                self.metrics.token_refused("replayed")
                raise _replayed() from None
            self.metrics.session_started()
            if inline is not None:
                self.metrics.result_stored(inline=True)
            client_url = f"tel:{self.settings.phonenumber},{dtmf}"
            if auth_result is not None:
                return Started(client_url, None)
            return Started(client_url, f"{self.settings.internal_url}/session_result/{result_code}")
        log.error("no free DTMF code after %d attempts: raise dtmf_length or lower session_ttl",
                  self.settings.code_attempts)
        self.metrics.codes_exhausted()
        raise CodesExhausted(f"no free DTMF code after {self.settings.code_attempts} attempts; try again later")

    async def report_result(self, result_code: str, token: str) -> None:
        """Verify a posted result and store it, once, with the session it belongs to.

        The session is looked up first: an unknown code, or one whose result is
        already in, costs no decryption.  While ``MAX_PENDING_RECEIPTS`` tokens
        wait to be checked, a token is refused before even that (``TooManyRequests``).
        """
        self._receipt_room()
        key = codes.result_key(result_code)
        if not await self.store.awaits_result(key):
            raise NotFound()
        now = self.clock()
        result, stored = await self._receive(token, now)
        try:
            contact_id = await self.store.store_result(key, stored, now)
        except TokenReused:
            self.metrics.token_refused("replayed")
            raise _replayed() from None
        self.metrics.result_stored(inline=False)
        if contact_id is not None:  # the call is on: the agent's display and the auth plugin hear of it
            await self.notifier.publish(contact_id)
            self._send_feedback(result, USER_ACTIVE)

    async def link_phone(self, dtmf: str, contact_id: str) -> None:
        """Link a call to the session whose code the caller typed (idempotent for retries).

        Every failure counts against the link failure budget; once it is spent,
        every attempt is ``TooManyRequests`` until the window ends.
        """
        now = self.clock()
        try:
            window = self.budget.window_at(now)
        except TooManyRequests:
            self.metrics.too_many_requests("link_failure_budget")
            raise
        try:
            if not dtmf or len(dtmf) > 64 or not DTMF_ALPHABET.issuperset(dtmf):
                raise NotFound()
            feedback_jwe = await self.store.link(codes.code_key(self._code_secret, dtmf), contact_id, now, window)
        except NotFound:
            count = await self.store.count_link_failure(window.ends)
            self.metrics.link_failed(count, window.ends)
            try:
                self.budget.failed(window, count, now)
            except TooManyRequests:
                self.metrics.too_many_requests("link_failure_budget")
                raise
            raise
        self.metrics.link_made()
        await self.notifier.publish(contact_id)
        if feedback_jwe is not None:
            self._later(self._feedback_for(feedback_jwe, USER_ACTIVE))

    async def end_call(self, contact_id: str) -> None:
        """The call ended: the citizen is done (session feedback ``logout``)."""
        stored = await self.store.find_by_contact(contact_id)
        if stored is None:
            raise NotFound()
        if stored.feedback and stored.auth_result is not None:
            self._later(self._feedback_for(stored.auth_result, LOGOUT))

    async def session_info(self, contact_id: str, viewer: Agent | None = None) -> SessionInfo:
        """Purpose and verified result for a linked call; the token's expiry is not re-checked.

        ``viewer`` is the agent the result is shown to: every such read by a
        signed-in agent is written to the audit log (who read which contact).
        """
        stored = await self.store.find_by_contact(contact_id)
        if stored is None:
            raise NotFound()
        if viewer is not None and not viewer.anonymous and stored.auth_result is not None:
            # The one log line that names a contact: once agents sign in, the id alone opens nothing.
            audit.info("agent %s read the verified attributes of contact %s", viewer.audit_name, contact_id)
        result = None
        if stored.auth_result is not None:
            result = await self._reread(stored.auth_result)
        return SessionInfo(stored.purpose, result)

    def watch(self, contact_id: str, viewer: Agent, *, accept_language: str | None = None,
              until: asyncio.Event | None = None) -> DisplayWatch:
        """An agent's display following one call: ``async with`` it, then iterate it (``display.DisplayWatch``).

        Each read is a :meth:`session_info` by ``viewer`` (audited as such); the
        watch ends when ``until`` is set, when the plugin stops, or when the
        viewer's sign-in ends.
        """
        return DisplayWatch(
            contact_id, viewer, functools.partial(self.session_info, contact_id, viewer=viewer),
            notifier=self.notifier, translator=self.translator, metrics=self.metrics,
            accept_language=accept_language, default_locale=self.settings.default_locale,
            keepalive=float(self.settings.events_keepalive), stopping=lambda: self._watches_end, until=until,
        )

    def display_labels(self, accept_language: str | None) -> dict[str, Any]:
        """The display's labels for a browser's ``Accept-Language`` (the first thing a watch gives, too)."""
        return display_labels(self.translator, accept_language, self.settings.default_locale)

    def end_watches(self) -> None:
        """The plugin is stopping: every watch ends at its next wake (closing the notifier wakes them all)."""
        self._watches_end = True

    async def cleanup(self) -> int:
        """Delete sessions idle for longer than ``session_ttl`` and records that ended; return sessions deleted.

        In batches of ``CLEANUP_BATCH`` rows, letting other requests run between them.
        """
        now = self.clock()
        deleted = await _in_batches(self.store.delete_idle, now - self.settings.session_ttl)
        expired = await _in_batches(self.store.delete_expired, now)
        if deleted or expired:
            log.info("deleted %d idle session(s), %d expired record(s)", deleted, expired)
        self.metrics.cleanup_ran(deleted, expired)
        return deleted

    async def healthy(self) -> bool:
        """Whether the store answers."""
        try:
            await self.store.ping()
        except PluginError:
            return False
        return True

    async def close(self) -> None:
        """Let feedback decryptions under way finish, then stop the crypto threads."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=2.0)
        for pool in (self._receipts, self._rereads):
            stop = functools.partial(pool.shutdown, wait=True, cancel_futures=True)
            await asyncio.get_running_loop().run_in_executor(None, stop)

    # -- tokens, off the event loop --------------------------------------------------------

    async def _receive(self, token: str, now: float) -> tuple[AuthResult, NewResult]:
        """Verify a token on receipt: the result, and what the store keeps of it.

        ``TooManyRequests`` at once when ``MAX_PENDING_RECEIPTS`` are already waiting.
        """
        self._receipt_room()
        self._pending_receipts += 1
        try:
            verified = await self._read_verified(token, now)
        except InvalidToken as error:
            self.metrics.token_refused(error.reason)
            raise
        finally:
            self._pending_receipts -= 1
        stored = NewResult(jwe=token, replay_key=verified.replay_key,
                           replay_expires=verified.expires_at + self.policy.leeway,
                           feedback=verified.result.session_url is not None)
        return verified.result, stored

    async def _read_verified(self, token: str, now: float) -> tokens.VerifiedToken:
        """``tokens.read_verified``: in a crypto worker, else on a receipt thread."""
        return await self._read_token(lambda crypto: crypto.receive(token, now), self._receipts,
                                      tokens.read_verified, token, now=now)

    async def _reread(self, jwe: str) -> AuthResult:
        """A stored result, decrypted again (its time was checked when it arrived)."""
        return await self._read_token(lambda crypto: crypto.reread(jwe), self._rereads,
                                      tokens.read_auth_result, jwe, check_expiry=False)

    async def _read_token(self, in_worker: Callable[[CryptoPool], Awaitable[T]], threads: ThreadPoolExecutor,
                          read: Callable[..., T], token: str, **options: Any) -> T:
        """A token read in a crypto worker when one is ready; else, or if it is lost meanwhile, on ``threads``."""
        if self.crypto is not None and self.crypto.ready:
            with contextlib.suppress(WorkerLost):
                return await in_worker(self.crypto)
        return await self._off_loop(threads, read, token, self.settings.decryption_key, self.settings.signature_key,
                                    self.policy, **options)

    def _receipt_room(self) -> None:
        """``TooManyRequests`` while ``MAX_PENDING_RECEIPTS`` tokens wait for the receipt threads."""
        if self._pending_receipts >= MAX_PENDING_RECEIPTS:
            self.metrics.too_many_requests("receipt_queue")
            raise TooManyRequests(1)

    @staticmethod
    async def _off_loop(pool: ThreadPoolExecutor, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        call = functools.partial(func, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(pool, call)

    # -- session feedback -------------------------------------------------------------------

    async def _feedback_for(self, jwe: str, kind: str) -> None:
        try:
            result = await self._reread(jwe)
        except (InvalidToken, RuntimeError) as error:  # RuntimeError: the pool is shutting down
            log.warning("session feedback (%s) skipped: %s", kind, type(error).__name__)
            return
        self._send_feedback(result, kind)

    def _send_feedback(self, result: AuthResult, kind: str) -> None:
        if self.feedback is not None and result.session_url is not None:
            self.feedback.send(result.session_url, kind)

    def _later(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background: the caller on the line does not wait for feedback."""
        if self.feedback is None:
            work.close()
            return
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _new_dtmf(self) -> str:
        dtmf = self.code_generator.generate()
        if not dtmf or not DTMF_ALPHABET.issuperset(dtmf) or len(dtmf) > 64:
            raise PluginError("the DTMF code generator made an invalid code")
        return dtmf


def token_policy(settings: Settings) -> tokens.TokenPolicy:
    """What a token must satisfy on receipt, from the settings."""
    return tokens.TokenPolicy(leeway=settings.token_leeway, max_lifetime=settings.max_token_lifetime,
                              issuer=settings.expected_issuer, audience=settings.expected_audience)


def _replayed() -> InvalidToken:
    return InvalidToken("replayed", "this result was already accepted for a session")


async def _in_batches(delete: Callable[[float, int], Coroutine[Any, Any, int]], limit_time: float) -> int:
    """Call a store's bounded delete until it deletes less than a batch; how many in all.

    The batch is sized by time: at most ``CLEANUP_BATCH`` rows, fewer while a
    delete takes longer than ``CLEANUP_STEP`` (a large table, a slow disk), so
    that the requests queued behind one wait about that long.
    """
    total, size = 0, CLEANUP_BATCH
    while True:
        began = time.monotonic()
        deleted = await delete(limit_time, size)
        took = time.monotonic() - began
        total += deleted
        if deleted < size:
            return total
        if took > 0:
            size = max(CLEANUP_MIN_BATCH, min(CLEANUP_BATCH, int(size * CLEANUP_STEP / took)))
        await asyncio.sleep(CLEANUP_PAUSE)  # requests waiting for the database go first
