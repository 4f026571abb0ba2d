"""The call flow: start a session, take its result, link the call, answer the agent.

This is the one place that knows the order of things.  It knows no HTTP
(handlers call it) and no SQL (the store does that); tokens are read by
``tokens``.  Every method raises ``errors.PluginError`` subclasses for the
handlers to render.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from . import codes, tokens
from .config import Settings
from .errors import CodesExhausted, CodeTaken, NotFound, PluginError
from .feedback import LOGOUT, USER_ACTIVE, SessionFeedback
from .hookspecs import CodeGenerator, Notifier, SessionStore, Translator
from .model import Agent, AuthResult, NewSession, SessionInfo

log = logging.getLogger(__name__)
#: Who read which contact's verified attributes (agent sign-in only; never attribute values).
audit = logging.getLogger("connect_plugin.audit")

DTMF_ALPHABET = frozenset("0123456789")


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
    """The plugin's behaviour, independent of transport and storage."""

    def __init__(
        self,
        settings: Settings,
        store: SessionStore,
        code_generator: CodeGenerator,
        translator: Translator,
        notifier: Notifier,
        clock: Callable[[], float] = time.time,
        feedback: SessionFeedback | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.code_generator = code_generator
        self.translator = translator
        self.notifier = notifier
        self.clock = clock
        self.feedback = feedback

    async def start(self, purpose: str, auth_result: str | None = None) -> Started:
        """Create a session with a fresh DTMF code (and its result, when given inline).

        An inline result is verified before anything is stored, so a bad token
        leaves no session behind.
        """
        if auth_result is not None:
            self.read_token(auth_result)
        for _ in range(self.settings.code_attempts):
            dtmf = self._new_dtmf()
            result_code = codes.new_result_code(self.settings.result_length)
            session = NewSession(dtmf, codes.result_key(result_code), purpose, auth_result)
            try:
                await self.store.create(session, self.clock())
            except CodeTaken:
                continue
            client_url = f"tel:{self.settings.phonenumber},{dtmf}"
            if auth_result is not None:
                return Started(client_url, None)
            return Started(client_url, f"{self.settings.internal_url}/session_result/{result_code}")
        log.error("no free DTMF code after %d attempts: raise dtmf_length or lower session_ttl",
                  self.settings.code_attempts)
        raise CodesExhausted(f"no free DTMF code after {self.settings.code_attempts} attempts; try again later")

    async def report_result(self, result_code: str, token: str) -> None:
        """Verify a posted result and store it, once, with the session it belongs to."""
        result = self.read_token(token)
        contact_id = await self.store.store_result(codes.result_key(result_code), token, self.clock())
        if contact_id is not None:  # the call is on: the agent's display and the auth plugin hear of it
            await self.notifier.publish(contact_id)
            self._send_feedback(result, USER_ACTIVE)

    async def link_phone(self, dtmf: str, contact_id: str) -> None:
        """Link a call to the session whose code the caller typed (idempotent for retries)."""
        if not dtmf or not DTMF_ALPHABET.issuperset(dtmf):
            raise NotFound()
        await self.store.link(dtmf, contact_id, self.clock())
        await self.notifier.publish(contact_id)
        await self._feedback_for_contact(contact_id, USER_ACTIVE)

    async def end_call(self, contact_id: str) -> None:
        """The call ended: the citizen is done (session feedback ``logout``)."""
        info = await self.session_info(contact_id)
        if info.auth_result is not None:
            self._send_feedback(info.auth_result, LOGOUT)

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
            result = self.read_token(stored.auth_result, check_expiry=False)
        return SessionInfo(stored.purpose, result)

    async def cleanup(self) -> int:
        """Delete sessions idle for longer than ``session_ttl``; return how many."""
        deleted = await self.store.delete_idle(self.clock() - self.settings.session_ttl)
        if deleted:
            log.info("deleted %d idle session(s)", deleted)
        return deleted

    async def healthy(self) -> bool:
        """Whether the store answers."""
        try:
            await self.store.ping()
        except PluginError:
            return False
        return True

    def read_token(self, token: str, *, check_expiry: bool = True) -> AuthResult:
        """Decrypt and verify an auth-result token with the configured keys."""
        return tokens.read_auth_result(
            token,
            self.settings.decryption_key,
            self.settings.signature_key,
            tokens.TokenPolicy(leeway=self.settings.token_leeway),
            check_expiry=check_expiry,
            now=self.clock(),
        )

    async def _feedback_for_contact(self, contact_id: str, kind: str) -> None:
        """Session feedback for the result of a call's session, if it asked for feedback."""
        if self.feedback is None:
            return
        try:
            info = await self.session_info(contact_id)
        except PluginError as error:  # the call's own step succeeded; feedback is best effort
            log.warning("session feedback (%s) skipped: %s", kind, type(error).__name__)
            return
        if info.auth_result is not None:
            self._send_feedback(info.auth_result, kind)

    def _send_feedback(self, result: AuthResult, kind: str) -> None:
        if self.feedback is not None and result.session_url is not None:
            self.feedback.send(result.session_url, kind)

    def _new_dtmf(self) -> str:
        dtmf = self.code_generator.generate()
        if not dtmf or not DTMF_ALPHABET.issuperset(dtmf) or len(dtmf) > 64:
            raise PluginError("the DTMF code generator made an invalid code")
        return dtmf
