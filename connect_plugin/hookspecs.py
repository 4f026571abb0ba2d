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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import pluggy

if TYPE_CHECKING:
    from tornado.httputil import HTTPServerRequest

    from .config import Settings
    from .model import Agent, NewSession, StoredSession

PROJECT = "connect_plugin"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@runtime_checkable
class SessionStore(Protocol):
    """Where sessions live.  Every method may raise ``StoreUnavailable``.

    Guarantees a store must give (the flow relies on them; several plugin
    instances may share one store):

    * ``create``: DTMF codes are unique among stored sessions, result keys
      are unique; on a clash raise ``CodeTaken`` and store nothing.
    * ``store_result``: at most one result per session, ever; the check and
      the write are one atomic step.
    * ``link``: a code is linked to at most one contact id and a contact id to
      at most one session, atomically; linking again with the same pair is a
      no-op success.
    * every successful create, store_result and link records activity (``now``).
    """

    async def open(self) -> None:
        """Connect; make sure the schema is usable (may raise ``ConfigError``)."""

    async def close(self) -> None:
        """Release connections; called once on shutdown."""

    async def ping(self) -> None:
        """Return when the store answers; raise ``StoreUnavailable`` otherwise."""

    async def create(self, session: NewSession, now: float) -> None:
        """Store a new session (with its result, when it came inline)."""

    async def store_result(self, result_key: str, auth_result: str, now: float) -> str | None:
        """Attach a result to the session with this result key, if it has none.

        Returns the session's linked contact id (``None`` when not linked yet);
        raises ``NotFound`` when there is no such session or it already has a result.
        """

    async def link(self, dtmf: str, contact_id: str, now: float) -> None:
        """Link a call to the session with this DTMF code; raise ``NotFound`` if impossible."""

    async def find_by_contact(self, contact_id: str) -> StoredSession | None:
        """The session linked to this contact id, if any."""

    async def delete_idle(self, before: float) -> int:
        """Delete sessions whose last activity is before ``before``; return how many."""


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
    """Provide the session store (built-in: SQLAlchemy on SQLite or PostgreSQL)."""


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
