"""Every setting, declared once: its key, type, default, bounds, parser and documentation.

Each field of :class:`Settings` is a setting; its ``setting(...)`` declaration
is the one place that says what the key is called, what it holds, what it
defaults to and what it means.  The loader (``load.py``), the README's
configuration table (:func:`markdown_table`, kept equal to the README by a
test) and the list of known keys are all made from these declarations.

To add a setting: add a field here with ``setting(...)`` in the group it
belongs to, run ``python -m connect_plugin.config`` and paste the table into
the README.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .. import keys
from ..addresses import IPNetwork, normalise_host, parse_network
from . import agent_values as av
from . import values as v
from .database import normalise

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


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class Spec:
    """A setting's declaration (kept in its field's metadata)."""

    key: str
    parse: v.Parser
    doc: str
    default: Any
    shown_default: str
    shown_key: str


def setting(default: Any = REQUIRED, *, parse: v.Parser, doc: str, key: str = "", shown_default: str = "",
            shown_key: str = "", secret: bool = False) -> Any:
    """Declare a setting: a dataclass field whose metadata is its :class:`Spec`.

    ``key`` is the name in the file when it differs from the field's;
    ``shown_default`` what the README says instead of the literal default.
    """
    spec = Spec(key, parse, doc, default, shown_default, shown_key)
    if default is REQUIRED:
        return field(metadata={"setting": spec}, repr=not secret)
    if isinstance(default, dict | list):
        return field(default_factory=lambda: type(default)(default), metadata={"setting": spec}, repr=not secret)
    return field(default=default, metadata={"setting": spec}, repr=not secret)


def _database(value: Any, ctx: v.Context) -> str:
    return normalise(v.string(value if value is not None else "", ctx), ctx.key, ctx.base_dir)


def _identifier(value: Any, ctx: v.Context) -> str | None:
    text = v.string(value, ctx).strip().lower() if value not in (None, "") else ""
    if text and not text.replace("_", "").replace("-", "").isalnum():
        raise ctx.fail("must be a name such as oidc, alb or none")
    return text or None


#: Shortest DTMF code accepted: with fewer digits a failure budget cannot keep guessing hopeless.
MIN_DTMF_LENGTH = 6


def _dtmf_length(value: Any, ctx: v.Context) -> int:
    number = v.integer(0, 32)(value, ctx)
    if number < MIN_DTMF_LENGTH:
        raise ctx.fail(f"must be at least {MIN_DTMF_LENGTH}: shorter codes can be guessed by calling in")
    return number


def _hosts(*, wildcard: bool) -> v.Parser:
    """Host names or IP addresses, without scheme, port or path, kept in normal form; ``"*"`` if ``wildcard``."""
    problem = "each must be a host name or an IP address, without scheme, port or path" + (
        ' (or "*")' if wildcard else "")

    def parse(value: Any, ctx: v.Context) -> tuple[str, ...]:
        out = []
        for item in v.string_list()(value, ctx):
            text = item.strip()
            if wildcard and text == "*":
                out.append("*")
                continue
            host = normalise_host(text)
            has_port = not text.endswith("]") if text.startswith("[") else text.count(":") == 1
            if host is None or has_port:
                raise ctx.fail(problem)
            out.append(host)
        return tuple(out)

    return parse


def _networks(value: Any, ctx: v.Context) -> tuple[IPNetwork, ...]:
    networks = []
    for item in v.string_list()(value, ctx):
        network = parse_network(item)
        if network is None:
            raise ctx.fail("each must be an IP address or a network such as 10.0.0.0/8")
        networks.append(network)
    return tuple(networks)


def _listen_address(value: Any, ctx: v.Context) -> str:
    """An address to listen on (an IP address or a host name, no port), in normal form; ``""``: unset."""
    text = v.string(value, ctx).strip()
    if not text:
        return ""
    host = normalise_host(text)
    if host is None or text.count(":") == 1:
        raise ctx.fail("must be an IP address or a host name, without a port")
    return host


def _sentry_dsn(value: Any, ctx: v.Context) -> v.Secret | None:
    """A Sentry DSN: ``https://<public key>@<host>/<project id>``; the value is never echoed."""
    if value in (None, ""):
        return None
    text = v.string(value, ctx).strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 -- raises ValueError for a port that is no port
    except ValueError:
        raise ctx.fail("must be a DSN such as https://<key>@<host>/<project>") from None
    project = parts.path.rstrip("/").rsplit("/", 1)[-1]
    if parts.scheme not in ("http", "https") or not parts.hostname or not parts.username or not project:
        raise ctx.fail("must be a DSN such as https://<key>@<host>/<project>")
    return v.Secret(text)


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Validated settings.  Field order is the README table's order."""

    # -- the reference's settings ---------------------------------------------------------------
    address: str = setting("127.0.0.1", parse=v.string, doc="address to listen on")
    port: int = setting(8000, parse=v.integer(0, 65535), doc="port to listen on")
    internal_url: str = setting(
        parse=v.required_url,
        doc="URL where other ID Contact components reach this plugin: the base of `attr_url`")
    external_url: str | None = setting(
        None, parse=lambda value, ctx: v.url(value, ctx) or None, shown_default="`internal_url`",
        doc="URL where agents' browsers reach it, if different")
    phonenumber: str = setting(
        parse=v.phonenumber,
        doc="the Amazon Connect number callers dial (`+31...`; may be empty, as in the reference's sample); "
            "spaces are dropped from the `tel:` URL")
    dtmf_length: int = setting(
        parse=_dtmf_length, shown_default="required (6-32)",
        doc="digits in a DTMF code; below 8 a warning at start (see `link_failure_budget`)")
    result_length: int = setting(parse=v.integer(16, 256), shown_default="required (16-256)",
                                 doc="characters in a result code (the secret part of `attr_url`)")
    decryption_key: keys.PrivateKey = setting(
        key="decryption_privkey", parse=v.key_table(private=True), secret=True,
        doc='`{type = "RSA" | "EC", key = "<PEM>"}` or `key_file = "<path>"`: this plugin\'s private key; '
            "RSA as PKCS#8 or PKCS#1, EC P-256")
    signature_key: keys.PublicKey = setting(
        key="signature_pubkey", parse=v.key_table(private=False), secret=True,
        doc="same form: the authentication plugins' public signing key (SPKI)")
    log_level: str = setting("normal", parse=v.choice(*LOG_LEVELS),
                             doc="`off`, `critical`, `normal`, `debug` (or Python's `error`, `warning`, `info`)")
    workers: int | None = setting(
        None, parse=v.integer(1, 1024), shown_default="accepted",
        doc="the reference's thread count; one event loop serves the requests here, so it is ignored "
            "(run more instances instead; `crypto_workers` sets the processes that read tokens)")
    crypto_workers: int | None = setting(
        None, parse=v.integer(0, 64), shown_default="one per usable CPU but the first, up to 4 (none with one CPU)",
        doc="processes beside the plugin's own that read auth-result tokens (the RSA work), so that it "
            "uses every core (usable CPUs: the process's affinity and a container's CPU quota count); "
            "`0`: the plugin's own threads read them")
    keep_alive: int = setting(5, parse=v.integer(0, 3600),
                              doc="seconds an idle HTTP keep-alive connection stays open (`0`: no limit)")

    # -- the database ---------------------------------------------------------------------------
    database_url: str = setting(
        "", parse=_database, shown_default="SQLite file `var/connect-plugin.sqlite3` beside the config",
        doc="`sqlite:///path`, `postgres://user@host:5432/db` (also `postgresql://`, with libpq's URL "
            "parameters) or a libpq `key=value` string; the reference's `[global.databases] session = "
            '{ url = "...", pool_size = 10, timeout = 5 }` works too')
    database_pool_size: int = setting(
        5, parse=v.integer(1, 100),
        doc="connections per instance (PostgreSQL); not used by SQLite, which has one writer "
            "and reads on the event loop")
    database_timeout: float = setting(
        1.0, parse=v.number(0.05, 60),
        doc="seconds any single database wait (connect, pool, statement) may take before the request gets `503`")

    # -- who may call what ------------------------------------------------------------------------
    agent_auth: str | None = setting(
        None, parse=_identifier, shown_default="none on a loopback address; else required",
        doc='how agents sign in before they see a citizen\'s data: `"oidc"`, `"alb"` or `"none"` '
            "(open to whoever reaches the server; warned at every start). Unset is allowed only when "
            "`address` is a loopback address")
    oidc_issuer: str = setting(
        "", parse=av.secure_url, shown_default="none",
        doc='`agent_auth = "oidc"`: the OpenID provider\'s issuer URL; its `/.well-known/openid-configuration` '
            "is read at start (and again later if the provider did not answer). https, or http on a loopback address")
    oidc_client_id: str = setting("", parse=av.client_id, shown_default="none",
                                  doc="the client (application) id this plugin has at the provider")
    oidc_client_secret: v.Secret | None = setting(
        None, parse=v.secret(1), secret=True, shown_default="none",
        doc="the client secret (keep it out of the file: `CONNECT_PLUGIN_OIDC_CLIENT_SECRET`, or the next key)")
    oidc_client_secret_file: str = setting(
        "", parse=av.file_path, shown_default="none",
        doc="a file holding the client secret (surrounding whitespace dropped), instead of `oidc_client_secret`")
    oidc_scopes: tuple[str, ...] = setting(
        ("openid", "email", "profile"), parse=av.scopes, shown_default='`["openid", "email", "profile"]`',
        doc="scopes asked for at sign-in (`openid` always); add the one your provider needs for the groups claim")
    oidc_groups_claim: str = setting(
        "groups", parse=av.claim_name,
        doc="the claim holding the agent's groups or roles (Entra ID: `groups` or `roles`; Cognito: "
            "`cognito:groups`); `oidc` and `alb`")
    oidc_allowed_groups: tuple[str, ...] = setting(
        (), parse=av.groups, shown_default="none",
        doc="an agent may see citizens' data when the groups claim holds any of these (names or ids, as the "
            "provider sends them); `oidc` and `alb`")
    oidc_allowed_domains: tuple[str, ...] = setting(
        (), parse=av.domains, shown_default="none",
        doc="... and/or when the agent's e-mail address is in one of these domains (`gemeente.nl`; an address "
            "the provider marks unverified does not count). With both rules, both must hold; `oidc` and `alb`")
    oidc_allow_any_agent: bool = setting(
        False, parse=v.boolean, shown_default="`false`",
        doc="`true`: every account the provider signs in may see data, without a group or domain rule (when "
            "the provider itself limits who may use this application). `oidc` and `alb` need a rule or this")
    agent_session_hours: float = setting(
        12.0, parse=v.number(0.05, 168), shown_default="`12`",
        doc="`oidc`: hours a sign-in lasts (the cookie's lifetime); then the agent signs in again")
    agent_cookie_secret: v.Secret | None = setting(
        None, parse=v.secret(32), secret=True, shown_default="none",
        doc="`oidc`: the secret that signs the sign-in cookie, at least 32 characters; the same on every "
            "instance (a sign-in made on one is valid on all); changing it ends every sign-in")
    agent_cookie_secret_file: str = setting(
        "", parse=av.file_path, shown_default="none",
        doc="a file holding that secret, instead of `agent_cookie_secret`")
    alb_signer_arn: str = setting(
        "", parse=av.alb_arn, shown_default="none",
        doc='`agent_auth = "alb"`: the ARN of the load balancer whose signed `x-amzn-oidc-data` header is '
            "trusted (`arn:aws:elasticloadbalancing:<region>:<account>:loadbalancer/app/<name>/<id>`)")
    alb_key_url: str = setting(
        "", parse=av.key_url, shown_default="`https://public-keys.auth.elb.{region}.amazonaws.com/{kid}`",
        doc="where the load balancer's public keys are, by key id; `{region}` comes from `alb_signer_arn`")
    link_phone_token: v.Secret | str | None = setting(
        None, parse=v.secret(16, allow_open=True), secret=True,
        shown_default="none on a loopback address; else required",
        doc="shared secret: `POST /link_phone` and `/end_call` need `Authorization: Bearer <token>` "
            '(at least 16 characters); `"none"` keeps the reference\'s open endpoint (warned at every start). '
            "Unset is allowed only when `address` is a loopback address")

    core_auth_user: str | None = setting(
        None, parse=v.optional_string, shown_default="none",
        doc="with `core_auth_password`: `POST /start_communication` and `GET /clean_db` need HTTP Basic "
            "authentication with this user name (the ecosystem's `comm_plugin.openapi.yml`); set both or neither")
    core_auth_password: v.Secret | None = setting(
        None, parse=v.secret(1), secret=True, shown_default="none",
        doc="the password of `core_auth_user`")
    link_failure_budget: int = setting(
        60, parse=v.integer(1, 100000),
        doc="failed `/link_phone` attempts allowed per minute (all instances on one PostgreSQL database "
            "together; per database file on SQLite); once spent, every link attempt, right code or not, "
            "gets `429` until the minute is over")

    # -- sessions and tokens ----------------------------------------------------------------------
    code_secret: v.Secret | None = setting(
        None, parse=v.secret_or_file(32), secret=True,
        shown_default="SQLite: a file beside the database; else derived from `decryption_privkey`",
        doc='at least 32 characters, or `{file = "<path>"}`: the key under which DTMF codes are stored '
            "(HMAC-SHA256), so that a copy of the database reveals no live code. Every instance on one "
            "database needs the same. Unset: on an SQLite file, `<database>.code-secret` beside it (mode 0600, "
            "made on first start); elsewhere derived from the decryption key with HKDF-SHA256, so rotating "
            "that key makes the codes of live sessions unusable")
    session_ttl: int = setting(
        3600, parse=v.integer(1, 7 * 24 * 3600),
        doc="seconds without activity (create, result, link) after which a session is deleted")
    cleanup_interval: int = setting(
        300, parse=v.integer(1, 300),
        doc="seconds between the server's own idle-session cleanups (at most 300)")
    token_leeway: int = setting(
        60, parse=v.integer(0, 600),
        doc="seconds of clock skew allowed when checking a token's `exp`/`iat` on receipt")
    max_token_lifetime: int = setting(
        3600, parse=v.integer(1, 7 * 24 * 3600),
        doc="seconds a token may be valid for: its `exp` at most this far after its `iat` and after its receipt")
    expected_issuer: str | None = setting(
        None, parse=v.optional_string, shown_default="none",
        doc="when set, a token's `iss` must equal it")
    expected_audience: str | None = setting(
        None, parse=v.optional_string, shown_default="none",
        doc="when set, a token's `aud` (a string or a list) must name it")
    max_body_size: int = setting(65536, parse=v.integer(1024, 16 * 1024 * 1024),
                                 doc="bytes; larger request bodies get `413`")
    code_attempts: int = setting(
        20, parse=v.integer(1, 1000),
        doc="how many fresh codes to try before answering `503 CodesExhausted`")

    # -- the agent's screens ----------------------------------------------------------------------
    default_locale: str = setting("nl", parse=v.locale,
                                  doc="language of labels when the browser asks for none we have")
    translations: Mapping[str, Mapping[str, str]] = setting(
        {}, parse=v.translations, shown_key="[global.translations.<locale>]", shown_default="none",
        doc='labels: purpose tag or attribute key = human label, e.g. `report_move = "Verhuizing doorgeven"`')
    allowed_origins: tuple[str, ...] = setting(
        (), parse=v.origins, shown_default="none",
        doc="origins (`https://agents.example.nl`) whose pages may read `/session_info` and "
            "`/session_events` across origins: for an attribute display served elsewhere with `window.SERVER_URL`")
    amazon_connect_url: str = setting(
        "", parse=v.url, shown_default="none",
        doc="the CCP URL of your Amazon Connect instance (`https://<instance>.my.connect.aws/ccp-v2`), "
            "for the agent page")
    ccp_login_url: str = setting(
        "", parse=v.url, shown_default="Amazon Connect's own sign-in",
        doc="where the CCP's sign-in pop-up goes, for an Amazon Connect instance whose agents sign in through "
            "SAML: your identity provider's address for the Amazon Connect application")
    streams_url: str = setting(
        "", parse=v.string, shown_default="`connect-streams-min.js`",
        doc="where the agent page loads the `amazon-connect-streams` library from "
            "(serve it yourself: see docs/agent-screens.md)")
    attribute_url: str = setting(
        "", parse=v.string, shown_default="`../attribute-ui/`",
        doc="the display URL, as in the reference's `config.js`: the agent page opens `<attribute_url>?<ContactId>` "
            "(one `?`, also when the URL already ends with it)")
    web_dir: str = setting(
        "", parse=v.directory, shown_default="none",
        doc="a folder whose `attribute-ui/...` and `amazon-connect-ui/...` files are served instead of the "
            "built-in ones (a deployer's `config.js`, the streams library)")
    events_keepalive: int = setting(15, parse=v.integer(1, 300),
                                    doc="seconds between keep-alive comments on a quiet event stream")

    # -- HTTP hygiene -----------------------------------------------------------------------------
    allowed_hosts: tuple[str, ...] = setting(
        (), parse=_hosts(wildcard=True), shown_default="the hosts of `internal_url` and `external_url`, and loopback",
        doc="more host names a request's `Host` header may name (ports are not compared); any other host gets "
            "`421 MisdirectedRequest` (DNS rebinding), except on `/health` (and on `/metrics` when it names an IP "
            'address, as scrapers do). `"*"` accepts every host')
    trusted_proxies: tuple[IPNetwork, ...] = setting(
        (), parse=_networks, shown_default="none",
        doc="addresses or networks (`10.0.0.0/8`) of the reverse proxies in front: only from these is "
            "`X-Forwarded-For` / `X-Real-Ip` / `X-Forwarded-Proto` believed")
    frame_ancestors: tuple[str, ...] = setting(
        (), parse=v.origins, shown_default="none (this server only)",
        doc="origins whose pages may frame the agent page `/amazon-connect-ui/` (a CRM embedding it); the "
            "display may be framed by this server, `external_url`, `allowed_origins` and these")
    feedback_hosts: tuple[str, ...] = setting(
        (), parse=_hosts(wildcard=False), shown_default="none: any host with a public address, over HTTPS",
        doc="the only hosts session feedback is posted to (over http or https, whatever their address); "
            "list your authentication plugins' internal hosts here. Cloud metadata addresses are never posted to")

    # -- operating ------------------------------------------------------------------------------
    log_format: str = setting(
        "plain", parse=v.choice("plain", "json"),
        doc='`"plain"`: one line of text per entry; `"json"`: one JSON object per line (time, level, logger, '
            "message, and for requests route, method, status, duration, client and request id), for a log "
            "collector. Either way no code, token, attribute value or contact id (see docs/operating.md)")
    metrics: bool = setting(
        False, parse=v.boolean, shown_default="`false`",
        doc="`true`: Prometheus metrics at `GET /metrics` (counts and latencies, never a citizen's data); "
            "each instance serves its own")
    metrics_address: str = setting(
        "", parse=_listen_address, shown_default="`127.0.0.1` with `metrics_port`",
        doc="with `metrics_port`: the address of the metrics' own small HTTP server")
    metrics_port: int | None = setting(
        None, parse=v.integer(1, 65535), shown_default="none: `/metrics` on the main server",
        doc="a port of their own for the metrics (a second HTTP server in the same process, serving only "
            "`/metrics`); then the main server answers `404` there")
    metrics_token: v.Secret | None = setting(
        None, parse=v.secret(16), secret=True, shown_default="none",
        doc="`/metrics` needs `Authorization: Bearer <token>` (at least 16 characters; for Prometheus' "
            "`authorization` scrape setting). Without it and without `metrics_port` on a network address, a "
            "warning at every start")
    sentry_dsn: v.Secret | None = setting(
        None, parse=_sentry_dsn, secret=True, shown_default="none",
        doc="report unexpected errors to Sentry (or a server that speaks its protocol) at this DSN; needs "
            "`pip install 'connect-plugin[sentry]'`. Reports hold the error's type and where in the code it "
            "happened, never the request, its headers or the values of variables")
    sentry_environment: str | None = setting(
        None, parse=v.optional_string, shown_default="Sentry's default",
        doc="the environment reports are filed under (`production`, `acceptance`, ...)")

    # -- plugins ----------------------------------------------------------------------------------
    plugins: Mapping[str, Any] = setting(
        {}, parse=v.table, shown_key="[global.plugins.<name>]", shown_default="none",
        doc="settings of installed plugins (see [Plugins](#plugins))")

    # -- not settings: facts about the loading ------------------------------------------------------
    source: str = "<defaults>"
    #: ``(level, message)`` pairs the loader has to say once logging is set up.
    notices: tuple[tuple[int, str], ...] = ()
    #: Keys the deployer set to ``"none"``: doors left open on purpose.
    open_on_purpose: frozenset[str] = frozenset()

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
    def crypto_worker_count(self) -> int:
        """How many crypto worker processes to run: ``crypto_workers``, else one per CPU but the event loop's (up to 4).

        With two CPUs that is one worker: the event loop keeps one core busy,
        the worker the other (two workers measured slower there: three busy
        processes on two cores).
        """
        if self.crypto_workers is not None:
            return self.crypto_workers
        return max(0, min(usable_cpus() - 1, 4))

    @property
    def log_level_number(self) -> int:
        """The Python logging level for ``log_level``."""
        return LOG_LEVELS[self.log_level]


def usable_cpus() -> int:
    """The CPUs this process may use: its affinity, capped by a cgroup CPU quota (a container's ``--cpus``)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    return max(1, min(cpus, math.ceil(quota))) if quota else max(1, cpus)


def _cgroup_cpu_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs' worth of time the cgroup allows (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), if limited."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        v1 = root / "cpu"
        quota_us = int((v1 / "cpu.cfs_quota_us").read_text())
        return None if quota_us <= 0 else quota_us / int((v1 / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None


def declared() -> list[tuple[Field[Any], Spec]]:
    """Every setting's field and declaration, in declaration order."""
    out = []
    for f in fields(Settings):
        spec = f.metadata.get("setting")
        if spec is not None:
            out.append((f, spec if spec.key else _with_key(spec, f.name)))
    return out


def _with_key(spec: Spec, name: str) -> Spec:
    return Spec(name, spec.parse, spec.doc, spec.default, spec.shown_default, spec.shown_key)


def known_keys() -> frozenset[str]:
    """The keys a configuration may hold."""
    return frozenset(spec.key for _, spec in declared())


def shown_default(spec: Spec) -> str:
    """The README's "default" column for a setting."""
    if spec.shown_default:
        return spec.shown_default
    if spec.default is REQUIRED:
        return "required"
    if spec.default in (None, "", (), {}):
        return "none"
    return f"`{spec.default}`"


def markdown_table() -> str:
    """The README's configuration table, made from the declarations."""
    lines = ["| key | default | what it is |", "| --- | --- | --- |"]
    for _, spec in declared():
        key = f"`{spec.shown_key or spec.key}`"
        doc = spec.doc.replace("|", "\\|")
        lines.append(f"| {key} | {shown_default(spec)} | {doc} |")
    return "\n".join(lines) + "\n"

