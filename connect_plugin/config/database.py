"""The database setting in every form a deployer of the reference may have written it.

* ``database_url = "sqlite:///path"`` (relative paths from the config file's folder);
* ``postgres://`` or ``postgresql://`` URLs with libpq's URL parameters;
* libpq ``key=value`` connection strings (``host=db user=tg dbname=tg``);
* any other ``scheme:...`` as it is, for a store plugin of the deployer's;
* the reference's ``[global.databases] session = { url = "...", pool_size = 10, timeout = 5 }``
  (rocket_sync_db_pools), whose ``pool_size`` and ``timeout`` become
  ``database_pool_size`` and ``database_timeout`` unless those are set.

PostgreSQL targets are normalised to one ``postgresql://`` URL holding only
parameters the asyncpg driver understands; libpq's ``connect_timeout`` is kept
as the driver's connect timeout.  Anything else is refused in one line naming
the parameter, never its value.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from ..errors import ConfigError

DEFAULT_SQLITE_PATH = "var/connect-plugin.sqlite3"
POSTGRES_SCHEMES = ("postgres", "postgresql")
SQLITE_SCHEMES = ("sqlite",)

#: libpq parameters the asyncpg driver reads from a connection URL.
ASYNCPG_PARAMETERS = frozenset({
    "host", "port", "dbname", "database", "user", "password", "passfile", "service",
    "sslmode", "sslcert", "sslkey", "sslrootcert", "sslcrl", "sslpassword", "sslnegotiation",
    "ssl_min_protocol_version", "ssl_max_protocol_version", "target_session_attrs", "krbsrvname", "gsslib",
    # Run-time parameters the server takes in the start-up packet (asyncpg passes them on).
    "application_name", "options",
})
#: libpq parameters we translate: to the driver's connect timeout, or to another parameter.
TRANSLATED = {"connect_timeout": "", "fallback_application_name": "application_name", "ssl": "sslmode"}
_KEYWORD = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*")


def reference_databases(raw: dict[str, Any]) -> dict[str, str]:
    """Fold ``databases.session.{url,pool_size,timeout}`` into our three settings, in place.

    Explicit ``database_url``/``database_pool_size``/``database_timeout`` win.
    Returns, for each setting filled in this way, the name the deployer wrote (for messages).
    """
    names: dict[str, str] = {}
    databases = raw.pop("databases", None)
    if databases is None:
        return names
    session = databases.get("session") if isinstance(databases, dict) else None
    if not isinstance(session, dict):
        raise ConfigError("databases.session", 'missing (expected [global.databases] session = { url = "..." })')
    unknown = sorted(set(session) - {"url", "pool_size", "timeout"})
    if unknown:
        raise ConfigError(f"databases.session.{unknown[0]}", "unknown (known: url, pool_size, timeout)")
    if "url" not in session:
        raise ConfigError("databases.session.url", 'missing (expected session = { url = "..." })')
    for ours, theirs in (("database_url", "url"), ("database_pool_size", "pool_size"), ("database_timeout", "timeout")):
        if theirs in session and ours not in raw:
            raw[ours] = session[theirs]
            names[ours] = f"databases.session.{theirs}"
    return names


def normalise(value: str, key: str, base_dir: Path) -> str:
    """The configured database as a URL the stores accept (see the module docstring)."""
    text = value.strip()
    if not text:
        return "sqlite:///" + str((base_dir / DEFAULT_SQLITE_PATH).resolve())
    if "://" not in text.split("?", 1)[0] and not text.lower().startswith("sqlite:") and _KEYWORD.match(text):
        return _postgres_url(_keyword_string(text, key), key)
    scheme = text.split(":", 1)[0].lower()
    if scheme in SQLITE_SCHEMES or scheme.startswith("sqlite+"):
        return _sqlite_url(text, base_dir)
    if scheme in POSTGRES_SCHEMES or scheme == "postgresql+asyncpg":
        parts = urlsplit(text)
        params = parse_qsl(parts.query, keep_blank_values=True)
        base = urlunsplit(("postgresql", parts.netloc, parts.path, "", ""))
        return _postgres_url((base, params), key)
    if re.match(r"^[a-z][a-z0-9+.\-]*:", text, re.IGNORECASE):
        return text  # another scheme: a store plugin's own (the built-in store refuses it when it opens)
    raise ConfigError(key, "must be sqlite:///path, a postgres:// URL or a libpq key=value string")


def _sqlite_url(text: str, base_dir: Path) -> str:
    head, _, path = text.partition(":///")
    if path and path != ":memory:" and not path.startswith("/"):
        path = str((base_dir / path).resolve())
    return f"{head.split('+', 1)[0]}:///{path}"


def _keyword_string(text: str, key: str) -> tuple[str, list[tuple[str, str]]]:
    """libpq's ``key = value`` syntax: values bare or single-quoted with ``\\'`` and ``\\\\`` escapes."""
    params: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _KEYWORD.match(text, pos)
        if match is None:
            raise ConfigError(key, "is not a valid libpq key=value connection string")
        name, pos = match.group(1), match.end()
        if pos < len(text) and text[pos] == "'":
            pos += 1
            chars = []
            while pos < len(text) and text[pos] != "'":
                if text[pos] == "\\" and pos + 1 < len(text):
                    pos += 1
                chars.append(text[pos])
                pos += 1
            if pos >= len(text):
                raise ConfigError(key, "has an unterminated quoted value")
            pos += 1
            params.append((name, "".join(chars)))
        else:
            end = pos
            while end < len(text) and not text[end].isspace():
                end += 1
            params.append((name, text[pos:end]))
            pos = end
    return "postgresql://", params


def _postgres_url(target: tuple[str, list[tuple[str, str]]], key: str) -> str:
    base, params = target
    kept: list[tuple[str, str]] = []
    for name, value in params:
        name = TRANSLATED.get(name, name) or name
        if name not in ASYNCPG_PARAMETERS and name != "connect_timeout":
            raise ConfigError(key, f"parameter {name} is not supported by the PostgreSQL driver (asyncpg)")
        if name == "connect_timeout" and not re.fullmatch(r"[0-9]+(\.[0-9]+)?", value):
            raise ConfigError(key, "parameter connect_timeout must be a number of seconds")
        kept.append((name, value))
    query = urlencode(kept, quote_via=quote)
    return base + (f"?{query}" if query else "")


def asyncpg_target(url: str) -> tuple[str, dict[str, Any]]:
    """The DSN and extra ``asyncpg.connect`` arguments for a normalised PostgreSQL URL."""
    parts = urlsplit(url)
    params = parse_qsl(parts.query, keep_blank_values=True)
    extra: dict[str, Any] = {}
    kept = []
    for name, value in params:
        if name == "connect_timeout":
            extra["timeout"] = float(value) or None
        else:
            kept.append((name, value))
    dsn = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(kept, quote_via=quote), ""))
    return dsn, extra


def is_postgres(url: str) -> bool:
    """True for a PostgreSQL URL."""
    return url.split(":", 1)[0].lower() in (*POSTGRES_SCHEMES, "postgresql+asyncpg")


def is_sqlite(url: str) -> bool:
    """True for an SQLite URL."""
    return url.split(":", 1)[0].lower().split("+", 1)[0] in SQLITE_SCHEMES
