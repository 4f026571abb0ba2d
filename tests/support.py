"""Test helpers: keys, configuration files, an HTTP client, and plugin processes.

Everything here is real: real keys, real TOML files, real HTTP over loopback,
real ``connect-plugin serve`` processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from Crypto.PublicKey import RSA
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.iostream import StreamClosedError

from connect_plugin import keys

ROOT = Path(__file__).resolve().parent.parent


def cli_command() -> list[str]:
    """How to run ``connect-plugin``: the installed console script, as deployers do."""
    script = Path(sys.executable).parent / "connect-plugin"
    return [str(script)] if script.exists() else [sys.executable, "-m", "connect_plugin"]


POSTGRES_URL = os.environ.get("CONNECT_PLUGIN_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass(frozen=True)
class KeySet:
    """The four keys of a deployment: the plugin's pair and an authentication plugin's pair."""

    decrypt: keys.PrivateKey  # the plugin's (decryption_privkey)
    sign: keys.PrivateKey  # the authentication plugin's

    @property
    def encrypt(self) -> keys.PublicKey:
        """What an authentication plugin encrypts to."""
        return self.decrypt.public()

    @property
    def verify(self) -> keys.PublicKey:
        """What the plugin verifies with (signature_pubkey)."""
        return self.sign.public()


@cache
def rsa_keyset() -> KeySet:
    """One RSA key set per test run (generation is slow)."""
    return KeySet(keys.PrivateKey("RSA", RSA.generate(2048)), keys.PrivateKey("RSA", RSA.generate(2048)))


@cache
def ec_keyset() -> KeySet:
    """One P-256 key set per test run: ECDH-ES and ES256."""
    return KeySet(new_private_key("EC"), new_private_key("EC"))


def new_private_key(kind: str) -> keys.PrivateKey:
    """A fresh RSA 2048 or P-256 key made by ``cryptography``, loaded from PKCS#8 PEM as configuration is."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if kind == "RSA" else \
        ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return keys.load_private_key(kind, pem)


def toml_value(value: Any) -> str:
    """A Python value as a TOML value (strings, numbers, bools, lists, inline tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def write_config(path: Path, keyset: KeySet, **settings: Any) -> Path:
    """Write a reference-style TOML file: ``[global]`` settings and inline PEM key tables."""
    values: dict[str, Any] = {
        "internal_url": "http://127.0.0.1:8000",
        "phonenumber": "+31850000000",
        "dtmf_length": 10,
        "result_length": 32,
        "log_level": "normal",
    }
    values.update(settings)
    tables = {k: v for k, v in values.items() if isinstance(v, dict) and k != "databases"}
    lines = ["[global]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in values.items() if k not in tables and v is not None]
    lines += [
        "",
        "[global.decryption_privkey]",
        f'type = "{keyset.decrypt.kind}"',
        f'key = """\n{keyset.decrypt.pem.strip()}\n"""',
        "",
        "[global.signature_pubkey]",
        f'type = "{keyset.verify.kind}"',
        f'key = """\n{keyset.verify.pem.strip()}\n"""',
    ]
    for name, table in tables.items():
        for sub, inner in table.items():
            if isinstance(inner, dict):
                lines += ["", f"[global.{name}.{sub}]"] + [f"{k} = {toml_value(v)}" for k, v in inner.items()]
            else:
                lines += ["", f"[global.{name}]", f"{sub} = {toml_value(inner)}"]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Response:
    """What a caller sees: status, headers and body."""

    status: int
    headers: Any
    body: bytes

    @property
    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


class Api:
    """A tiny HTTP client for the plugin's endpoints."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = AsyncHTTPClient()

    async def call(self, method: str, path: str, body: Any = None, *, headers: dict[str, str] | None = None,
                   raw: bytes | str | None = None, timeout: float = 20.0) -> Response:
        """Send one request; never raises for an HTTP error status."""
        data: bytes | None = None
        hdrs = dict(headers or {})
        if raw is not None:
            data = raw.encode() if isinstance(raw, str) else raw
        elif body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        url = path if path.startswith("http") else self.base_url + path
        request = HTTPRequest(url, method=method, body=data, headers=hdrs, request_timeout=timeout,
                              allow_nonstandard_methods=True)
        try:
            response = await self.http.fetch(request, raise_error=False)
        except (OSError, StreamClosedError, HTTPClientError) as error:
            raise ConnectionError(f"{method} {path}: {error}") from None
        if response.code == 599:
            raise ConnectionError(f"{method} {path}: {response.error}")
        return Response(response.code, response.headers, response.body or b"")

    async def start(self, purpose: str = "report_move", auth_result: str | None = None) -> Response:
        """``POST /start_communication``."""
        body: dict[str, Any] = {"purpose": purpose}
        if auth_result is not None:
            body["auth_result"] = auth_result
        return await self.call("POST", "/start_communication", body)

    async def post_result(self, attr_url_or_path: str, token: str) -> Response:
        """``POST /session_result/<code>`` with the token as ``application/jwt``."""
        path = attr_url_or_path
        if path.startswith("http"):
            path = "/session_result/" + path.rsplit("/session_result/", 1)[1]
        return await self.call("POST", path, raw=token, headers={"Content-Type": "application/jwt"})

    async def link(self, dtmf: str, contact_id: str, token: str | None = None) -> Response:
        """``POST /link_phone``."""
        headers = {"Authorization": f"Bearer {token}"} if token else None
        return await self.call("POST", "/link_phone", {"dtmf": dtmf, "sessionid": contact_id}, headers=headers)

    async def info(self, contact_id: str) -> Response:
        """``GET /session_info/<contact id>``."""
        return await self.call("GET", f"/session_info/{contact_id}")


async def raw_request(port: int, head: bytes, timeout: float = 20.0) -> tuple[int | None, bytes]:
    """Send ``head`` (a request line and headers) and read until the server closes; (status, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(-1), timeout)
    except ConnectionResetError:
        data = b""
    finally:
        writer.close()
    if not data:
        return None, b""
    status_line, _, rest = data.partition(b"\r\n")
    _headers, _, body = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), body


def dtmf_of(started: Response | dict[str, Any] | str) -> str:
    """The code in ``tel:<number>,<code>``: of a ``start_communication`` answer, its JSON, or the URL itself."""
    if isinstance(started, Response):
        started = started.json
    client_url = started["client_url"] if isinstance(started, dict) else started
    return client_url.rsplit(",", 1)[1]


def run_private(coro: Any) -> Any:
    """Run a coroutine on a private loop, leaving the current event loop alone."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def postgres_admin(url: str, sql: str) -> None:
    """Run one SQL statement on the PostgreSQL server at ``url`` (CREATE/DROP DATABASE, DELETE)."""
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url, timeout=3)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    run_private(run())


async def count_sessions(url: str) -> int:
    """How many sessions the database at ``url`` holds, read directly."""
    from sqlalchemy import func, select

    from connect_plugin.stores.engine import make_engine
    from connect_plugin.stores.schema import session_table

    engine = make_engine(url, pool_size=1, timeout=5)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(select(func.count()).select_from(session_table))).scalar_one()
    finally:
        await engine.dispose()


async def count_rows(url: str, table: str) -> int:
    """How many rows a table of the database at ``url`` holds, read directly."""
    from sqlalchemy import func, select
    from sqlalchemy import table as sql_table

    from connect_plugin.stores.engine import make_engine

    engine = make_engine(url, pool_size=1, timeout=5)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(select(func.count()).select_from(sql_table(table)))).scalar_one()
    finally:
        await engine.dispose()


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, never the same one twice in a run.

    (Two processes started one after the other without waiting would otherwise
    be handed the same port before either of them has bound it.)
    """
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def listening_pids(port: int) -> set[int]:
    """The processes with a listening TCP socket on ``port`` (Linux, from /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
                inodes.add(fields[9])
    pids = set()
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            links = [os.readlink(fd) for fd in fd_dir.iterdir()]
        except OSError:
            continue
        if any(link.startswith("socket:[") and link[8:-1] in inodes for link in links):
            pids.add(int(fd_dir.parent.name))
    return pids


class PluginProcess:
    """``connect-plugin serve`` in a child process, on its own port."""

    def __init__(self, config: Path, *, env: dict[str, str] | None = None, port: int | None = None,
                 log_dir: Path | None = None) -> None:
        self.config = config
        self.port = port or free_port()
        self.env = {**os.environ, "CONNECT_PLUGIN_PORT": str(self.port), **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = (log_dir or config.parent) / f"{config.stem}.{self.port}.log"

    @property
    def base_url(self) -> str:
        """Where the process serves."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait: bool = True, timeout: float = 30.0) -> PluginProcess:
        """Start the process; with ``wait``, return once it accepts connections."""
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [*cli_command(), "serve", "--config", str(self.config)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=str(self.config.parent),
        )
        if wait:
            self.wait_listening(timeout)
        return self

    def wait_listening(self, timeout: float = 30.0) -> None:
        """Block until *this* process accepts connections on its port (or fail with its log).

        Another process listening on the port (a straggler of an earlier test)
        is an error, not a success: the test would talk to the wrong server.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"plugin exited with {self.proc.returncode}:\n{self.output()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    pass
            except OSError:
                time.sleep(0.05)
                continue
            owners = listening_pids(self.port)
            if self.proc is None or self.proc.pid in owners:
                return
            if owners:
                raise RuntimeError(f"port {self.port} is held by another process ({sorted(owners)}), not the plugin")
            time.sleep(0.05)
        raise TimeoutError(f"plugin did not listen within {timeout}s:\n{self.output()}")

    def output(self) -> str:
        """Everything the process printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self, timeout: float = 20.0) -> int:
        """SIGTERM, then wait; returns the exit status."""
        return self._signal(signal.SIGTERM, timeout)

    def kill(self) -> int:
        """SIGKILL, then wait."""
        return self._signal(signal.SIGKILL, 10.0)

    def _signal(self, sig: int, timeout: float) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


#: A folder to put on ``PYTHONPATH`` so that a ``connect-plugin serve`` process loads the few-codes test plugin.
FEW_CODES_PATH = ROOT / "tests" / "plugins" / "few_codes"


@contextlib.contextmanager
def two_instances_on(tmp_path: Path, keyset: KeySet, settings: dict[str, Any]) -> Iterator[tuple[Api, Api]]:
    """Two ``connect-plugin serve`` processes sharing one store, codes from a space of 10,000.

    ``settings`` names the store (``database_url``, and ``plugins`` for a plugin's store);
    the few-codes test plugin makes collisions between the instances certain, and the
    link failure budget is high enough for the races the tests run.
    """
    plugins = {**few_codes(digits=4), **settings.get("plugins", {})}
    config = write_config(tmp_path / "shared.toml", keyset, **{**settings, "plugins": plugins},
                          link_failure_budget=1000, database_timeout=5.0)
    env = {"PYTHONPATH": str(FEW_CODES_PATH)}
    a = PluginProcess(config, log_dir=tmp_path, env=env).start()
    b = PluginProcess(config, log_dir=tmp_path, env=env).start()
    try:
        yield Api(a.base_url), Api(b.base_url)
    finally:
        for proc in (a, b):
            proc.terminate()


def few_codes(prefix: str = "424242", digits: int = 4) -> dict[str, Any]:
    """The ``plugins`` setting that turns on the few-codes test plugin (``10 ** digits`` possible codes)."""
    return {"few_codes": {"prefix": prefix, "digits": digits}}
