"""Settings: a TOML file plus environment overrides, compatible with the reference.

The reference plugin (Rust, Rocket) reads a TOML file named by ``ROCKET_CONFIG``
with ``[default]``, profile (``[debug]``/``[release]``) and ``[global]`` tables,
in that order of precedence, and ``ROCKET_<KEY>`` environment overrides.  We read
the same file the same way, and add ``CONNECT_PLUGIN_CONFIG`` /
``CONNECT_PLUGIN_<KEY>`` (which win over the ``ROCKET_`` forms).

Every problem is a :class:`~connect_plugin.errors.ConfigError` naming the key and
what is wrong, never the value: values include private keys and tokens.
"""

from __future__ import annotations

import logging
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import keys
from .errors import ConfigError

log = logging.getLogger(__name__)

ENV_PREFIXES = ("ROCKET_", "CONNECT_PLUGIN_")  # later wins
CONFIG_ENV = ("CONNECT_PLUGIN_CONFIG", "ROCKET_CONFIG")  # first found wins
PROFILE_ENV = ("CONNECT_PLUGIN_PROFILE", "ROCKET_PROFILE")
DEFAULT_PROFILE = "release"
DEFAULT_SQLITE_PATH = "var/connect-plugin.sqlite3"

LOG_LEVELS = {
    "off": logging.CRITICAL + 10,
    "critical": logging.CRITICAL,
    "normal": logging.INFO,
    "debug": logging.DEBUG,
    # Python's own names, for deployers who think in those.
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
}


class Secret(str):
    """A string whose repr and str-formatting in logs never show the value."""

    def __repr__(self) -> str:
        return "Secret('***')"

    def reveal(self) -> str:
        """The value itself, for the one place that must compare it."""
        return str.__str__(self)


@dataclass(frozen=True)
class Settings:
    """Validated settings; see the README's configuration table for each key."""

    internal_url: str
    phonenumber: str
    dtmf_length: int
    result_length: int
    decryption_key: keys.PrivateKey = field(repr=False)
    signature_key: keys.PublicKey = field(repr=False)
    address: str = "127.0.0.1"
    port: int = 8000
    external_url: str | None = None
    log_level: str = "normal"
    workers: int | None = None
    keep_alive: int = 5
    database_url: str = ""
    database_pool_size: int = 5
    database_timeout: float = 1.0
    link_phone_token: Secret | None = field(default=None, repr=False)
    session_ttl: int = 3600
    cleanup_interval: int = 300
    token_leeway: int = 60
    max_body_size: int = 64 * 1024
    code_attempts: int = 20
    default_locale: str = "nl"
    translations: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    allowed_origins: tuple[str, ...] = ()
    amazon_connect_url: str = ""
    streams_url: str = ""
    attribute_url: str = ""
    web_dir: str = ""
    events_keepalive: int = 15
    plugins: Mapping[str, Any] = field(default_factory=dict)
    source: str = "<defaults>"

    @property
    def public_url(self) -> str:
        """Where browsers reach the plugin (``external_url``, else ``internal_url``)."""
        return self.external_url or self.internal_url

    def resolve_path(self, path: str) -> Path:
        """A path from the settings, relative paths taken from the config file's folder."""
        candidate = Path(path)
        if candidate.is_absolute() or self.source.startswith("<"):
            return candidate
        return Path(self.source).resolve().parent / candidate

    @property
    def log_level_number(self) -> int:
        """The Python logging level for ``log_level``."""
        return LOG_LEVELS[self.log_level]


# --------------------------------------------------------------------------- loading


def find_config_file(explicit: str | None, environ: Mapping[str, str]) -> Path | None:
    """The config file: ``--config``, else ``CONNECT_PLUGIN_CONFIG``, else ``ROCKET_CONFIG``."""
    if explicit:
        return Path(explicit)
    for name in CONFIG_ENV:
        if environ.get(name):
            return Path(environ[name])
    return None


def load_settings(path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, merge and validate the settings; raise ConfigError on the first problem."""
    environ = os.environ if environ is None else environ
    config_path = find_config_file(os.fspath(path) if path else None, environ)
    raw: dict[str, Any] = {}
    base_dir = Path.cwd()
    if config_path is not None:
        raw = _read_profiles(config_path, _profile(environ))
        base_dir = config_path.resolve().parent
    raw.update(_environment_overrides(environ))
    return _validate(raw, base_dir, str(config_path) if config_path else "<environment>")


def _profile(environ: Mapping[str, str]) -> str:
    for name in PROFILE_ENV:
        if environ.get(name):
            return environ[name].strip().lower()
    return DEFAULT_PROFILE


def _read_profiles(path: Path, profile: str) -> dict[str, Any]:
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
        merged.update(section)
    return merged


def _environment_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """``ROCKET_<KEY>`` then ``CONNECT_PLUGIN_<KEY>``; values parse as TOML where they can."""
    known = {f.name for f in fields(Settings)} | {"databases", "decryption_privkey", "signature_pubkey"}
    out: dict[str, Any] = {}
    for prefix in ENV_PREFIXES:
        for name, value in environ.items():
            if not name.startswith(prefix):
                continue
            key = name[len(prefix):].lower()
            if key in {"config", "profile"} or key not in known:
                continue
            out[key] = _parse_env_value(value)
    return out


def _parse_env_value(value: str) -> Any:
    # Rocket parses environment values as TOML values (numbers, inline tables);
    # anything that is not one is a plain string.
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value


# --------------------------------------------------------------------------- validation

_PHONE = re.compile(r"^\+?[0-9][0-9 \-().]*$")
_LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


def _validate(raw: dict[str, Any], base_dir: Path, source: str) -> Settings:
    unknown = set(raw) - {f.name for f in fields(Settings)} - {
        "databases", "decryption_privkey", "signature_pubkey", "limits", "tls", "secret_key", "ident", "temp_dir",
        "cli_colors", "shutdown", "ip_header", "max_blocking", "ctrlc",
    }
    for key in sorted(unknown):
        log.warning("ignoring unknown setting %r", key)

    values: dict[str, Any] = {"source": source}
    values["internal_url"] = _url(raw, "internal_url", required=True)
    values["external_url"] = _url(raw, "external_url") or None
    values["phonenumber"] = _phonenumber(raw)
    values["dtmf_length"] = _int(raw, "dtmf_length", None, 4, 32)
    values["result_length"] = _int(raw, "result_length", None, 16, 256)
    values["decryption_key"] = _key(raw, "decryption_privkey", base_dir, private=True)
    values["signature_key"] = _key(raw, "signature_pubkey", base_dir, private=False)
    values["address"] = _str(raw, "address", "127.0.0.1")
    values["port"] = _int(raw, "port", 8000, 0, 65535)
    values["log_level"] = _choice(raw, "log_level", "normal", LOG_LEVELS)
    if "workers" in raw:
        values["workers"] = _int(raw, "workers", None, 1, 1024)
    values["keep_alive"] = _int(raw, "keep_alive", 5, 0, 3600)
    values["database_url"] = _database_url(raw, base_dir)
    values["database_pool_size"] = _int(raw, "database_pool_size", 5, 1, 100)
    values["database_timeout"] = _number(raw, "database_timeout", 1.0, 0.05, 60)
    values["link_phone_token"] = _secret(raw, "link_phone_token")
    values["session_ttl"] = _int(raw, "session_ttl", 3600, 1, 7 * 24 * 3600)
    values["cleanup_interval"] = _int(raw, "cleanup_interval", 300, 1, 300)
    values["token_leeway"] = _int(raw, "token_leeway", 60, 0, 600)
    values["max_body_size"] = _int(raw, "max_body_size", 64 * 1024, 1024, 16 * 1024 * 1024)
    values["code_attempts"] = _int(raw, "code_attempts", 20, 1, 1000)
    values["default_locale"] = _locale(raw.get("default_locale", "nl"), "default_locale")
    values["translations"] = _translations(raw)
    values["allowed_origins"] = _origins(raw)
    values["amazon_connect_url"] = _url(raw, "amazon_connect_url")
    values["streams_url"] = _str(raw, "streams_url", "")
    values["attribute_url"] = _str(raw, "attribute_url", "")
    values["web_dir"] = _directory(raw, "web_dir", base_dir)
    values["events_keepalive"] = _int(raw, "events_keepalive", 15, 1, 300)
    plugins = raw.get("plugins", {})
    if not isinstance(plugins, dict):
        raise ConfigError("plugins", "must be a table")
    values["plugins"] = plugins
    return Settings(**values)


def _str(raw: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = raw.get(key, default)
    if value is None:
        raise ConfigError(key, "missing")
    if not isinstance(value, str):
        raise ConfigError(key, "must be a string")
    return value


def _int(raw: Mapping[str, Any], key: str, default: int | None, low: int, high: int) -> int:
    value = raw.get(key, default)
    if value is None:
        raise ConfigError(key, "missing")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(key, "must be a whole number")
    if not low <= value <= high:
        raise ConfigError(key, f"must be between {low} and {high}")
    return value


def _number(raw: Mapping[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(key, "must be a number")
    if not low <= value <= high:
        raise ConfigError(key, f"must be between {low} and {high}")
    return float(value)


def _choice(raw: Mapping[str, Any], key: str, default: str, choices: Mapping[str, Any]) -> str:
    value = _str(raw, key, default).strip().lower()
    if value not in choices:
        raise ConfigError(key, f"must be one of {', '.join(choices)}")
    return value


def _url(raw: Mapping[str, Any], key: str, required: bool = False) -> str:
    value = raw.get(key)
    if value in (None, ""):
        if required:
            raise ConfigError(key, "missing")
        return ""
    if not isinstance(value, str):
        raise ConfigError(key, "must be a string")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(key, "must be an http(s) URL")
    return value.rstrip("/")


def _phonenumber(raw: Mapping[str, Any]) -> str:
    value = _str(raw, "phonenumber")
    if value and not _PHONE.match(value):
        raise ConfigError("phonenumber", "may hold only digits, a leading +, spaces, dashes and brackets")
    if not value:
        log.warning("phonenumber is empty: client_url will be tel:,<code>")
    # Spaces are not allowed in a tel: URI (RFC 3966); the other separators are.
    return value.replace(" ", "")


def _secret(raw: Mapping[str, Any], key: str) -> Secret | None:
    value = raw.get(key)
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise ConfigError(key, "must be a string")
    if len(value) < 16:
        raise ConfigError(key, "must be at least 16 characters")
    return Secret(value)


def _key(raw: Mapping[str, Any], key: str, base_dir: Path, *, private: bool) -> Any:
    table = raw.get(key)
    if table is None:
        raise ConfigError(key, "missing")
    if not isinstance(table, dict):
        raise ConfigError(key, "must be a table {type = \"RSA\" | \"EC\", key = \"<PEM>\"}")
    kind = table.get("type")
    if kind not in ("RSA", "EC"):
        raise ConfigError(f"{key}.type", 'must be "RSA" or "EC"')
    pem = table.get("key")
    if pem is None and "key_file" in table:
        path = Path(str(table["key_file"]))
        path = path if path.is_absolute() else base_dir / path
        try:
            pem = path.read_text()
        except OSError as exc:
            raise ConfigError(f"{key}.key_file", f"cannot read {path}: {exc.strerror}") from None
    if not isinstance(pem, str) or not pem.strip():
        raise ConfigError(f"{key}.key", "missing (give the PEM as key, or a path as key_file)")
    try:
        return keys.load_private_key(kind, pem) if private else keys.load_public_key(kind, pem)
    except keys.KeyLoadError as exc:
        raise ConfigError(f"{key}.key", str(exc)) from None


def _directory(raw: Mapping[str, Any], key: str, base_dir: Path) -> str:
    value = _str(raw, key, "")
    if not value:
        return ""
    path = Path(value)
    path = path if path.is_absolute() else base_dir / path
    if not path.is_dir():
        raise ConfigError(key, f"{path} is not a directory")
    return str(path.resolve())


def _database_url(raw: Mapping[str, Any], base_dir: Path) -> str:
    url = raw.get("database_url")
    key = "database_url"
    databases = raw.get("databases")
    if url is None and databases is not None:
        key = "databases.session.url"
        session = databases.get("session") if isinstance(databases, dict) else None
        url = session.get("url") if isinstance(session, dict) else None
        if url is None:
            raise ConfigError(key, "missing (expected [global.databases] session = { url = \"...\" })")
    if url in (None, ""):
        return "sqlite:///" + str((base_dir / DEFAULT_SQLITE_PATH).resolve())
    if not isinstance(url, str):
        raise ConfigError(key, "must be a string")
    scheme = url.split(":", 1)[0].lower()
    if not re.match(r"^[a-z][a-z0-9+.\-]*:", url, re.IGNORECASE):
        raise ConfigError(key, "must be a URL such as sqlite:///path or postgres://user@host/db")
    if scheme.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:" and not os.path.isabs(path):
            url = url.split(":///", 1)[0] + ":///" + str((base_dir / path).resolve())
    return url


def _locale(value: Any, key: str) -> str:
    if not isinstance(value, str) or not _LOCALE.match(value):
        raise ConfigError(key, "must be a language tag such as nl or en")
    return value.lower()


def _translations(raw: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    table = raw.get("translations", {})
    if not isinstance(table, dict):
        raise ConfigError("translations", "must be a table of [translations.<locale>] tables")
    out: dict[str, dict[str, str]] = {}
    for locale, labels in table.items():
        name = f"translations.{locale}"
        _locale(locale, name)
        if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
            raise ConfigError(name, "must map tags to label strings")
        out[locale.lower()] = dict(labels)
    return out


def _origins(raw: Mapping[str, Any]) -> tuple[str, ...]:
    value = raw.get("allowed_origins", [])
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError("allowed_origins", "must be a list of origins such as https://agents.example.nl")
    for origin in value:
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
            raise ConfigError("allowed_origins", "each must be an origin: scheme://host[:port]")
    return tuple(v.rstrip("/") for v in value)
