"""Codes: the built-in DTMF code generator, and what stores keep instead of codes.

Stores never see a code in clear.  A result code (190 bits of randomness) is
kept as its SHA-256 (:func:`result_key`).  A DTMF code has far fewer bits: a
plain hash of it could be reversed by trying every code, so it is kept as an
HMAC-SHA256 under a server secret (:func:`code_key`) that is not in the
database.  :func:`code_secret` finds that secret (see its docstring).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import string
from pathlib import Path
from typing import TYPE_CHECKING

from Crypto.Hash import SHA256
from Crypto.Protocol.KDF import HKDF

from .errors import ConfigError
from .keys import PrivateKey

if TYPE_CHECKING:
    from .config import Settings

log = logging.getLogger(__name__)

RESULT_ALPHABET = string.ascii_letters + string.digits
#: HKDF ``info`` of the code secret derived from the decryption key: changing it changes every code key.
DERIVED_SECRET_INFO = b"connect-plugin dtmf code key v1"
#: The SQLite default: ``<database file><suffix>``, beside the database.
SECRET_FILE_SUFFIX = ".code-secret"  # noqa: S105 (a file name)


class RandomDigits:
    """The built-in code generator: ``length`` uniformly random decimal digits."""

    def __init__(self, length: int) -> None:
        self.length = length

    def generate(self) -> str:
        """A fresh code from the operating system's CSPRNG (one draw below ``10**length``, zero-padded)."""
        return str(secrets.randbelow(10**self.length)).zfill(self.length)

    def __repr__(self) -> str:
        return f"RandomDigits(length={self.length})"


#: Random bytes below this map evenly onto ``RESULT_ALPHABET`` (``byte % 62``); larger ones are drawn again.
_EVEN_BYTES = 256 - 256 % len(RESULT_ALPHABET)


def new_result_code(length: int) -> str:
    """A fresh result code: ``length`` uniformly random characters from ``[A-Za-z0-9]``.

    Drawn from the operating system's CSPRNG a few bytes at a time (not one
    call per character), each byte kept only if it maps evenly onto the alphabet.
    """
    chars: list[str] = []
    while len(chars) < length:
        chars += [RESULT_ALPHABET[b % len(RESULT_ALPHABET)]
                  for b in secrets.token_bytes(length - len(chars) + 8) if b < _EVEN_BYTES]
    return "".join(chars[:length])


def result_key(result_code: str) -> str:
    """What a store keeps instead of a result code: its SHA-256, hex."""
    return hashlib.sha256(result_code.encode()).hexdigest()


def code_key(secret: bytes, dtmf: str) -> str:
    """What a store keeps instead of a DTMF code: its HMAC-SHA256 under the server's code secret, hex."""
    return hmac.new(secret, dtmf.encode(), hashlib.sha256).hexdigest()


def code_secret_for(settings: Settings) -> bytes:
    """The code secret of a deployment: :func:`code_secret` for its settings (may create the SQLite file)."""
    from .config.database import is_sqlite
    from .stores.urls import sqlite_path

    path = sqlite_path(settings.database_url) if is_sqlite(settings.database_url) else None
    configured = settings.code_secret.reveal() if settings.code_secret is not None else None
    return code_secret(configured, path, settings.decryption_key)


def code_secret(configured: str | None, sqlite_file: Path | None, decryption_key: PrivateKey) -> bytes:
    """The server's code secret: every instance sharing a database must find the same one.

    * ``configured`` (the ``code_secret`` setting), when set;
    * else, for an SQLite database file, the file beside it
      (``<database>.code-secret``), made with mode 0600 on first use; processes
      on the same database file share it;
    * else a key derived from the decryption private key with HKDF-SHA256
      (``info`` :data:`DERIVED_SECRET_INFO`): every instance of a deployment
      already holds that key, and it is not in the database.  Rotating the
      decryption key then changes the secret, so the codes of sessions live
      at that moment no longer link.
    """
    if configured:
        return configured.encode()
    if sqlite_file is not None:
        return _secret_file(sqlite_file.with_name(sqlite_file.name + SECRET_FILE_SUFFIX))
    return derived_secret(decryption_key)


def derived_secret(decryption_key: PrivateKey) -> bytes:
    """HKDF-SHA256 of the private key's secret numbers, the same whatever PEM form they came in."""
    key = decryption_key.key
    if decryption_key.kind == "RSA":
        p, q = sorted((int(key.p), int(key.q)))
        size = (int(key.n).bit_length() + 15) // 16
        material = b"RSA" + p.to_bytes(size, "big") + q.to_bytes(size, "big")
    else:
        material = b"EC" + int(key.d).to_bytes(32, "big")
    return HKDF(material, 32, b"", SHA256, 1, context=DERIVED_SECRET_INFO)


def _secret_file(path: Path) -> bytes:
    """Read the secret in ``path``, or create it (mode 0600) if there is none yet."""
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    # Written under a private name, then linked into place: a process starting at
    # the same moment either wins the link or reads the winner's complete file.
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_hex(32) + "\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
            log.info("created the code secret %s (keep it with the database, readable by this service only)", path)
        except FileExistsError:
            pass
    finally:
        temporary.unlink(missing_ok=True)
    return _read_secret(path)


def _read_secret(path: Path) -> bytes:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        raise
    except OSError as error:
        raise ConfigError("code_secret", f"cannot read {path}: {error.strerror}") from None
    if len(text) < 32:
        raise ConfigError("code_secret", f"{path} holds fewer than 32 characters")
    if path.stat().st_mode & 0o077:
        log.warning("the code secret %s is readable by other users: chmod 600 it", path)
    return text.encode()
