"""The sign-in cookies of ``agent_auth = "oidc"``: signed with ``agent_cookie_secret``, kept by the browser.

Nothing about a sign-in is kept in server memory: every instance that shares
the secret can read a cookie another instance wrote, so a sign-in made on one
instance is valid on all, and a provider's callback may land on any of them.

* The **sign-in cookie** says who the agent is: subject, e-mail address, the
  groups the access rules look at, the issuer, and when the sign-in ends
  (``agent_session_hours``).  Never a token from the provider.
* The **login cookie** carries one sign-in attempt's ``state``, ``nonce``, PKCE
  verifier and where to go afterwards, for ten minutes, to ``/agent/`` only.

Both are Tornado signed values (HMAC-SHA256 with a timestamp), HttpOnly,
SameSite=Lax and Secure unless the plugin is reached over plain http on a
loopback address; Secure cookies get the ``__Host-``/``__Secure-`` name
prefixes, which browsers only accept over https from this very host.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from tornado import web

from ..model import Agent

SESSION_NAME = "connect_plugin_agent"
LOGIN_NAME = "connect_plugin_login"
LOGIN_SECONDS = 600  # how long an agent may spend at the provider's sign-in page
FORMAT = 1  # the payload's layout; a cookie of another layout is no sign-in


@dataclass(frozen=True)
class SignedCookies:
    """Writes and reads this plugin's sign-in cookies."""

    secret: str = field(repr=False)
    #: Whether the cookies are sent over https only (false only for plain http on loopback).
    secure: bool
    #: The path of the plugin's public URL ("" when it is a host's root).
    prefix: str = ""
    #: Bound into every sign-in: a cookie from a plugin with another issuer is no sign-in here.
    issuer: str = ""

    @property
    def session_name(self) -> str:
        """The sign-in cookie's name."""
        return f"__Host-{SESSION_NAME}" if self.secure else SESSION_NAME

    @property
    def login_name(self) -> str:
        """The login cookie's name."""
        return f"__Secure-{LOGIN_NAME}" if self.secure else LOGIN_NAME

    # -- the sign-in --------------------------------------------------------------------------

    def session_value(self, agent: Agent, lifetime: float, now: float | None = None) -> str:
        """A sign-in cookie's value for ``agent``, valid for ``lifetime`` seconds from ``now``."""
        now = time.time() if now is None else now
        payload = {"v": FORMAT, "iss": self.issuer, "sub": agent.subject, "email": agent.email,
                   "groups": list(agent.groups), "exp": int(now + lifetime)}
        return self._seal(self.session_name, payload, now)

    def agent(self, value: str | None, max_lifetime: float, now: float | None = None) -> Agent | None:
        """The agent a sign-in cookie names, or ``None`` when it is missing, forged, foreign or expired."""
        now = time.time() if now is None else now
        payload = self._open(self.session_name, value, max_lifetime, now)
        if payload is None or payload.get("iss") != self.issuer or not _number(payload.get("exp")) > now:
            return None
        subject, email, groups = payload.get("sub"), payload.get("email"), payload.get("groups")
        if not isinstance(subject, str) or not subject or not isinstance(groups, list):
            return None
        return Agent(subject=subject, email=email if isinstance(email, str) else None,
                     groups=tuple(g for g in groups if isinstance(g, str)), expires_at=float(payload["exp"]))

    def set_session(self, handler: web.RequestHandler, agent: Agent, lifetime: float) -> None:
        """Sign the browser in as ``agent`` for ``lifetime`` seconds."""
        self._set(handler, self.session_name, self.session_value(agent, lifetime), "/", int(lifetime))

    def clear_session(self, handler: web.RequestHandler) -> None:
        """Sign the browser out."""
        self._set(handler, self.session_name, "", "/", 0)

    # -- one sign-in attempt ------------------------------------------------------------------

    def set_login(self, handler: web.RequestHandler, attempt: dict[str, str]) -> None:
        """Remember one sign-in attempt (state, nonce, verifier, next) in the browser for ten minutes."""
        value = self._seal(self.login_name, {"v": FORMAT, **attempt, "exp": int(time.time() + LOGIN_SECONDS)})
        self._set(handler, self.login_name, value, self.login_path, LOGIN_SECONDS)

    def login(self, value: str | None) -> dict[str, Any] | None:
        """The sign-in attempt in a login cookie, or ``None`` when missing, forged or older than ten minutes."""
        now = time.time()
        payload = self._open(self.login_name, value, LOGIN_SECONDS, now)
        if payload is None or not _number(payload.get("exp")) > now:
            return None
        return payload

    def clear_login(self, handler: web.RequestHandler) -> None:
        """Forget the sign-in attempt (it can be used once)."""
        self._set(handler, self.login_name, "", self.login_path, 0)

    @property
    def login_path(self) -> str:
        """Where the login cookie goes: the sign-in routes only."""
        return f"{self.prefix}/agent/"

    # -- the signing ----------------------------------------------------------------------------

    def _seal(self, name: str, payload: dict[str, Any], now: float | None = None) -> str:
        data = json.dumps(payload, separators=(",", ":"))
        clock = (lambda: now) if now is not None else None
        return web.create_signed_value(self.secret, name, data, version=2, clock=clock).decode("ascii")

    def _open(self, name: str, value: str | None, max_age: float, now: float) -> dict[str, Any] | None:
        if not value or len(value) > 4096:
            return None
        data = web.decode_signed_value(self.secret, name, value, max_age_days=max_age / 86400,
                                       clock=lambda: now, min_version=2)
        if data is None:
            return None
        try:
            payload = json.loads(data)
        except ValueError:
            return None
        return payload if isinstance(payload, dict) and payload.get("v") == FORMAT else None

    def _set(self, handler: web.RequestHandler, name: str, value: str, path: str, max_age: int) -> None:
        if max_age:
            handler.set_cookie(name, value, path=path, httponly=True, secure=self.secure, samesite="Lax",
                               max_age=max_age)
        else:  # an expiry in the past: the browser drops it (the same flags, or a __Host- cookie stays)
            handler.clear_cookie(name, path=path, httponly=True, secure=self.secure, samesite="Lax")


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0
