"""Value parsers for settings: each checks one raw value and returns what the plugin uses.

A parser is called as ``parse(value, ctx)``; it raises
:class:`~connect_plugin.errors.ConfigError` naming ``ctx.key`` and the problem,
never the value (values include private keys and tokens).  The factories here
(``integer(1, 10)``, ``choice(...)``) make parsers with their bounds, so that a
setting's declaration in ``settings.py`` says everything about it in one line.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .. import keys
from ..errors import ConfigError


@dataclass(frozen=True)
class Context:
    """What a parser may look at besides the value: its key, the config's folder, the other raw settings."""

    key: str
    base_dir: Path
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)  # holds keys and tokens
    #: The exact environment text, when the value came from a variable.
    env_text: str | None = field(default=None, repr=False)

    def fail(self, problem: str, key: str | None = None) -> ConfigError:
        """A ConfigError for this setting (or for ``key`` within it)."""
        return ConfigError(key or self.key, problem)


Parser = Callable[[Any, Context], Any]


class Secret(str):
    """A string whose repr never shows the value (tokens, passwords)."""

    def __repr__(self) -> str:
        return "Secret('***')"

    def reveal(self) -> str:
        """The value itself, for the one place that must use it."""
        return str.__str__(self)


#: What a deployer writes to leave a door open on purpose (``agent_auth``, ``link_phone_token``).
OPEN = "none"


def string(value: Any, ctx: Context) -> str:
    """Any string.  A value from the environment stays the text it was (``+3185...`` is no number)."""
    if not isinstance(value, str) and ctx.env_text is not None and not isinstance(value, dict | list):
        return ctx.env_text
    if not isinstance(value, str):
        raise ctx.fail("must be a string")
    return value


def optional_string(value: Any, ctx: Context) -> str | None:
    """A string, with ``""`` meaning not set."""
    text = string(value, ctx) if value is not None else ""
    return text or None


def integer(low: int, high: int) -> Parser:
    """A whole number between ``low`` and ``high`` (digits in a string are accepted)."""

    def parse(value: Any, ctx: Context) -> int:
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ctx.fail("must be a whole number")
        if not low <= value <= high:
            raise ctx.fail(f"must be between {low} and {high}")
        return value

    return parse


def number(low: float, high: float) -> Parser:
    """A number of seconds (or the like) between ``low`` and ``high``."""

    def parse(value: Any, ctx: Context) -> float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ctx.fail("must be a number") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ctx.fail("must be a number")
        if not low <= value <= high:
            raise ctx.fail(f"must be between {low:g} and {high:g}")
        return float(value)

    return parse


def boolean(value: Any, ctx: Context) -> bool:
    """``true`` or ``false``."""
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if not isinstance(value, bool):
        raise ctx.fail("must be true or false")
    return value


def choice(*choices: str) -> Parser:
    """One of ``choices`` (case-insensitive)."""

    def parse(value: Any, ctx: Context) -> str:
        text = string(value, ctx).strip().lower()
        if text not in choices:
            raise ctx.fail(f"must be one of {', '.join(choices)}")
        return text

    return parse


def url(value: Any, ctx: Context) -> str:
    """An absolute http(s) URL without a trailing slash; ``""`` when not set."""
    if value in (None, ""):
        return ""
    text = string(value, ctx)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ctx.fail("must be an http(s) URL")
    return text.rstrip("/")


def required_url(value: Any, ctx: Context) -> str:
    """Like :func:`url`, but must be set."""
    text = url(value, ctx)
    if not text:
        raise ctx.fail("missing")
    return text


def secret(min_length: int, *, allow_open: bool = False) -> Parser:
    """A secret string of at least ``min_length`` characters; ``"none"`` too when ``allow_open``."""

    def parse(value: Any, ctx: Context) -> Secret | str | None:
        if value in (None, ""):
            return None
        text = string(value, ctx)
        if allow_open and text.strip().lower() == OPEN:
            return OPEN
        if len(text) < min_length:
            raise ctx.fail(f"must be at least {min_length} characters")
        return Secret(text)

    return parse


def secret_or_file(min_length: int) -> Parser:
    """A secret given as a string, or as ``{file = "<path>"}`` (the file's text, surrounding blanks dropped)."""

    def parse(value: Any, ctx: Context) -> Secret | None:
        if value in (None, ""):
            return None
        if isinstance(value, dict):
            unknown = sorted(set(value) - {"file"})
            if unknown or not isinstance(value.get("file"), str) or not value["file"]:
                raise ctx.fail('must be a string, or a table {file = "<path>"}')
            path = resolve(value["file"], ctx.base_dir)
            try:
                text = path.read_text().strip()
            except OSError as exc:
                raise ctx.fail(f"cannot read {path}: {exc.strerror}", f"{ctx.key}.file") from None
            if len(text) < min_length:
                raise ctx.fail(f"{path} must hold at least {min_length} characters", f"{ctx.key}.file")
            return Secret(text)
        text = string(value, ctx)
        if len(text) < min_length:
            raise ctx.fail(f"must be at least {min_length} characters")
        return Secret(text)

    return parse


def locale(value: Any, ctx: Context) -> str:
    """A language tag such as ``nl`` or ``en-GB`` (lower-cased)."""
    if not isinstance(value, str) or not re.match(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$", value):
        raise ctx.fail("must be a language tag such as nl or en")
    return value.lower()


def string_list(check: Callable[[str], bool] | None = None, problem: str = "") -> Parser:
    """A list of strings (a comma-separated string too), each passing ``check``."""

    def parse(value: Any, ctx: Context) -> tuple[str, ...]:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ctx.fail("must be a list of strings")
        for item in value:
            if check is not None and not check(item):
                raise ctx.fail(problem)
        return tuple(value)

    return parse


def is_origin(text: str) -> bool:
    """True for ``scheme://host[:port]`` with an http(s) scheme."""
    parts = urlsplit(text)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and parts.path in ("", "/")


def origins(value: Any, ctx: Context) -> tuple[str, ...]:
    """Origins such as ``https://agents.example.nl``, without trailing slashes."""
    items = string_list(is_origin, "each must be an origin: scheme://host[:port]")(value, ctx)
    return tuple(v.rstrip("/") for v in items)


def table(value: Any, ctx: Context) -> dict[str, Any]:
    """A TOML table, kept as it is (plugins read their own)."""
    if not isinstance(value, dict):
        raise ctx.fail("must be a table")
    return value


def translations(value: Any, ctx: Context) -> dict[str, dict[str, str]]:
    """``[translations.<locale>]`` tables of tag = label."""
    if not isinstance(value, dict):
        raise ctx.fail("must be a table of [translations.<locale>] tables")
    out: dict[str, dict[str, str]] = {}
    for tag, labels in value.items():
        name = f"{ctx.key}.{tag}"
        locale(tag, Context(name, ctx.base_dir))
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise ctx.fail("must map tags to label strings", name)
        out[tag.lower()] = dict(labels)
    return out


def directory(value: Any, ctx: Context) -> str:
    """An existing folder (relative to the config file's), as an absolute path; ``""`` when not set."""
    text = string(value, ctx) if value is not None else ""
    if not text:
        return ""
    path = resolve(text, ctx.base_dir)
    if not path.is_dir():
        raise ctx.fail(f"{path} is not a directory")
    return str(path.resolve())


def resolve(path: str, base_dir: Path) -> Path:
    """``path`` taken relative to ``base_dir`` unless absolute."""
    candidate = Path(path)
    return candidate if candidate.is_absolute() else base_dir / candidate


def key_table(*, private: bool) -> Parser:
    """``{type = "RSA" | "EC", key = "<PEM>"}`` or ``{type, key_file = "<path>"}``: a loaded key."""

    def parse(value: Any, ctx: Context) -> Any:
        if value is None:
            raise ctx.fail("missing")
        if not isinstance(value, dict):
            raise ctx.fail('must be a table {type = "RSA" | "EC", key = "<PEM>"}')
        kind = value.get("type")
        if kind not in keys.KINDS:
            raise ctx.fail('must be "RSA" or "EC"', f"{ctx.key}.type")
        pem = value.get("key")
        if pem is None and "key_file" in value:
            path = resolve(str(value["key_file"]), ctx.base_dir)
            try:
                pem = path.read_text()
            except OSError as exc:
                raise ctx.fail(f"cannot read {path}: {exc.strerror}", f"{ctx.key}.key_file") from None
        if not isinstance(pem, str) or not pem.strip():
            raise ctx.fail("missing (give the PEM as key, or a path as key_file)", f"{ctx.key}.key")
        try:
            return keys.load_private_key(kind, pem) if private else keys.load_public_key(kind, pem)
        except keys.KeyLoadError as exc:
            raise ctx.fail(str(exc), f"{ctx.key}.key") from None

    return parse


_PHONE = re.compile(r"^\+?[0-9][0-9 \-().]*$")


def phonenumber(value: Any, ctx: Context) -> str:
    """The number callers dial; spaces are dropped (a ``tel:`` URI has none, RFC 3966)."""
    text = string(value, ctx)
    if text and not _PHONE.match(text):
        raise ctx.fail("may hold only digits, a leading +, spaces, dashes and brackets")
    return text.replace(" ", "")


def is_loopback(address: str) -> bool:
    """True for an address only this machine can reach: ``localhost``, ``127.0.0.0/8``, ``::1``."""
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip().strip("[]")).is_loopback
    except ValueError:
        return False
