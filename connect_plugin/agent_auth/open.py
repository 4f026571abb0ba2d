"""``agent_auth = "none"``: whoever reaches the server is treated as an agent.

This is the reference's behaviour.  The settings allow it silently only on a
loopback address, and warn at every start when a deployer chose it on purpose.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tornado.httputil import HTTPServerRequest

from ..model import ANONYMOUS, Agent


class OpenAccess:
    """An ``AgentAuth`` that lets every request through as the anonymous agent."""

    mode = "none"

    async def start(self) -> None:
        """Nothing to prepare."""

    async def close(self) -> None:
        """Nothing to release."""

    def routes(self) -> Sequence[tuple[str, Any, dict[str, Any]]]:
        """No sign-in pages."""
        return ()

    async def identify(self, request: HTTPServerRequest) -> Agent | None:
        """Everyone is the anonymous agent."""
        return ANONYMOUS

    async def may_view(self, agent: Agent, contact_id: str | None) -> bool:
        """Everything is visible."""
        return True

    def login_url(self, request: HTTPServerRequest) -> str | None:
        """There is nowhere to sign in."""
        return None

    def __repr__(self) -> str:
        return "OpenAccess()"
