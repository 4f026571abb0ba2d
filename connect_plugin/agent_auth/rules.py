"""Who an identity provider's claims make an agent, and which agents may see citizens' data.

Both sign-in modes that trust an identity provider (``oidc``: the ID token;
``alb``: the load balancer's signed claims) turn claims into an
:class:`~connect_plugin.model.Agent` here and apply the same rules:

* ``oidc_allowed_groups``: the groups claim (``oidc_groups_claim``) holds any of them;
* ``oidc_allowed_domains``: the e-mail address is in one of them (an address
  the provider marks unverified is no address);
* with both, both must hold; with neither, ``oidc_allow_any_agent`` must be
  set (the settings refuse to start otherwise).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..config import Settings
from ..model import Agent

MAX_SUBJECT = 255
MAX_EMAIL = 254
MAX_NAME = 256
MAX_GROUPS = 1000  # Entra ID sends at most 200 before switching to an "overage" reference


@dataclass(frozen=True)
class ClaimRules:
    """The access rules from the settings, and the claims they read."""

    groups_claim: str = "groups"
    allowed_groups: frozenset[str] = frozenset()
    allowed_domains: frozenset[str] = frozenset()
    allow_any: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> ClaimRules:
        """The rules as configured (``oidc_groups_claim``, ``oidc_allowed_*``, ``oidc_allow_any_agent``)."""
        return cls(settings.oidc_groups_claim, frozenset(settings.oidc_allowed_groups),
                   frozenset(settings.oidc_allowed_domains), settings.oidc_allow_any_agent)

    def agent(self, claims: Mapping[str, Any]) -> Agent | None:
        """The agent these (verified) claims describe; ``None`` without a usable ``sub``.

        Only the groups the rules look at are kept: an agent in hundreds of
        groups carries just the few that matter (the sign-in cookie stays small).
        """
        subject = claims.get("sub")
        if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT:
            return None
        return Agent(subject=subject, email=verified_email(claims), name=_short(claims.get("name"), MAX_NAME),
                     groups=self.relevant_groups(group_claim(claims.get(self.groups_claim))))

    def relevant_groups(self, groups: Iterable[str]) -> tuple[str, ...]:
        """The groups among ``groups`` that a rule names, in order, once each."""
        return tuple(g for g in dict.fromkeys(groups) if g in self.allowed_groups)

    def allows(self, agent: Agent) -> bool:
        """Whether this agent may see citizens' data."""
        if agent.anonymous:
            return False
        if not self.allowed_groups and not self.allowed_domains:
            return self.allow_any
        if self.allowed_groups and not self.allowed_groups.intersection(agent.groups):
            return False
        return not self.allowed_domains or email_domain(agent.email) in self.allowed_domains


def verified_email(claims: Mapping[str, Any]) -> str | None:
    """The ``email`` claim, unless the provider says it is unverified (``email_verified`` false)."""
    email = _short(claims.get("email"), MAX_EMAIL)
    verified = claims.get("email_verified", True)
    if isinstance(verified, str):  # the load balancer passes the provider's userinfo on, sometimes as text
        verified = verified.strip().lower() != "false"
    if email is None or verified is False or email.count("@") != 1:
        return None
    return email


def email_domain(email: str | None) -> str | None:
    """The lower-cased domain of an e-mail address."""
    if not email or "@" not in email:
        return None
    return email.rsplit("@", 1)[1].lower()


def group_claim(value: Any) -> list[str]:
    """The groups in a groups claim: a list of strings, or one string."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [g for g in value[:MAX_GROUPS] if isinstance(g, str)]
    return []


def _short(value: Any, limit: int) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= limit else None
