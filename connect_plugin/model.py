"""Plain data passed between the flow service, the store and the token module."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The two statuses of an authentication result, in the ecosystem's spelling.
STATUS_SUCCESS = "succes"
STATUS_FAILED = "failed"


@dataclass(frozen=True)
class AuthResult:
    """A verified authentication result: what the agent is shown.

    ``attributes`` is ``None`` when the token carried none (a failed
    authentication); ``session_url`` is where the authentication plugin wants
    session feedback, if anywhere.  The repr hides attribute values, so a
    result that ends up in a log line or traceback leaks no personal data.
    """

    status: str
    attributes: dict[str, str] | None = None
    session_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The wire form used by ``/session_info`` (absent fields left out)."""
        out: dict[str, Any] = {"status": self.status}
        if self.attributes is not None:
            out["attributes"] = dict(self.attributes)
        if self.session_url is not None:
            out["session_url"] = self.session_url
        return out

    def __repr__(self) -> str:
        keys = sorted(self.attributes) if self.attributes is not None else None
        has_url = self.session_url is not None
        url = "<set>" if has_url else None
        return f"AuthResult(status={self.status!r}, attribute_keys={keys!r}, session_url={url})"


@dataclass(frozen=True)
class NewResult:
    """A verified result, as the flow service asks a store to keep it.

    ``jwe`` is the token exactly as received (stores never decrypt it).
    ``replay_key`` identifies the signed result inside (the hex SHA-256 of its
    JWS signing input): a store accepts it for one session only, and keeps it
    until ``replay_expires`` (epoch seconds: the token's ``exp`` plus the
    leeway), after which the token is refused as expired anyway.
    ``feedback`` says whether the result carries a ``session_url``, so that
    the flow knows whether session feedback needs the result decrypted again.
    """

    jwe: str = field(repr=False)
    replay_key: str
    replay_expires: float
    feedback: bool = False

    def __repr__(self) -> str:
        return f"NewResult(replay_expires={self.replay_expires!r}, feedback={self.feedback!r})"


@dataclass(frozen=True)
class NewSession:
    """What the flow service asks a store to create.

    ``code_key`` is the keyed hash of the DTMF code and ``result_key`` the
    SHA-256 of the result code (``codes.code_key``, ``codes.result_key``):
    stores never see either code.  ``result`` is set when the core sent the
    result inline with ``start_communication`` (already verified).
    """

    code_key: str
    result_key: str
    purpose: str
    result: NewResult | None = None

    def __repr__(self) -> str:
        return f"NewSession(purpose={self.purpose!r}, has_result={self.result is not None})"


@dataclass(frozen=True)
class StoredSession:
    """A session as read back from a store for the agent's display.

    ``auth_result`` is the stored JWE (never decrypted by the store);
    ``feedback`` is what was stored with it (``NewResult.feedback``).
    """

    purpose: str
    auth_result: str | None = field(default=None, repr=False)
    feedback: bool = False


@dataclass(frozen=True)
class FailureWindow:
    """The current window of the link failure budget, as the flow service passes it to a store.

    ``ends`` (whole epoch seconds) names the window; a store keeps its count
    of failed links until then.  ``budget`` is how many failures it allows.
    """

    ends: int
    budget: int


@dataclass(frozen=True)
class SessionInfo:
    """What ``/session_info`` answers for a linked call."""

    purpose: str
    auth_result: AuthResult | None

    def to_json(self) -> dict[str, Any]:
        """The wire form: ``{"purpose": ..., "auth_result": {...} | null}``."""
        return {
            "purpose": self.purpose,
            "auth_result": self.auth_result.to_json() if self.auth_result else None,
        }


@dataclass(frozen=True)
class Agent:
    """Who is behind a browser request, as the agent sign-in (``hookspecs.AgentAuth``) established it.

    ``subject`` is stable and unique per agent at the identity provider;
    ``email`` and ``groups`` are what access rules look at.  ``anonymous`` is
    true only with ``agent_auth = "none"``, where nobody signs in: such reads
    are not audited, since there is nobody to name.
    """

    subject: str
    email: str | None = None
    name: str | None = None
    groups: tuple[str, ...] = ()
    anonymous: bool = False
    #: When the sign-in ends (epoch seconds), if it says: a live display's stream ends then.
    expires_at: float | None = None

    @property
    def audit_name(self) -> str:
        """How the audit log names this agent: the e-mail address, else the subject."""
        return self.email or self.subject


#: The "agent" of every request when ``agent_auth = "none"``.
ANONYMOUS = Agent(subject="anonymous", anonymous=True)
