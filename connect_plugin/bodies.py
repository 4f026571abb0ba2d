"""Reading request bodies defensively: the media type an endpoint accepts, and JSON that cannot hurt.

The JSON endpoints (``/start_communication``, ``/link_phone``, ``/end_call``)
read only ``Content-Type: application/json`` (UTF-8, the one charset JSON has):
anything else is ``415``, which also shuts out cross-site form posts from a
browser (a form can send ``text/plain`` or form types, never JSON, without a
CORS preflight this server does not grant).  The result endpoint reads the
token as the ecosystem posts it (see :data:`TOKEN_MEDIA_TYPES`).

Hostile JSON is a ``400`` with a clear detail, never a ``500``: bytes that are
not UTF-8, nesting deeper than :data:`MAX_DEPTH`, duplicate keys, ``NaN`` and
``Infinity``, numbers too large to be meant, lone UTF-16 surrogates.
"""

from __future__ import annotations

import json
from typing import Any

from .errors import BadRequest, UnsupportedMediaType

MAX_DEPTH = 32  # the protocol's bodies are flat objects
MAX_NUMBER_DIGITS = 1000  # far beyond any number meant here; well inside what int() parses quickly

#: Media types the result endpoint accepts, besides none at all: the ecosystem's
#: ``application/jwt`` (the core and every authentication plugin send it), the
#: JOSE type of RFC 7515, and what generic clients send for a bare string.  Form
#: types are refused (the reference took any type, but a form is never a token:
#: ``curl -d`` users are told to send ``application/jwt``).
TOKEN_MEDIA_TYPES = frozenset({"application/jwt", "application/jose", "text/plain", "application/octet-stream"})


class _Refused(ValueError):
    """A JSON document the parser could read but this plugin will not."""


def media_type(header: str | None) -> tuple[str, dict[str, str]]:
    """``("application/json", {"charset": "utf-8"})`` from a ``Content-Type`` header; ``("", {})`` for none."""
    kind, *params = (header or "").split(";")
    parsed = {}
    for param in params:
        name, _, value = param.partition("=")
        parsed[name.strip().lower()] = value.strip().strip('"')
    return kind.strip().lower(), parsed


def require_token_type(header: str | None) -> None:
    """``UnsupportedMediaType`` unless the result endpoint reads this ``Content-Type``."""
    kind, _ = media_type(header)
    if kind and kind not in TOKEN_MEDIA_TYPES:
        raise UnsupportedMediaType("send the token as its compact serialization, Content-Type: application/jwt")


def require_json_type(header: str | None) -> None:
    """``UnsupportedMediaType`` unless ``Content-Type`` is ``application/json`` (UTF-8, if a charset is named)."""
    kind, params = media_type(header)
    if kind != "application/json":
        raise UnsupportedMediaType("send the body as Content-Type: application/json")
    if params.get("charset", "utf-8").lower() not in ("utf-8", "utf8"):
        raise UnsupportedMediaType("JSON must be UTF-8")


def json_object(header: str | None, body: bytes) -> dict[str, Any]:
    """The body as a JSON object; ``UnsupportedMediaType`` or ``BadRequest`` saying what is wrong."""
    require_json_type(header)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("body is not valid JSON: it is not UTF-8") from None
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant,
                           parse_int=_integer, parse_float=_finite)
    except _Refused as error:
        raise BadRequest(f"body is not valid JSON: {error}") from None
    except RecursionError:
        raise BadRequest(f"body is not valid JSON: nested deeper than {MAX_DEPTH} levels") from None
    except ValueError:
        raise BadRequest("body is not valid JSON") from None
    _check_shape(value)
    if not isinstance(value, dict):
        raise BadRequest("body must be a JSON object")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise _Refused("an object has a duplicate key")
    return out


def _no_constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise _Refused(f"a number has more than {MAX_NUMBER_DIGITS} digits")
    return int(text)


def _finite(text: str) -> float:
    if len(text) > 2 * MAX_NUMBER_DIGITS:
        raise _Refused(f"a number has more than {MAX_NUMBER_DIGITS} digits")
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _Refused("a number is out of range")
    return value


def _check_shape(value: Any) -> None:
    """Refuse nesting deeper than ``MAX_DEPTH`` and strings that are no Unicode text (lone surrogates)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise BadRequest(f"body is not valid JSON: nested deeper than {MAX_DEPTH} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("body is not valid JSON: a string holds a lone UTF-16 surrogate") from None
