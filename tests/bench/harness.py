"""The benchmark's tools: keys and configuration, plugin processes, wrk, tokens, databases.

Everything talks to 127.0.0.1 only.  Used by ``tests.bench.perf``.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support import PluginProcess, cli_command, free_port

HERE = Path(__file__).resolve().parent
WRK_MISSING = "wrk is missing: install it with `apt-get install -y wrk` (Debian), then run `tox -e perf` again"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class Workspace:
    """A scratch folder with the run's keys (PEM files, as in ``sample/keys``) and configurations."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._minter: ProcessPoolExecutor | None = None
        keys = root / "keys"
        keys.mkdir(parents=True, exist_ok=True)
        self.decrypt_key = keys / "plugin-decrypt.key.pem"
        self.encrypt_key = keys / "plugin-encrypt.pub.pem"
        self.sign_key = keys / "auth-sign.key.pem"
        self.verify_key = keys / "auth-verify.pub.pem"
        for private, public in ((self.decrypt_key, self.encrypt_key), (self.sign_key, self.verify_key)):
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # OpenSSL: much faster
            private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
            public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                             serialization.PublicFormat.SubjectPublicKeyInfo))

    def minter(self) -> ProcessPoolExecutor:
        """Two processes that mint tokens with the run's keys (RS256 signing is slow); started once."""
        if self._minter is None:
            self._minter = ProcessPoolExecutor(2, initializer=_mint_init,
                                               initargs=(self.encrypt_key.read_text(), self.sign_key.read_text()))
        return self._minter

    def close(self) -> None:
        """Stop the minting processes."""
        if self._minter is not None:
            self._minter.shutdown()
            self._minter = None

    def config(self, name: str, database_url: str, **settings: Any) -> Path:
        """A sample-style TOML configuration ``<name>.toml`` for ``database_url``."""
        values: dict[str, Any] = {
            "address": "127.0.0.1",
            "internal_url": "http://127.0.0.1:8000",
            "phonenumber": "+31850000000",
            "dtmf_length": 10,
            "result_length": 32,
            "log_level": "normal",
            "database_url": database_url,
            **settings,
        }
        lines = ["[global]"] + [f"{key} = {json.dumps(value)}" for key, value in values.items()]
        lines += ["", "[global.decryption_privkey]", 'type = "RSA"', f"key_file = {json.dumps(str(self.decrypt_key))}",
                  "", "[global.signature_pubkey]", 'type = "RSA"', f"key_file = {json.dumps(str(self.verify_key))}"]
        path = self.root / f"{name}.toml"
        path.write_text("\n".join(lines) + "\n")
        return path


# --------------------------------------------------------------------------- processes


class Server(PluginProcess):
    """``connect-plugin serve`` for one phase of the benchmark."""

    def start_healthy(self, timeout: float = 60.0) -> Server:
        """Start and return once ``GET /health`` answers 200."""
        self.start(wait=False)
        first_answer(self, time.perf_counter(), timeout)
        return self

    def total_rss_mb(self) -> float:
        """The resident sets of the server and its child processes (crypto workers), added up, in MB."""
        assert self.proc is not None
        return sum(rss_mb(pid) for pid in process_tree(self.proc.pid))

    def footprint(self) -> tuple[float, float, float]:
        """MB: the RSS of the server and its child processes added up, the server's own RSS, their PSS added up."""
        assert self.proc is not None
        tree = process_tree(self.proc.pid)
        return sum(rss_mb(pid) for pid in tree), rss_mb(self.proc.pid), sum(pss_mb(pid) for pid in tree)

    def workers(self) -> int:
        """How many child processes the server runs now."""
        assert self.proc is not None
        return len(process_tree(self.proc.pid)) - 1


def rss_mb(pid: int) -> float:
    """``VmRSS`` of a process from ``/proc/<pid>/status``, in MB (10^6 bytes)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError(f"no VmRSS for process {pid}")


def pss_mb(pid: int) -> float:
    """Proportional set size of a process (``/proc/<pid>/smaps_rollup``), in MB: each shared page counted once.

    Added up over the server and its workers, this is close to what a
    container's memory limit counts; summed RSS counts the pages of the
    shared libraries (libpython, OpenSSL) once per process.
    """
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024 / 1e6
    raise RuntimeError(f"no Pss for process {pid}")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from ``/proc/<pid>/task/<tid>/children``)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(child) for child in (task / "children").read_text().split()]
        except FileNotFoundError:  # it exited meanwhile
            continue
    return found


def first_answer(server: PluginProcess, began: float, timeout: float = 60.0) -> float:
    """Poll ``GET /health`` as tightly as a loopback socket allows; seconds from ``began`` to a 200."""
    request = f"GET /health HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nConnection: close\r\n\r\n".encode()
    deadline = began + timeout
    while time.perf_counter() < deadline:
        if server.proc is not None and server.proc.poll() is not None:
            raise RuntimeError(f"plugin exited with {server.proc.returncode}:\n{server.output()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
                sock.sendall(request)
                head = sock.recv(64)
            if head.startswith(b"HTTP/1.1 200"):
                return time.perf_counter() - began
        except OSError:
            pass
        time.sleep(0.002)
    raise TimeoutError(f"no answer from /health within {timeout}s:\n{server.output()[-2000:]}")


def start_to_first_answer(config: Path, workdir: Path) -> float:
    """Seconds from starting ``connect-plugin serve`` to its first ``/health`` 200; then stop it."""
    server = Server(config, log_dir=workdir)
    began = time.perf_counter()
    server.start(wait=False)
    try:
        return first_answer(server, began)
    finally:
        server.terminate()


@contextmanager
def bare_server() -> Iterator[int]:
    """The bare Tornado handler (``tests.bench.bare``) in its own process; yields its port."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tests.bench.bare", "--port", str(port)], cwd=HERE.parent.parent)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the bare Tornado server did not start") from None
                time.sleep(0.02)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def loadgen(mode: str, port: int, *args: str, timeout: float = 600) -> dict[str, Any]:
    """Run ``tests.bench.loadgen`` in its own process; its JSON answer."""
    done = subprocess.run([sys.executable, "-m", "tests.bench.loadgen", mode, "--port", str(port), *args],
                          cwd=HERE.parent.parent, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"loadgen {mode} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


# --------------------------------------------------------------------------- wrk


def require_wrk() -> str:
    """The wrk executable, or SystemExit with one line saying how to install it."""
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit(WRK_MISSING)
    return path


def wrk(port: int, script: str, seconds: float, *script_args: str, connections: int = 8) -> dict[str, Any]:
    """Run wrk (one thread per connection) with a script of this folder; the script's ``PERF`` JSON."""
    command = [require_wrk(), f"-t{connections}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
               "--timeout", "10s", "-s", str(HERE / script), f"http://127.0.0.1:{port}"]
    if script_args:
        command += ["--", *script_args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("PERF "):
            result = json.loads(line[5:])
            result["seconds"] = result["duration_us"] / 1e6
            return result
    raise RuntimeError(f"wrk gave no result (exit {done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")


# --------------------------------------------------------------------------- tokens

_mint_keys: tuple[Any, Any] | None = None


def _mint_init(encrypt_pem: str, sign_pem: str) -> None:
    global _mint_keys
    from connect_plugin.keys import load_private_key, load_public_key

    _mint_keys = (load_public_key("RSA", encrypt_pem), load_private_key("RSA", sign_pem))


def _mint_chunk(tag: str, first: int, count: int) -> list[str]:
    from connect_plugin.model import AuthResult
    from connect_plugin.tokens import make_auth_result

    assert _mint_keys is not None
    encrypt, sign = _mint_keys
    return [make_auth_result(AuthResult("succes", {"email": f"{tag}-{i}@example.com", "fullname": "Jane Doe"}),
                             encrypt, sign) for i in range(first, first + count)]


def mint_tokens(space: Workspace, count: int, tag: str) -> list[str]:
    """``count`` distinct auth-result tokens (distinct attributes), minted by the workspace's process pool."""
    chunk = 250
    firsts = range(0, count, chunk)
    parts = space.minter().map(_mint_chunk, [tag] * len(firsts), firsts, [min(chunk, count - f) for f in firsts])
    return [token for part in parts for token in part]


def token_files(folder: Path, tokens: list[str], threads: int = 8) -> Path:
    """Deal ``tokens`` to ``<folder>/1.txt`` .. ``<threads>.txt`` (wrk's threads); returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for thread in range(threads):
        (folder / f"{thread + 1}.txt").write_text("\n".join(tokens[thread::threads]) + "\n")
    return folder


# --------------------------------------------------------------------------- PostgreSQL


def loopback_only(url: str) -> str:
    """``url`` unchanged if it names this machine; SystemExit otherwise (the benchmark loads it hard)."""
    if urlsplit(url).hostname not in LOOPBACK:
        raise SystemExit(f"the benchmark only talks to 127.0.0.1; not to {urlsplit(url).hostname}")
    return url


def postgres_reachable(admin_url: str) -> bool:
    """Whether the PostgreSQL server answers."""
    try:
        asyncio.run(_pg_admin(admin_url, "SELECT 1"))
    except Exception:  # any failure (refused, timeout, authentication) means "not there"
        return False
    return True


@contextmanager
def postgres_database(admin_url: str, space: Workspace, name: str) -> Iterator[str]:
    """A throwaway database on the server of ``admin_url``, migrated with ``connect-plugin migrate``."""
    database = f"perf_{name}_{secrets.token_hex(4)}"
    asyncio.run(_pg_admin(admin_url, f'CREATE DATABASE "{database}"'))
    parts = urlsplit(admin_url)
    url = urlunsplit((parts.scheme, parts.netloc, f"/{database}", "", ""))
    try:
        subprocess.run([*cli_command(), "migrate", "--config", str(space.config(f"migrate-{database}", url))],
                       check=True, capture_output=True, timeout=120)
        yield url
    finally:
        asyncio.run(_pg_admin(admin_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


async def _pg_admin(admin_url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect("postgresql://" + admin_url.split("://", 1)[1], timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def load_average() -> str:
    """The first three fields of ``/proc/loadavg``."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class RssSampler:
    """Samples a process's RSS every ``interval`` seconds in a thread: ``[(seconds, MB), ...]``."""

    def __init__(self, read: Callable[[], float], interval: float = 1.0) -> None:
        self.read, self.interval = read, interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        began = time.monotonic()
        while not self._stop.wait(self.interval):
            self.samples.append((time.monotonic() - began, self.read()))

    def __enter__(self) -> list[tuple[float, float]]:
        self._thread.start()
        return self.samples

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ``ys`` over ``xs``."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0
