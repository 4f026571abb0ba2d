"""What the plugin serves to browsers: the attribute display and the agent page (issue 4)."""

from __future__ import annotations

from typing import Any


def routes() -> list[tuple[str, Any]]:
    """Routes for the browser-facing pages and their data."""
    return []
