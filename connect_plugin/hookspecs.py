"""What a deployer may swap: one documented hook per part, and the interface it returns.

Each hook is ``firstresult``: plugins are asked newest-registered first, and
the first one that returns something other than ``None`` provides the part.
A plugin that only applies under some configuration returns ``None`` otherwise,
so installing it never changes a deployment that does not ask for it.  The
built-in parts (``connect_plugin.defaults``) answer last, through these same
hooks.

Every hook receives the validated :class:`~connect_plugin.config.Settings`; a
plugin's own settings live in ``settings.plugins[<name>]`` (the TOML table
``[global.plugins.<name>]``).

A plugin imports what it needs (``hookimpl``, these interfaces, the data
types, the errors) from ``connect_plugin.api``; a store plugin checks itself
against its contract with ``connect_plugin.testing.StoreContract``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pluggy

if TYPE_CHECKING:
    from tornado.httputil import HTTPServerRequest

    from .config import Settings
    from .model import Agent, FailureWindow, NewResult, NewSession, StoredSession

PROJECT = "connect_plugin"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@runtime_checkable
class SessionStore(Protocol):
    """Where sessions live.  Every method may raise ``StoreUnavailable``.

    A store never sees a code or an attribute in clear: the flow service hands
    it the keyed hash of the DTMF code (``code_key``), the SHA-256 of the
    result code (``result_key``) and the result as the JWE received.  It never
    decrypts.  ``now``, ``before`` and every expiry (``replay_expires``,
    ``window.ends``) are epoch seconds, as ``time.time()`` gives them: ``now``
    is the flow's clock, the real time, so a store may hand these to its
    backend as expiry times (a TTL).

    Guarantees a store must give (the flow relies on them; several plugin
    instances may share one store, so each must hold across them):

    * ``create``: code keys are unique among stored sessions, result keys are
      unique; on a clash raise ``CodeTaken`` and store nothing.
    * **one result per session**: ``store_result`` sets a result only where
      none is set, the check and the write one atomic step.
    * **one session per token**: a result's ``replay_key`` is accepted for one
      session only, until its ``replay_expires``: storing a result (by
      ``create`` or ``store_result``) records its key in the same atomic step,
      and a key already recorded raises ``TokenReused`` and stores nothing.
    * **atomic link**: ``link`` gives a code at most one contact id and a
      contact id at most one session; linking again with the same pair is a
      success.  It refuses (``NotFound``) while ``window.budget`` failures are
      counted for ``window.ends``: the failure budget and the link are read
      in the same atomic step, so the budget holds across instances.
    * ``count_link_failure`` adds one to a window's count and returns the new
      count, atomically: concurrent failures on any instance are all counted.
    * every successful create, store_result and link records activity (``now``):
      the session lives ``session_ttl`` seconds from its last activity.

    A store shared by several instances needs a notifier that crosses
    instances (``connect_plugin_notifier``), or live displays on one instance
    miss what was written through another.

    ``connect_plugin.testing.StoreContract`` checks each of these guarantees,
    under concurrency over two connections where it matters.
    """

    async def open(self) -> None:
        """Connect; make sure the schema is usable (may raise ``ConfigError``)."""

    async def close(self) -> None:
        """Release connections; called once on shutdown."""

    async def ping(self) -> None:
        """Return when the store answers; raise ``StoreUnavailable`` otherwise."""

    async def create(self, session: NewSession, now: float) -> None:
        """Store a new session, with its result when it came inline (``session.result``).

        Raises ``CodeTaken`` (the flow retries with new codes) or ``TokenReused``.
        """

    async def awaits_result(self, result_key: str) -> bool:
        """Whether a session with this result key exists and has no result yet.

        Asked before any decryption, so it must be cheap (one indexed read).
        """

    async def store_result(self, result_key: str, result: NewResult, now: float) -> str | None:
        """Attach a result to the session with this result key, if it has none.

        Returns the session's linked contact id (``None`` when not linked yet);
        raises ``NotFound`` when there is no such session or it already has a
        result, ``TokenReused`` when ``result.replay_key`` was accepted before.
        """

    async def link(self, code_key: str, contact_id: str, now: float, window: FailureWindow) -> str | None:
        """Link a call to the session with this code key; raise ``NotFound`` if impossible.

        Returns the session's stored JWE when its result asked for session
        feedback (``NewResult.feedback``), else ``None``: the flow decrypts
        only results it needs.
        """

    async def count_link_failure(self, window_end: int) -> int:
        """Count one failed link in the window that ends at ``window_end``; return the window's count."""

    async def find_by_contact(self, contact_id: str) -> StoredSession | None:
        """The session linked to this contact id, if any."""

    async def delete_idle(self, before: float, limit: int) -> int:
        """Delete at most ``limit`` sessions whose last activity is before ``before``; return how many.

        The flow calls again while a call returns ``limit``, letting other
        requests run in between: keep one call short.  A store whose
        sessions expire by themselves ``session_ttl`` after their last
        activity (a TTL that every write moves) returns 0.
        """

    async def delete_expired(self, now: float, limit: int) -> int:
        """Delete at most ``limit`` records that ended by ``now``: used replay keys, failure windows.

        Returns how many; called like ``delete_idle``.  A store whose records
        expire by themselves (a TTL) returns 0.
        """


@runtime_checkable
class CodeGenerator(Protocol):
    """Makes DTMF codes: strings of the digits a caller can type."""

    def generate(self) -> str:
        """A fresh code from a cryptographically secure source."""


@runtime_checkable
class Translator(Protocol):
    """Human labels for purpose tags and attribute keys, per locale."""

    def locales(self) -> Sequence[str]:
        """The locales this translator has labels for."""

    def labels(self, locale: str) -> Mapping[str, str]:
        """Tag -> label for one locale (purposes and attribute keys alike)."""


@runtime_checkable
class Notifier(Protocol):
    """Tells waiting attribute displays that a call's session changed.

    ``publish`` may be called on one plugin instance and ``wait`` on another:
    a notifier for several instances carries the event between them.
    """

    async def start(self) -> None:
        """Begin delivering events (connect, subscribe)."""

    async def close(self) -> None:
        """Stop delivering events."""

    async def publish(self, contact_id: str) -> None:
        """Announce that the session linked to ``contact_id`` changed."""

    def listen(self, contact_id: str) -> Subscription:
        """Start listening for changes to one contact's session."""


class Subscription(Protocol):
    """One listener's interest in one contact id; close it when done."""

    async def wait(self, timeout: float) -> bool:
        """Wait for a change; True if one happened, False on timeout."""

    def close(self) -> None:
        """Stop listening."""


@runtime_checkable
class AgentAuth(Protocol):
    """Agent sign-in: who the agent behind a browser request is, and whether they may see a call's data.

    It guards the routes that show citizens' data: ``/session_info/<id>``,
    ``/session_events/<id>`` and the agent's pages.  Several plugin instances may
    serve one agent behind a load balancer: a sign-in made on one instance must
    be valid on every other (keep sign-in state in the browser, signed with a
    secret the instances share, or in a shared store), never in process memory alone.
    """

    async def start(self) -> None:
        """Prepare (e.g. fetch the identity provider's metadata); may be retried lazily later."""

    async def close(self) -> None:
        """Release what ``start`` opened."""

    def routes(self) -> Sequence[tuple[str, Any, dict[str, Any]]]:
        """Extra Tornado routes this part serves (sign-in, callback, sign-out); may be empty."""

    async def identify(self, request: HTTPServerRequest) -> Agent | None:
        """The agent signed in on this request, or ``None`` without a valid sign-in.

        A missing, forged, expired or foreign credential is ``None``, never an exception.
        """

    async def may_view(self, agent: Agent, contact_id: str | None) -> bool:
        """Whether ``agent`` may see the session of ``contact_id`` (``None``: the agent's pages)."""

    def login_url(self, request: HTTPServerRequest) -> str | None:
        """Where a browser without a sign-in goes to sign in (back to this request after), or ``None``."""


@hookspec(firstresult=True)
def connect_plugin_session_store(settings: Settings) -> SessionStore | None:
    """Provide the session store (built-in: SQLAlchemy on SQLite or PostgreSQL).

    A store that several instances share comes with a notifier that crosses
    them: answer ``connect_plugin_notifier`` for the same settings.
    """


@hookspec(firstresult=True)
def connect_plugin_code_generator(settings: Settings) -> CodeGenerator | None:
    """Provide the DTMF code generator (built-in: ``dtmf_length`` random digits)."""


@hookspec(firstresult=True)
def connect_plugin_translator(settings: Settings) -> Translator | None:
    """Provide the purpose/attribute label translator (built-in: ``[translations.<locale>]``)."""


@hookspec(firstresult=True)
def connect_plugin_notifier(settings: Settings) -> Notifier | None:
    """Provide the change notifier for live displays (built-in: in-process; PostgreSQL LISTEN/NOTIFY)."""


@hookspec(firstresult=True)
def connect_plugin_agent_auth(settings: Settings) -> AgentAuth | None:
    """Provide agent sign-in for the mode in ``settings.agent_auth`` (built-in: ``none``, ``oidc``, ``alb``).

    Return ``None`` for a mode this plugin does not handle; a mode no plugin
    handles stops start-up with a configuration error.
    """
