"""Where raw settings come from: the TOML file, its profiles, and the environment, as Rocket reads them.

The reference plugin is configured through Rocket, which reads its settings
with Figment.  To be a drop-in replacement we read the same inputs the same way:

* the file: ``--config``, else ``$CONNECT_PLUGIN_CONFIG``, else ``$ROCKET_CONFIG``,
  else ``Rocket.toml``; a relative path given by an environment variable (or the
  default name) is looked for in the working directory and then in each of its
  parents, and a missing default file is simply no file;
* its tables ``[default]``, then the profile's (``[release]`` unless
  ``$CONNECT_PLUGIN_PROFILE``/``$ROCKET_PROFILE`` names another), then ``[global]``,
  merged as Figment merges: tables deep, everything else replaced;
* ``ROCKET_<KEY>`` then ``CONNECT_PLUGIN_<KEY>`` variables over all of that, their
  values read with Figment's value grammar (:func:`parse_env_value`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

ENV_PREFIXES = ("ROCKET_", "CONNECT_PLUGIN_")  # later wins
CONFIG_ENV = ("CONNECT_PLUGIN_CONFIG", "ROCKET_CONFIG")  # first found wins
PROFILE_ENV = ("CONNECT_PLUGIN_PROFILE", "ROCKET_PROFILE")
#: Variables with one of the prefixes that are not settings.
NOT_SETTINGS = frozenset({"config", "profile", "env", "test_postgres", "chromium", "require_postgres"})
DEFAULT_PROFILE = "release"
DEFAULT_FILE = "Rocket.toml"


@dataclass
class RawSettings:
    """Merged but unvalidated settings, and where each top-level key came from."""

    values: dict[str, Any] = field(default_factory=dict)
    #: The exact text of each key set by an environment variable (strings stay strings).
    env_text: dict[str, str] = field(default_factory=dict)
    #: The variable that set each key from the environment, for messages.
    env_names: dict[str, str] = field(default_factory=dict)
    file: Path | None = None


def read_raw(explicit: str | None, environ: Mapping[str, str], cwd: Path | None = None) -> RawSettings:
    """The settings from the file (if any) and the environment, merged; nothing validated yet."""
    cwd = cwd or Path.cwd()
    raw = RawSettings(file=find_config_file(explicit, environ, cwd))
    if raw.file is not None:
        raw.values = read_profiles(raw.file, profile_name(environ))
    for name, key, text in environment_settings(environ):
        merge_into(raw.values, {key: parse_env_value(text)})
        raw.env_text[key] = text.strip()
        raw.env_names[key] = name
    return raw


def find_config_file(explicit: str | None, environ: Mapping[str, str], cwd: Path) -> Path | None:
    """The config file to read, or ``None`` when there is none (settings from the environment only)."""
    if explicit:
        path = Path(explicit)
        return path if path.is_absolute() else cwd / path
    for name in CONFIG_ENV:
        if environ.get(name):
            found = _search_upwards(Path(environ[name]), cwd)
            if found is None:
                raise ConfigError("config", f"file {environ[name]} (from ${name}) not found")
            return found
    return _search_upwards(Path(DEFAULT_FILE), cwd)


def _search_upwards(path: Path, cwd: Path) -> Path | None:
    # Figment looks for a relative file in the working directory and then its parents.
    if path.is_absolute():
        return path if path.is_file() else None
    for folder in (cwd, *cwd.parents):
        if (folder / path).is_file():
            return folder / path
    return None


def profile_name(environ: Mapping[str, str]) -> str:
    """The selected profile: ``$CONNECT_PLUGIN_PROFILE``, ``$ROCKET_PROFILE``, else ``release``."""
    for name in PROFILE_ENV:
        if environ.get(name):
            return environ[name].strip().lower()
    return DEFAULT_PROFILE


def read_profiles(path: Path, profile: str) -> dict[str, Any]:
    """``[default]``, then ``[<profile>]``, then ``[global]`` of a TOML file, deep-merged."""
    try:
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError("config", f"file {path} not found") from None
    except OSError as exc:
        raise ConfigError("config", f"cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        # The decoder's message names a line and column, never the content.
        raise ConfigError("config", f"{path} is not valid TOML ({exc})") from None
    merged: dict[str, Any] = {}
    for table in ("default", profile, "global"):
        section = doc.get(table, {})
        if not isinstance(section, dict):
            raise ConfigError(table, "must be a table")
        merge_into(merged, section)
    return merged


def merge_into(target: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Figment's merge: tables merge key by key, at any depth; any other value replaces."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            merge_into(target[key], value)
        else:
            target[key] = _copy(value)
    return target


def _copy(value: Any) -> Any:
    return {k: _copy(v) for k, v in value.items()} if isinstance(value, dict) else value


def environment_settings(environ: Mapping[str, str]) -> list[tuple[str, str, str]]:
    """``(variable, key, text)`` for each setting variable, ``ROCKET_`` ones before ``CONNECT_PLUGIN_`` ones."""
    found = []
    for prefix in ENV_PREFIXES:
        for name in sorted(environ):
            if name.startswith(prefix) and name[len(prefix):].lower() not in NOT_SETTINGS:
                found.append((name, name[len(prefix):].lower(), environ[name]))
    return found


# --------------------------------------------------------------------------- Figment's value grammar


_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


class _Syntax(ValueError):
    pass


class _ValueParser:
    """Reads one value the way Figment reads an environment variable.

    Quoted strings ``"..."`` (with escapes), arrays ``[a, b]``, tables
    ``{key = value, ...}``, ``true``/``false``, integers and decimals; anything
    else up to the next ``, { } [ ]`` is a bare string (so
    ``{session={url=postgres://u@h/db}}`` needs no quotes).
    """

    SEPARATORS = ",{}[]"

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def parse(self) -> Any:
        value = self.value()
        if self.pos != len(self.text):
            raise _Syntax("trailing characters")
        return value

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def eat(self, char: str) -> None:
        if self.peek() != char:
            raise _Syntax(f"expected {char}")
        self.pos += 1

    def skip_space(self) -> None:
        while self.peek().isspace():
            self.pos += 1

    def value(self) -> Any:
        self.skip_space()
        char = self.peek()
        if char == '"':
            result: Any = self.quoted()
        elif char == "'":
            self.eat("'")
            if self.pos >= len(self.text):
                raise _Syntax("unterminated character")
            result = self.text[self.pos]
            self.pos += 1
            self.eat("'")
        elif char == "[":
            result = self.delimited("[", "]", self.value)
        elif char == "{":
            result = dict(self.delimited("{", "}", self.pair))
        elif char:
            result = self.scalar()
        else:
            result = ""
        self.skip_space()
        return result

    def quoted(self) -> str:
        start = self.pos
        self.eat('"')
        escaped = False
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                try:
                    return tomllib.loads(f"v = {self.text[start:self.pos]}")["v"]
                except tomllib.TOMLDecodeError:
                    raise _Syntax("bad escape") from None
        raise _Syntax("unterminated string")

    def scalar(self) -> Any:
        start = self.pos
        while self.peek() and self.peek() not in self.SEPARATORS:
            self.pos += 1
        word = self.text[start:self.pos].strip()
        if word in ("true", "false"):
            return word == "true"
        if _INTEGER.fullmatch(word):
            return int(word)
        if "." in word and _DECIMAL.fullmatch(word):
            return float(word)
        return word

    def key(self) -> str:
        if self.peek() == '"':
            return self.quoted()
        start = self.pos
        while self.peek() and (self.peek().isalnum() or self.peek() in "_-"):
            self.pos += 1
        return self.text[start:self.pos]

    def pair(self) -> tuple[str, Any]:
        key = self.key()
        self.skip_space()
        self.eat("=")
        return key, self.value()

    def delimited(self, start: str, end: str, item: Any) -> list[Any]:
        items = []
        self.eat(start)
        self.skip_space()
        while self.peek() != end:
            items.append(item())
            self.skip_space()
            if self.peek() != ",":
                break
            self.eat(",")
            self.skip_space()
        self.eat(end)
        return items


def parse_env_value(text: str) -> Any:
    """An environment variable's value as Figment reads it; the whole text as a string if it is no value."""
    text = text.strip()
    try:
        return _ValueParser(text).parse()
    except _Syntax:
        return text


def env_variable_for(key: str) -> str:
    """The variable name that sets ``key`` (for messages)."""
    return f"{ENV_PREFIXES[-1]}{key.upper()}"


