"""``connect-plugin token``: mint a test auth-result token, or decode one with the plugin's keys.

Minting does what the ecosystem's test authentication plugin does, so that a
deployer can try a set-up end to end; decoding shows the claims of a token, or
exactly why the plugin refuses it.  Nothing here prints key material; a
refusal never repeats the token.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import jwe, keys, tokens
from .config import load_settings
from .errors import ConfigError, InvalidToken
from .model import STATUS_FAILED, STATUS_SUCCESS, AuthResult

EXIT_REFUSED = 1
EXIT_USAGE = 2
POST_TIMEOUT = 10

EPILOG = """\
examples:
  connect-plugin token --encrypt-key plugin-encrypt.pub.pem --sign-key auth-sign.key.pem \\
      --attr email=jane@example.com --attr fullname="Jane Doe"
  connect-plugin token --encrypt-key plugin-encrypt.pub.pem --sign-key auth-sign.key.pem \\
      --status failed --post http://127.0.0.1:8000/session_result/<code>
  connect-plugin token --encrypt-key plugin-encrypt.pub.pem --sign-key auth-sign.key.pem \\
      --alg RSA-OAEP-256 --enc A256GCM --attr email=jane@example.com
  connect-plugin token --decode --config config.toml < token.jwe
"""

_MINT_ONLY = (
    "encrypt_key", "encrypt_type", "sign_key", "sign_type", "attr", "session_url", "post",
    "alg", "enc", "issuer", "audience",
)
_ALGS = tuple(alg for algs in jwe.KEY_MANAGEMENT.values() for alg in algs)
_DECODE_ONLY = ("config", "no_expiry")


class UsageError(Exception):
    """The command line asks for something this command cannot do; the message says what."""


def register(subparsers: Any) -> None:
    """Add the ``token`` command to an argparse sub-parsers object."""
    text = "mint a test auth-result token, or decode one with the plugin's keys"
    parser = subparsers.add_parser(
        "token", help=text, description=text, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--decode", action="store_true", help="decode TOKEN instead of minting one")
    mint = parser.add_argument_group("minting")
    mint.add_argument("--encrypt-key", metavar="PUB.pem", help="public key to encrypt to (the plugin's)")
    mint.add_argument("--encrypt-type", choices=keys.KINDS, help="its type (default: read from the PEM)")
    mint.add_argument("--sign-key", metavar="PRIV.pem", help="private key to sign with (an authentication plugin's)")
    mint.add_argument("--sign-type", choices=keys.KINDS, help="its type (default: read from the PEM)")
    mint.add_argument("--attr", action="append", default=[], metavar="KEY=VALUE", help="an attribute (repeatable)")
    mint.add_argument("--status", choices=(STATUS_SUCCESS, STATUS_FAILED), default=STATUS_SUCCESS)
    mint.add_argument("--session-url", metavar="URL", help="where the plugin should send session feedback")
    mint.add_argument("--lifetime", type=int, default=300, metavar="SECONDS",
                      help="exp - iat (default 300; the plugin refuses over its max_token_lifetime, 3600 by default)")
    mint.add_argument("--alg", choices=_ALGS,
                      help="key management: RSA-OAEP (default) or RSA-OAEP-256 for an RSA key, ECDH-ES for EC")
    mint.add_argument("--enc", choices=tuple(jwe.CONTENT_ENCRYPTIONS),
                      help=f"content encryption (default {jwe.DEFAULT_ENC})")
    mint.add_argument("--issuer", metavar="ISS", help="an iss claim (for a plugin that expects one)")
    mint.add_argument("--audience", metavar="AUD", help="an aud claim (for a plugin that expects one)")
    mint.add_argument("--post", metavar="URL", help="POST the token to this session_result URL; print the status")
    decode = parser.add_argument_group("decoding")
    decode.add_argument("--config", metavar="FILE", help="the plugin's settings (default: as connect-plugin serve)")
    decode.add_argument("--no-expiry", action="store_true", help="read an expired token too")
    parser.add_argument("token", nargs="?", metavar="TOKEN", help="with --decode: the token, or - for stdin (default)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Mint or decode as ``args`` say; the exit status (0 done, 1 refused or failed, 2 usage or config)."""
    try:
        if args.decode:
            _refuse_options(args, _MINT_ONLY, "minting")
            return _decode(args)
        _refuse_options(args, _DECODE_ONLY, "--decode")
        if args.token is not None:
            raise UsageError("a TOKEN argument is only for --decode")
        return _mint(args)
    except UsageError as error:
        print(f"connect-plugin token: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as error:
        print(f"connect-plugin token: configuration error: {error}", file=sys.stderr)
        return EXIT_USAGE


def _refuse_options(args: argparse.Namespace, names: tuple[str, ...], purpose: str) -> None:
    for name in names:
        if getattr(args, name, None):
            raise UsageError(f"--{name.replace('_', '-')} is only for {purpose}")


# --------------------------------------------------------------------------- minting


def _mint(args: argparse.Namespace) -> int:
    if not args.encrypt_key or not args.sign_key:
        raise UsageError("minting needs --encrypt-key and --sign-key")
    if args.lifetime <= 0:
        raise UsageError("--lifetime must be a positive number of seconds")
    encryption_key = _load(args.encrypt_key, args.encrypt_type, "--encrypt-key", private=False)
    signing_key = _load(args.sign_key, args.sign_type, "--sign-key", private=True)
    attributes = _attributes(args.attr)
    if attributes is None and args.status == STATUS_SUCCESS:
        attributes = {}
    if args.alg and args.alg not in jwe.KEY_MANAGEMENT[encryption_key.kind]:
        accepted = " or ".join(jwe.KEY_MANAGEMENT[encryption_key.kind])
        raise UsageError(f"--alg: an {encryption_key.kind} key to encrypt to takes {accepted}")
    result = AuthResult(args.status, attributes, args.session_url)
    token = tokens.make_auth_result(
        result, encryption_key, signing_key, lifetime=args.lifetime, alg=args.alg,
        enc=args.enc or jwe.DEFAULT_ENC, issuer=args.issuer, audience=args.audience,
    )
    if args.post:
        return _post(args.post, token)
    print(token)
    return 0


def _load(path: str, kind: str | None, option: str, *, private: bool) -> Any:
    try:
        pem = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{option}: cannot read {path}: {getattr(error, 'strerror', None) or 'not text'}") from None
    try:
        kind = kind or keys.guess_kind(pem)
        return keys.load_private_key(kind, pem) if private else keys.load_public_key(kind, pem)
    except keys.KeyLoadError as error:
        raise UsageError(f"{option}: {error}") from None


def _attributes(pairs: list[str]) -> dict[str, str] | None:
    if not pairs:
        return None
    attributes: dict[str, str] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            # The value may be personal data: say what is wrong, not what was given.
            raise UsageError("--attr takes KEY=VALUE (the value may be empty)")
        if key in attributes:
            raise UsageError(f"--attr {key} is given twice")
        attributes[key] = value
    return attributes


def _post(url: str, token: str) -> int:
    # The URL holds a result code: it is never printed.
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError("--post needs an http(s) URL")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url, data=token.encode("ascii"), method="POST", headers={"Content-Type": "application/jwt"}
    )
    try:
        with urllib.request.urlopen(request, timeout=POST_TIMEOUT) as response:  # noqa: S310
            print(f"HTTP {response.status}")
            return 0 if 200 <= response.status < 300 else EXIT_REFUSED
    except urllib.error.HTTPError as error:
        body = error.read(2048).decode("utf-8", "replace").strip()
        print(f"HTTP {error.code}" + (f" {body}" if body else ""))
        return EXIT_REFUSED
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        print(f"connect-plugin token: cannot post: {getattr(reason, 'strerror', None) or reason}", file=sys.stderr)
        return EXIT_REFUSED


# --------------------------------------------------------------------------- decoding


def _decode(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    reads_stdin = args.token in (None, "-")
    token = sys.stdin.read(tokens.MAX_TOKEN_BYTES + 1) if reads_stdin else args.token
    try:
        claims = tokens.read_claims(
            token, settings.decryption_key, settings.signature_key, _policy(settings), check_expiry=not args.no_expiry
        )
    except InvalidToken as error:
        print(f"refused ({error.reason}): {error.detail}", file=sys.stderr)
        return EXIT_REFUSED
    print(json.dumps(claims, indent=2, ensure_ascii=False))
    if args.no_expiry and time.time() >= claims["exp"] + settings.token_leeway:
        print("note: this token has expired; the plugin would refuse it on receipt", file=sys.stderr)
    return 0


def _policy(settings: Any) -> tokens.TokenPolicy:
    """The receipt rules the plugin applies with these settings, so that decoding refuses what it refuses."""
    return tokens.TokenPolicy(leeway=settings.token_leeway)
