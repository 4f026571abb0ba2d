"""The few kinds of error the plugin raises, each mapped once to an HTTP status.

Every error renders as ``{"error": <word>}`` plus, where it helps the caller,
``"detail"``.  A detail names *what* is wrong (a field, a kind of token
failure) and never echoes a token, a code, an attribute value or key
material: callers and logs see these strings.
"""

from __future__ import annotations

from http import HTTPStatus

#: Words that differ from Python's reason phrases (the reference's and RFC 9110's names).
_WORDS = {413: "PayloadTooLarge"}


def error_word(status: int) -> str:
    """The ``error`` word for an HTTP status: its reason phrase without spaces (``NotFound``)."""
    if status in _WORDS:
        return _WORDS[status]
    try:
        return HTTPStatus(status).phrase.replace(" ", "").replace("-", "")
    except ValueError:
        return "Error"


class PluginError(Exception):
    """Base of every error that reaches a caller as a JSON error body."""

    status: int = 500
    word: str = "InternalServerError"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or self.word)
        self.detail = detail

    def headers(self) -> dict[str, str]:
        """Extra response headers this error calls for."""
        return {}

    def body(self) -> dict[str, str]:
        """The JSON error body for this error."""
        out = {"error": self.word}
        if self.detail:
            out["detail"] = self.detail
        return out


class BadRequest(PluginError):
    """The request is malformed: bad JSON, a missing or mistyped field, a bad token."""

    status = 400
    word = "BadRequest"


class InvalidToken(BadRequest):
    """An auth-result token was refused.

    ``reason`` is a short machine-readable kind, one of ``tokens.REFUSAL_REASONS``
    (``expired``, ``bad_signature``, ``cannot_decrypt``, ``replayed``, ...); the
    detail is a human sentence.  Neither ever contains any part of the token.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"invalid auth_result token ({reason}): {detail}")
        self.reason = reason
        self.sentence = detail


class NotFound(PluginError):
    """No session matches (unknown code or contact id, or already used)."""

    status = 404
    word = "NotFound"

    def body(self) -> dict[str, str]:
        # The reference answers a bare {"error": "NotFound"}; so do we.
        return {"error": self.word}


class Unauthorized(PluginError):
    """A protected endpoint was called without a valid credential (bearer token, agent sign-in)."""

    status = 401
    word = "Unauthorized"

    def __init__(self, detail: str | None = None, *, challenge: str = 'Bearer realm="connect-plugin"',
                 login_url: str | None = None) -> None:
        super().__init__(detail)
        self.challenge = challenge
        self.login_url = login_url

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": self.challenge}

    def body(self) -> dict[str, str]:
        out = super().body()
        if self.login_url:
            out["login_url"] = self.login_url  # where an agent's browser signs in again
        return out


class Forbidden(PluginError):
    """A signed-in agent whom the access rules do not allow to see this data."""

    status = 403
    word = "Forbidden"


class PayloadTooLarge(PluginError):
    """The request body is over the configured limit."""

    status = 413
    word = "PayloadTooLarge"


class TooManyRequests(PluginError):
    """Too many failed attempts: refused until ``retry_after`` seconds have passed (``Retry-After``).

    Sent for every ``/link_phone`` once the link failure budget of the current
    window is spent, whatever code is tried (see ``budget.LinkBudget``).
    """

    status = 429
    word = "TooManyRequests"

    def __init__(self, retry_after: int) -> None:
        super().__init__()
        self.retry_after = max(1, retry_after)

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class UnsupportedMediaType(PluginError):
    """The body is not of a type this endpoint reads (a JSON endpoint without ``application/json``)."""

    status = 415
    word = "UnsupportedMediaType"


class UriTooLong(PluginError):
    """The request's path and query are longer than any address this plugin serves."""

    status = 414
    word = "URITooLong"


class MisdirectedRequest(PluginError):
    """The ``Host`` header names a host this plugin does not serve (a DNS-rebinding attempt, or a wrong name)."""

    status = 421
    word = "MisdirectedRequest"


class StoreUnavailable(PluginError):
    """The session store does not answer (database down, timed out).

    ``reason`` says why, for logs and the command line; it is never sent to a caller.
    """

    status = 503
    word = "StoreUnavailable"

    def __init__(self, detail: str | None = None, *, reason: str = "") -> None:
        super().__init__(detail)
        self.reason = reason


class CodesExhausted(PluginError):
    """No free DTMF code was found within the bounded number of attempts."""

    status = 503
    word = "CodesExhausted"


class CodeTaken(Exception):
    """Raised by a store when a new session's DTMF or result code is already in use.

    Not an HTTP error: the flow service catches it and retries with new codes.
    """


class TokenReused(Exception):
    """Raised by a store when a result's replay key was already accepted for a session.

    Not an HTTP error: the store has stored nothing, and the flow service
    answers ``400`` (``InvalidToken`` with reason ``replayed``).
    """


class ConfigError(Exception):
    """A setting is missing or invalid; the message names the key, never its value."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem
