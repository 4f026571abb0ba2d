"""``connect-plugin demo``: the whole flow of one call, step by step, for a newcomer.

Without ``--url`` it starts a throwaway plugin in this process: loopback, a
free port, a temporary SQLite file and freshly made EC P-256 keys, all in a
temporary folder that is removed at the end.  With ``--url`` it talks to a
running plugin instead, and needs that plugin's keys to make a token it
accepts (``--config`` of that plugin for the encryption key and the Lambda's
token, ``--encrypt-key`` and ``--sign-key`` as ``connect-plugin token`` takes them).

Each step prints its HTTP exchange: method, path, status and JSON bodies, with
tokens shortened.  The codes are printed: explaining them is the point.  Then
it prints the attribute display's address and waits for Enter (``--no-wait``:
not), ends the call, and stops and removes what it started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import shutil
import socket
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

from Crypto.PublicKey import ECC

from . import keys, tokens
from .config import Secret, Settings, load_settings
from .errors import ConfigError
from .model import AuthResult

EXIT_FAILED = 1
EXIT_USAGE = 2
TIMEOUT = 10
SHOWN_TOKEN = 24  # characters of a token shown before the ellipsis
PURPOSE = "report_move"
ATTRIBUTES = {"fullname": "Jane Doe", "email": "jane@example.com"}


class DemoError(Exception):
    """The demo cannot go on; the message says why (never with key material or a whole token)."""


class DemoFailed(Exception):
    """A step did not answer as the flow says it should."""


def register(subparsers: Any) -> None:
    """Add the ``demo`` command to an argparse sub-parsers object."""
    text = "show the whole flow of one call, step by step, on a throwaway plugin (or a running one)"
    parser = subparsers.add_parser("demo", help=text, description=text)
    parser.add_argument("--url", metavar="URL", help="a running plugin to use instead of a throwaway one")
    parser.add_argument("--config", metavar="FILE",
                        help="with --url: that plugin's settings (its encryption key and link_phone_token)")
    parser.add_argument("--encrypt-key", metavar="PUB.pem", help="with --url: the plugin's public encryption key")
    parser.add_argument("--sign-key", metavar="PRIV.pem",
                        help="with --url: an authentication plugin's private signing key")
    parser.add_argument("--link-token", metavar="TOKEN", help="with --url: the plugin's link_phone_token")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for Enter before cleaning up")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the demo; 0 when every step went as it should."""
    out = sys.stdout
    try:
        if args.url:
            return _show(_running_plugin(args), out, wait=not args.no_wait)
        with ThrowawayPlugin() as throwaway:
            print(f"Started a throwaway plugin at {throwaway.url} (SQLite and new keys in {throwaway.folder}).",
                  file=out)
            target = Target(throwaway.url, throwaway.encrypt, throwaway.sign, throwaway.link_token)
            status = _show(target, out, wait=not args.no_wait)
        print(f"Stopped the throwaway plugin and removed {throwaway.folder}.", file=out)
        return status
    except DemoError as error:
        print(f"connect-plugin demo: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as error:
        print(f"connect-plugin demo: configuration error: {error}", file=sys.stderr)
        return EXIT_USAGE


# --------------------------------------------------------------------------- which plugin, which keys


@dataclass
class Target:
    """A plugin to show the flow on: where it is and the keys a token for it needs."""

    url: str
    encrypt: keys.PublicKey
    sign: keys.PrivateKey
    link_token: str | None = None


def _running_plugin(args: argparse.Namespace) -> Target:
    parts = urlsplit(args.url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DemoError("--url needs an http(s) URL, such as http://127.0.0.1:8000")
    encrypt: keys.PublicKey | None = None
    link_token = args.link_token
    if args.config:
        settings = load_settings(args.config)
        encrypt = settings.decryption_key.public()
        if link_token is None and isinstance(settings.link_phone_token, Secret):
            link_token = settings.link_phone_token.reveal()
    if args.encrypt_key:
        encrypt = _key_file(args.encrypt_key, "--encrypt-key", private=False)
    if encrypt is None or not args.sign_key:
        raise DemoError(
            "with --url the demo makes a token that plugin accepts: give --config (or --encrypt-key) and "
            "--sign-key, the private half of the key in its signature_pubkey (for sample/config.toml: "
            "sample/keys/auth-sign.key.pem)")
    sign = _key_file(args.sign_key, "--sign-key", private=True)
    return Target(args.url.rstrip("/"), encrypt, sign, link_token)


def _key_file(path: str, option: str, *, private: bool) -> Any:
    try:
        pem = Path(path).read_text()
        kind = keys.guess_kind(pem)
        return keys.load_private_key(kind, pem) if private else keys.load_public_key(kind, pem)
    except (OSError, UnicodeDecodeError) as error:
        raise DemoError(f"{option}: cannot read {path}: {getattr(error, 'strerror', None) or 'not text'}") from None
    except keys.KeyLoadError as error:
        raise DemoError(f"{option}: {error}") from None


class ThrowawayPlugin:
    """A plugin on loopback, on its own event loop in a thread, over files in a temporary folder.

    A context manager: entering starts it, leaving stops it and removes the folder.
    """

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="connect-plugin-demo-"))
        self.url = ""
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._serve, name="demo-plugin", daemon=True)
        self.decrypt = keys.PrivateKey("EC", ECC.generate(curve="P-256"))
        self.sign = keys.PrivateKey("EC", ECC.generate(curve="P-256"))
        self.encrypt = self.decrypt.public()
        self.link_token: str | None = None

    def __enter__(self) -> ThrowawayPlugin:
        try:
            self._thread.start()
            self._ready.wait(60)
            if self._failure is not None or not self.url:
                raise DemoError(f"the throwaway plugin did not start: {self._failure or 'no answer in 60 s'}")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
        shutil.rmtree(self.folder, ignore_errors=True)

    def _config(self, port: int) -> Path:
        config = self.folder / "demo.toml"
        config.write_text(
            "[global]\n"
            f'address = "127.0.0.1"\nport = {port}\ninternal_url = "http://127.0.0.1:{port}"\n'
            'phonenumber = "+31850000000"\ndtmf_length = 10\nresult_length = 32\nlog_level = "off"\n'
            f'database_url = "sqlite:///{self.folder / "demo.sqlite3"}"\n'
            f'[global.decryption_privkey]\ntype = "EC"\nkey = """\n{self.decrypt.pem.strip()}\n"""\n'
            f'[global.signature_pubkey]\ntype = "EC"\nkey = """\n{self.sign.public().pem.strip()}\n"""\n'
            '[global.translations.en]\nreport_move = "Report a move"\nfullname = "Name"\nemail = "Email address"\n'
            '[global.translations.nl]\nreport_move = "Verhuizing doorgeven"\nfullname = "Naam"\n'
            'email = "E-mailadres"\n'
        )
        return config

    def _serve(self) -> None:
        from tornado.netutil import bind_sockets

        from . import migrate

        try:
            sockets = bind_sockets(0, "127.0.0.1")
            # Only this file: settings in the caller's environment (a database, say) must not reach the demo.
            settings = load_settings(self._config(sockets[0].getsockname()[1]), environ={})
            migrate.upgrade(settings.database_url)
            asyncio.run(self._main(settings, sockets))
        except BaseException as error:  # reported by __enter__; the thread must not die silently
            self._failure = error
            self._ready.set()

    async def _main(self, settings: Settings, sockets: list[socket.socket]) -> None:
        from .app import Runtime

        runtime = Runtime(settings)
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        await runtime.start(sockets)
        self.url = settings.internal_url
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runtime.stop(grace=2)


# --------------------------------------------------------------------------- the steps


@dataclass
class Exchange:
    """One HTTP request and its answer."""

    status: int
    reason: str
    body: bytes

    def json(self) -> Any:
        """The answer's body as JSON (``None`` when it is empty or not JSON)."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


class Narrator:
    """Sends requests to the plugin and prints each exchange readably."""

    def __init__(self, base_url: str, out: TextIO) -> None:
        self.base_url = base_url
        self.out = out
        self.step = 0

    def say(self, text: str = "") -> None:
        """A line of explanation."""
        print(text, file=self.out, flush=True)

    def heading(self, text: str) -> None:
        """The start of the next step."""
        self.step += 1
        self.say()
        self.say(f"== {self.step}. {text}")

    def call(self, method: str, path: str, body: Any = None, *, raw: str | None = None,
             content_type: str = "application/json", headers: dict[str, str] | None = None) -> Exchange:
        """Send one request; print it and its answer."""
        sent_headers = dict(headers or {})
        data: bytes | None = None
        shown = ""
        if raw is not None:
            data = raw.encode("ascii")
            sent_headers["Content-Type"] = content_type
            shown = shorten(raw)
        elif body is not None:
            data = json.dumps(body).encode("utf-8")
            sent_headers["Content-Type"] = content_type
            shown = json.dumps(body, ensure_ascii=False)
        self.say(f"> {method} {path}")
        for name, value in sent_headers.items():
            self.say(f"> {name}: {'Bearer <link_phone_token>' if name == 'Authorization' else value}")
        if shown:
            self.say(f"> {shown}")
        exchange = self._send(method, path, data, sent_headers)
        self.say(f"< {exchange.status} {exchange.reason}")
        parsed = exchange.json()
        if parsed is not None:
            text = json.dumps(parsed, indent=2, ensure_ascii=False)
            for line in text.splitlines():
                self.say(f"< {line}")
        elif exchange.body:
            self.say(f"< {shorten(exchange.body.decode('utf-8', 'replace'))}")
        return exchange

    def _send(self, method: str, path: str, data: bytes | None, headers: dict[str, str]) -> Exchange:
        request = urllib.request.Request(  # noqa: S310 (the scheme is checked in _running_plugin)
            self.base_url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
                return Exchange(response.status, response.reason, response.read())
        except urllib.error.HTTPError as error:
            return Exchange(error.code, error.reason, error.read())
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise DemoError(f"cannot reach {self.base_url}: {getattr(reason, 'strerror', None) or reason}") from None


def shorten(token: str, keep: int = SHOWN_TOKEN) -> str:
    """A token as the demo shows it: its start, and how long it is."""
    return token if len(token) <= keep + 8 else f"{token[:keep]}…({len(token)} characters)"


def _expect(exchange: Exchange, status: int, what: str) -> None:
    if exchange.status != status:
        raise DemoFailed(f"{what}: expected {status}, got {exchange.status}")


def _show(target: Target, out: TextIO, *, wait: bool) -> int:
    n = Narrator(target.url, out)
    contact = f"demo-call-{secrets.token_hex(4)}"
    lambda_headers = {"Authorization": f"Bearer {target.link_token}"} if target.link_token else None
    try:
        n.heading("The core starts a session for the citizen's purpose")
        started = n.call("POST", "/start_communication", {"purpose": PURPOSE})
        _expect(started, 200, "start_communication")
        client_url, attr_url = started.json()["client_url"], started.json()["attr_url"]
        number, _, dtmf = client_url.removeprefix("tel:").rpartition(",")
        n.say(f"The citizen is shown {client_url}: a phone dials {number}, waits (the comma), then sends")
        n.say(f"{dtmf} as tones: the <code> the caller types. attr_url is where the result goes.")

        n.heading("An authentication plugin posts the citizen's verified attributes")
        token = tokens.make_auth_result(AuthResult("succes", dict(ATTRIBUTES)), target.encrypt, target.sign)
        n.say(f"It signs them and encrypts them to the plugin: a JWE of {len(token)} characters "
              "(what `connect-plugin token` makes).")
        result_path = "/session_result/" + attr_url.rsplit("/session_result/", 1)[1]
        _expect(n.call("POST", result_path, raw=token, content_type="application/jwt"), 200, "session_result")
        n.say("The plugin checked it and stored it as received: the database holds no attribute in clear.")

        n.heading("The citizen calls; the contact flow's Lambda links the call to the code")
        n.say(f"Amazon Connect names the call by its ContactId; this demo makes one up: {contact}.")
        linked = n.call("POST", "/link_phone", {"dtmf": dtmf, "sessionid": contact}, headers=lambda_headers)
        _expect(linked, 200, "link_phone")

        n.heading("The agent's attribute display reads the call's session")
        info = n.call("GET", f"/session_info/{contact}")
        if info.status == 401:
            n.say("This plugin signs agents in: a browser that has signed in sees the attributes.")
        else:
            _expect(info, 200, "session_info")
        n.say()
        n.say("Open this in a browser to see what the agent sees (live: it updates by itself):")
        n.say(f"    {target.url}/attribute-ui/?{contact}")
        if wait:
            n.say("Press Enter to end the call and finish.")
            sys.stdin.readline()

        n.heading("The call ends; the Lambda's disconnect flow tells the plugin")
        _expect(n.call("POST", "/end_call", {"sessionid": contact}, headers=lambda_headers), 200, "end_call")
        n.say("Had the result carried a session_url, its authentication plugin would now hear `logout`.")
    except DemoFailed as error:
        n.say()
        n.say(f"The demo stopped: {error}.")
        return EXIT_FAILED
    n.say()
    n.say("That is the whole flow. The same by hand: README, \"Try the whole flow by hand\".")
    return 0
