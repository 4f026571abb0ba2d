"""``agent_auth = "oidc"``: the plugin signs agents in itself with OpenID Connect.

The authorization code flow with PKCE (S256), ``state`` and ``nonce``:

1. ``GET /agent/login?next=<path>``: a fresh state, nonce and PKCE verifier go
   into a signed ten-minute login cookie; the browser goes to the provider.
2. ``GET /agent/callback?code=...&state=...``: the state must be the login
   cookie's; the code and verifier are exchanged for the ID token, which is
   checked (``provider.py``); the agent gets the signed sign-in cookie
   (``cookie.py``) and goes back to ``next``, a path on this server.
3. ``GET /agent/logout``: the cookie is cleared; when the provider advertises
   an ``end_session_endpoint`` the browser ends the provider's session there too.

``identify`` reads only the sign-in cookie (no network); ``may_view`` applies
the claim rules (``rules.py``).  Sign-ins, refusals and sign-outs are written to
the audit log, ``connect_plugin.audit``, naming the agent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import logging
import re
import secrets
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from tornado import web
from tornado.httputil import HTTPServerRequest

from ..config import Settings
from ..errors import BadRequest, Unauthorized
from ..handlers import BaseHandler
from ..model import Agent
from .cookie import SignedCookies
from .provider import OpenIdProvider, ProviderUnavailable, SignInRefused
from .rules import ClaimRules

log = logging.getLogger(__name__)
audit = logging.getLogger("connect_plugin.audit")

#: Where an agent lands after signing in when the sign-in did not start from a page.
DEFAULT_NEXT = "/amazon-connect-ui/"
#: Requests for data, not pages: after a sign-in the agent goes to ``DEFAULT_NEXT`` instead.
DATA_PATHS = ("/session_info/", "/session_events/")
MAX_NEXT = 2048
_SAFE_PATH = re.compile(r"^/(?![/\\])[\x21-\x5b\x5d-\x7e]*$")  # printable ASCII, no backslash, not "//"
_OAUTH_ERROR = re.compile(r"^[a-z_]{1,64}$")
CHALLENGE = 'Cookie realm="connect-plugin agents"'


def safe_next(value: str | None) -> str:
    """A ``next`` path that stays on this server; ``BadRequest`` for anything else.

    Only an absolute path: no scheme, no host, no ``//`` or ``/\\`` start (which
    browsers read as another host), no backslash, space or control character.
    """
    if not value:
        return DEFAULT_NEXT
    if len(value) > MAX_NEXT or not _SAFE_PATH.match(value) or urlsplit(value).netloc:
        raise BadRequest("next must be a path on this server, such as /attribute-ui/")
    return value


class OidcSignIn:
    """An ``AgentAuth`` that signs agents in at an OpenID provider and keeps the sign-in in a cookie."""

    mode = "oidc"

    def __init__(self, settings: Settings) -> None:
        assert settings.oidc_client_secret is not None  # the settings insist on both
        assert settings.agent_cookie_secret is not None
        public = urlsplit(settings.public_url)
        self.base_url = settings.public_url.rstrip("/")
        self.prefix = public.path.rstrip("/")
        self.rules = ClaimRules.from_settings(settings)
        self.lifetime = settings.agent_session_hours * 3600
        self.scope = " ".join(settings.oidc_scopes)
        self.cookies = SignedCookies(settings.agent_cookie_secret.reveal(), secure=public.scheme == "https",
                                     prefix=self.prefix, issuer=settings.oidc_issuer)
        self.provider = OpenIdProvider(settings.oidc_issuer, settings.oidc_client_id,
                                       settings.oidc_client_secret, leeway=settings.token_leeway)

    def __repr__(self) -> str:
        return f"OidcSignIn({self.provider!r})"

    @property
    def redirect_uri(self) -> str:
        """The callback URL to register at the provider."""
        return self.base_url + "/agent/callback"

    async def start(self) -> None:
        """Read the provider's metadata now if it answers; otherwise at the first sign-in."""
        try:
            await self.provider.metadata()
        except ProviderUnavailable:
            log.warning("agent sign-in: the OpenID provider is not reachable now; "
                        "the plugin tries again when an agent signs in")

    async def close(self) -> None:
        """Release the HTTP client."""
        self.provider.close()

    def routes(self) -> Sequence[tuple[str, Any, dict[str, Any]]]:
        """``/agent/login``, ``/agent/callback``, ``/agent/logout``."""
        return [(r"/agent/login", LoginHandler, {"auth": self}),
                (r"/agent/callback", CallbackHandler, {"auth": self}),
                (r"/agent/logout", LogoutHandler, {"auth": self})]

    async def identify(self, request: HTTPServerRequest) -> Agent | None:
        """The agent in this request's sign-in cookie, if it is valid."""
        morsel = request.cookies.get(self.cookies.session_name)
        return self.cookies.agent(morsel.value if morsel else None, self.lifetime)

    async def may_view(self, agent: Agent, contact_id: str | None) -> bool:
        """The claim rules decide; every allowed agent may see every call's data."""
        return self.rules.allows(agent)

    def login_url(self, request: HTTPServerRequest) -> str | None:
        """``/agent/login``, with ``next`` back to the page asked for (not to a data request)."""
        url = self.base_url + "/agent/login"
        if request.method in ("GET", "HEAD") and not request.path.startswith(DATA_PATHS):
            try:
                return f"{url}?next={quote(safe_next(request.uri), safe='')}"
            except BadRequest:
                pass
        return url

    # -- the flow, for the handlers below ------------------------------------------------------

    async def begin(self, handler: web.RequestHandler, next_path: str) -> str:
        """Start a sign-in: remember it in the login cookie; return the provider's authorization URL."""
        metadata = await self.provider.metadata()
        attempt = {"state": secrets.token_urlsafe(32), "nonce": secrets.token_urlsafe(32),
                   "verifier": secrets.token_urlsafe(64), "next": next_path}
        self.cookies.set_login(handler, attempt)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(attempt["verifier"].encode()).digest())
        query = urlencode({
            "response_type": "code", "client_id": self.provider.client_id, "redirect_uri": self.redirect_uri,
            "scope": self.scope, "state": attempt["state"], "nonce": attempt["nonce"],
            "code_challenge": challenge.decode("ascii").rstrip("="), "code_challenge_method": "S256",
        })
        endpoint = metadata.authorization_endpoint
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    async def finish(self, handler: web.RequestHandler) -> str:
        """Complete a sign-in from the provider's answer; set the sign-in cookie; return where to go."""
        morsel = handler.request.cookies.get(self.cookies.login_name)
        attempt = self.cookies.login(morsel.value if morsel else None)
        self.cookies.clear_login(handler)  # one use only
        if attempt is None:
            raise BadRequest("no sign-in was started in this browser in the last ten minutes: sign in again")
        state = handler.get_query_argument("state", "")
        if not hmac.compare_digest(state.encode(), str(attempt.get("state", "")).encode()):
            raise BadRequest("this answer is not for the sign-in started in this browser (state)")
        metadata = await self.provider.metadata()
        iss = handler.get_query_argument("iss", None)
        if (iss is not None or metadata.iss_in_response) and iss != metadata.issuer:
            raise BadRequest("this answer comes from another identity provider (iss)")
        error = handler.get_query_argument("error", None)
        if error is not None:
            reason = error if _OAUTH_ERROR.match(error) else "no reason given"
            raise Unauthorized(f"the identity provider did not sign the agent in ({reason})", challenge=CHALLENGE,
                               login_url=self.base_url + "/agent/login")
        code = handler.get_query_argument("code", "")
        if not code:
            raise BadRequest("the identity provider's answer holds no code")
        id_token = await self.provider.redeem(code, str(attempt["verifier"]), self.redirect_uri)
        agent = self.rules.agent(await self.provider.verify(id_token, str(attempt["nonce"])))
        if agent is None:
            raise SignInRefused("the ID token names no usable subject (sub)")
        self.cookies.set_session(handler, agent, self.lifetime)
        allowed = "may" if self.rules.allows(agent) else "may not"
        audit.info("agent %s signed in (%s see citizens' data)", agent.audit_name, allowed)
        return self.prefix + safe_next(str(attempt.get("next", "")))

    async def end(self, handler: web.RequestHandler) -> str | None:
        """Sign the browser out; return the provider's end-session URL when it has one."""
        agent = await self.identify(handler.request)
        self.cookies.clear_session(handler)
        if agent is not None:
            audit.info("agent %s signed out", agent.audit_name)
        try:
            metadata = await self.provider.metadata()
        except ProviderUnavailable:
            return None
        if metadata.end_session_endpoint is None:
            return None
        endpoint = metadata.end_session_endpoint
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode({'client_id': self.provider.client_id})}"


class SignInHandler(BaseHandler):
    """What the sign-in routes share: the sign-in part, and quiet logging of a provider outage."""

    def initialize(self, auth: OidcSignIn) -> None:
        self.auth = auth

    def log_exception(self, typ: Any, value: BaseException | None, tb: Any) -> None:
        if isinstance(value, ProviderUnavailable):
            log.warning("%s %s: %s", self.request.method, self.request.path, value.detail)
            return
        super().log_exception(typ, value, tb)


class LoginHandler(SignInHandler):
    """``GET /agent/login?next=<path>``: off to the identity provider."""

    async def get(self) -> None:
        next_path = safe_next(self.get_query_argument("next", None))
        self.redirect(await self.auth.begin(self, next_path))


class CallbackHandler(SignInHandler):
    """``GET /agent/callback``: the identity provider's answer."""

    async def get(self) -> None:
        self.redirect(await self.auth.finish(self))


class LogoutHandler(SignInHandler):
    """``GET`` or ``POST /agent/logout``: sign out here, then at the provider if it offers that."""

    async def get(self) -> None:
        provider_logout = await self.auth.end(self)
        if provider_logout is not None:
            self.redirect(provider_logout)
            return
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Content-Security-Policy", "default-src 'none'; base-uri 'none'; form-action 'none'")
        login = html.escape(self.auth.base_url + "/agent/login", quote=True)
        self.finish('<!doctype html>\n<html lang="en"><meta charset="utf-8"><title>Signed out</title>\n'
                    f'<p>You are signed out. <a href="{login}">Sign in again</a></p></html>\n')

    post = get
