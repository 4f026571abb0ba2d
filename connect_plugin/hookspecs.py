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
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import pluggy

if TYPE_CHECKING:
    from .config import Settings
    from .model import NewSession, StoredSession

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
