"""Turning raw settings into :class:`Settings`: every key parsed by its declaration, the rest refused.

Besides each value's own checks, these rules span settings:

* unknown keys stop start-up, with a "did you mean" where a known key is close;
  keys that Rocket itself knows (``limits``, ``tls``, ...) are accepted and
  ignored with a notice, so a reference-era file starts unchanged;
* ``allowed_hosts = ["*"]`` and a ``trusted_proxies`` network that holds
  every address are allowed, with a warning at every start: each turns a
  defence off (DNS rebinding; clients' own ``X-Forwarded-For``);
* **secure by default on a network address**: ``agent_auth`` and
  ``link_phone_token`` may be left unset only when the plugin listens on a
  loopback address.  Elsewhere the deployer must choose, and writing
  ``"none"`` leaves that door open on purpose (warned at every start);
* ``core_auth_user`` and ``core_auth_password`` are set together or not at all;
* ``dtmf_length`` below 8 is warned about at every start (below 6 is refused);
* **agent sign-in**: the mode in ``agent_auth`` needs its own settings (an
  issuer, a client, a cookie secret; a load balancer's ARN) and a rule saying
  which agents may see data; ``*_file`` settings are read here;
* **metrics**: ``metrics_address`` needs ``metrics_port``, which must differ
  from ``port``; the other ``metrics_*`` settings without ``metrics = true``
  are warned about and ignored; ``/metrics`` on the main server's network
  address without ``metrics_token`` is allowed with a warning at every start
  (it tells request counts and latencies, never a citizen's data, and is how
  most Prometheus servers scrape; see docs/operating.md).
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError
from . import agent_values as av
from . import values as v
from .database import reference_databases
from .settings import REQUIRED, Settings, declared, known_keys
from .sources import read_raw

#: Keys of Rocket's own configuration: a reference-era file may hold them; they mean nothing here.
ROCKET_KEYS = frozenset({
    "limits", "tls", "mtls", "secret_key", "ident", "temp_dir", "cli_colors", "shutdown", "ip_header",
    "proxy_proto_header", "max_blocking", "ctrlc", "reuse", "log", "read_timeout", "write_timeout", "template_dir",
})

#: The doors that must be closed, or left open on purpose, off loopback; and what an open one means.
GUARDED = {
    "agent_auth": ('"oidc" or "alb"', "anyone who can reach this server can read citizens' verified attributes"),
    "link_phone_token": ("a secret of at least 16 characters",
                         "anyone who can reach /link_phone can try codes and link calls"),
}


def load_settings(path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None,
                  *, cwd: Path | None = None) -> Settings:
    """Read, merge and validate the settings; raise ConfigError on the first problem."""
    environ = os.environ if environ is None else environ
    cwd = cwd or Path.cwd()
    raw = read_raw(os.fspath(path) if path else None, environ, cwd)
    values = dict(raw.values)
    names = reference_databases(values)
    notices = _check_keys(values, raw.env_names)
    base_dir = raw.file.resolve().parent if raw.file is not None else cwd
    parsed: dict[str, Any] = {}
    for f, spec in declared():
        ctx = v.Context(names.get(spec.key) or raw.env_names.get(spec.key) or spec.key, base_dir, values,
                        raw.env_text.get(spec.key))
        value = values.get(spec.key, spec.default)
        if value is REQUIRED:
            raise ConfigError(ctx.key, "missing")
        parsed[f.name] = None if value is None else spec.parse(value, ctx)
    source = str(raw.file) if raw.file is not None else "<environment>"
    open_on_purpose = frozenset(key for key in GUARDED if parsed[key] == v.OPEN)
    notices += _exposure(parsed, open_on_purpose)
    _core_auth(parsed)
    notices += _agent_sign_in(parsed)
    notices += _other_notices(parsed)
    notices += _http_notices(parsed)
    notices += _metrics(parsed)
    return Settings(**parsed, source=source, notices=tuple(notices), open_on_purpose=open_on_purpose)


def _check_keys(values: dict[str, Any], env_names: Mapping[str, str]) -> list[tuple[int, str]]:
    known = known_keys()
    notices = []
    for key in sorted(values):
        if key in known:
            continue
        if key in ROCKET_KEYS:
            notices.append((logging.INFO, f"{key}: Rocket's own setting, not used by this plugin; ignored"))
            values.pop(key)
            continue
        shown = env_names.get(key, key)
        close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
        hint = ""
        if close:
            prefix = shown[: len(shown) - len(key)] if key in env_names else ""
            hint = f" (did you mean {prefix}{close[0].upper() if prefix else close[0]}?)"
        raise ConfigError(shown, f"unknown setting{hint}")
    return notices


def _days_to_guess(length: int, budget: int, waiting: int = 10) -> float:
    """Expected days until a budget-limited guesser hits one of ``waiting`` live codes."""
    return 10 ** length / (waiting * budget * 60 * 24)


def _exposure(parsed: Mapping[str, Any], open_on_purpose: frozenset[str]) -> list[tuple[int, str]]:
    address = parsed["address"]
    notices = []
    for key, (choices, meaning) in GUARDED.items():
        if key in open_on_purpose:
            notices.append((logging.WARNING, f'{key} = "none": {meaning}'))
        elif parsed[key] is None and not v.is_loopback(address):
            raise ConfigError(
                key, f'required when listening on {address}, a network address: set {choices}, '
                     f'or write {key} = "none" to leave it open on purpose')
    return notices


def _core_auth(parsed: Mapping[str, Any]) -> None:
    """``core_auth_user`` and ``core_auth_password``: both or neither."""
    if (parsed["core_auth_user"] is None) != (parsed["core_auth_password"] is None):
        missing = "core_auth_password" if parsed["core_auth_password"] is None else "core_auth_user"
        other = "core_auth_user" if missing == "core_auth_password" else "core_auth_password"
        raise ConfigError(missing, f"required when {other} is set (set both or neither)")


#: Guesses per second one instance answered on a 2-core machine without a failure budget (issue 10).
MEASURED_GUESS_RATE = 450


def _other_notices(parsed: Mapping[str, Any]) -> list[tuple[int, str]]:
    notices = []
    if parsed["dtmf_length"] < 8:
        length, budget = parsed["dtmf_length"], parsed["link_failure_budget"]
        notices.append((logging.WARNING, (
            f"dtmf_length = {length}: a caller guessing codes tries about {MEASURED_GUESS_RATE} a second "
            f"without a limit; link_failure_budget caps that at {budget} a minute, which still finds one of "
            f"10 waiting sessions' codes about every {_days_to_guess(length, budget):.1f} days: "
            "use 8 digits or more")))
    if not parsed["phonenumber"]:
        notices.append((logging.WARNING, "phonenumber is empty: client_url will be tel:,<code>"))
    if parsed["workers"] not in (None, 1):
        notices.append((logging.INFO, "workers: ignored; one process serves all requests asynchronously "
                                      "(run more instances to use more cores)"))
    return notices


#: What each built-in sign-in mode cannot do without, and how to name it in a message.
SIGN_IN_REQUIRED = {
    "oidc": ("oidc_issuer", "oidc_client_id", "oidc_client_secret", "agent_cookie_secret"),
    "alb": ("alb_signer_arn",),
}
#: Settings that only one mode reads: set under another mode they are a mistake worth a warning.
SIGN_IN_ONLY = {
    "oidc": ("oidc_issuer", "oidc_client_id", "oidc_client_secret", "oidc_scopes", "agent_cookie_secret"),
    "alb": ("alb_signer_arn", "alb_key_url"),
}
SECRET_FILES = {"oidc_client_secret": "oidc_client_secret_file", "agent_cookie_secret": "agent_cookie_secret_file"}
MIN_SECRET = {"oidc_client_secret": 1, "agent_cookie_secret": 32}


def _agent_sign_in(parsed: dict[str, Any]) -> list[tuple[int, str]]:
    """Read the secret files, then check that the chosen sign-in mode has what it needs."""
    for key, file_key in SECRET_FILES.items():
        if parsed[file_key]:
            if parsed[key] is not None:
                raise ConfigError(file_key, f"give either {key} or {file_key}, not both")
            parsed[key] = _read_secret(file_key, parsed[file_key], MIN_SECRET[key])
    mode = parsed["agent_auth"]
    notices = [(logging.WARNING, f'{key}: not used with agent_auth = "{mode or v.OPEN}"; ignored')
               for other, keys in SIGN_IN_ONLY.items() if other != mode
               for key in keys if parsed[key] not in (None, "", Settings.__dataclass_fields__[key].default)]
    if mode not in SIGN_IN_REQUIRED:
        return notices
    for key in SIGN_IN_REQUIRED[mode]:
        if not parsed[key]:
            alternative = f" (or {SECRET_FILES[key]})" if key in SECRET_FILES else ""
            raise ConfigError(key, f'required with agent_auth = "{mode}"{alternative}')
    if not (parsed["oidc_allowed_groups"] or parsed["oidc_allowed_domains"] or parsed["oidc_allow_any_agent"]):
        raise ConfigError("oidc_allowed_groups", f'agent_auth = "{mode}" needs a rule for which agents may see '
                                                 "data: oidc_allowed_groups, oidc_allowed_domains, "
                                                 "or oidc_allow_any_agent = true")
    if mode == "oidc":
        key = "external_url" if parsed["external_url"] else "internal_url"
        parts = urlsplit(parsed[key])
        if parts.scheme != "https" and not v.is_loopback(parts.hostname or ""):
            raise ConfigError(key, 'must be https with agent_auth = "oidc" (agents\' browsers keep the sign-in '
                                   "in a Secure cookie); plain http only on a loopback address")
    if mode == "alb" and not parsed["alb_key_url"]:
        partition = av.ALB_ARN.match(parsed["alb_signer_arn"])["partition"]  # type: ignore[index]
        if partition != "aws":
            raise ConfigError("alb_key_url", f"required for a load balancer in the {partition} partition: "
                                             "the key URL that AWS documents for it, with {kid}")
    return notices


def _read_secret(key: str, path: str, min_length: int) -> v.Secret:
    try:
        text = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(key, f"cannot read {path}: {getattr(error, 'strerror', None) or 'not UTF-8 text'}") from None
    if len(text) < min_length:
        raise ConfigError(key, f"{path} must hold at least {min_length} characters")
    return v.Secret(text)


def _http_notices(parsed: Mapping[str, Any]) -> list[tuple[int, str]]:
    notices = []
    if "*" in parsed["allowed_hosts"]:
        notices.append((logging.WARNING, 'allowed_hosts = "*": any Host header is served; pages on any '
                                         "domain that resolves to this server can reach it (DNS rebinding)"))
    if any(network.prefixlen == 0 for network in parsed["trusted_proxies"]):
        notices.append((logging.WARNING, "trusted_proxies holds every address: any client can claim any "
                                         "address with X-Forwarded-For"))
    return notices


METRICS_ONLY = ("metrics_address", "metrics_port", "metrics_token")


def _metrics(parsed: Mapping[str, Any]) -> list[tuple[int, str]]:
    """The ``metrics_*`` settings together; a warning when ``/metrics`` is open on a network address."""
    if not parsed["metrics"]:
        return [(logging.WARNING, f"{key}: not used without metrics = true; ignored")
                for key in METRICS_ONLY if parsed[key] not in (None, "")]
    if parsed["metrics_address"] and parsed["metrics_port"] is None:
        raise ConfigError("metrics_port", "required when metrics_address is set")
    if parsed["metrics_port"] is not None and parsed["metrics_port"] == parsed["port"]:
        raise ConfigError("metrics_port", "must differ from port: the metrics' own server listens there")
    if parsed["metrics_port"] is None and parsed["metrics_token"] is None and not v.is_loopback(parsed["address"]):
        return [(logging.WARNING, (
            f"metrics = true on {parsed['address']} without metrics_token: whoever reaches this server can read "
            "its request counts and latencies at /metrics (never a citizen's data); set metrics_token, or "
            "metrics_port for a port of their own, or keep /metrics off the reverse proxy"))]
    return []
