"""The parameter values of the store's statements, named as ``statements.py`` names them."""

from __future__ import annotations

from typing import Any

from ..model import NewSession

#: The columns of a new session row (``session_values``), in the order ``INSERT_SESSION`` names them.
SESSION_COLUMNS = ("code_key", "result_key", "purpose", "auth_result", "feedback", "contact_id", "created_at",
                   "last_activity")


def params(**values: Any) -> dict[str, Any]:
    """Values for a statement's parameters: ``params(now=1.0)`` fills ``:p_now``."""
    return {f"p_{name}": value for name, value in values.items()}


def session_values(session: NewSession, now: float) -> dict[str, Any]:
    """The row of a new session."""
    result = session.result
    return {
        "code_key": session.code_key,
        "result_key": session.result_key,
        "purpose": session.purpose,
        "auth_result": result.jwe if result is not None else None,
        "feedback": result.feedback if result is not None else False,
        "contact_id": None,
        "created_at": now,
        "last_activity": now,
    }
