"""A crypto worker process: reads auth-result tokens for the plugin, on a core of its own.

The plugin (``crypto_pool.CryptoPool``) starts ``crypto_workers`` of these as
``python -P -m connect_plugin.crypto_worker FD``, where ``FD`` is its end of a
private socket pair.  Nothing secret is on the command line or in the
environment: the keys and the token policy come as the first message on the
socket.  Each message either way is a 4-byte big-endian length and a JSON
object (``wire``):

* plugin to worker, first: ``{"decryption_key": [kind, pem], "signature_key":
  [kind, pem], "policy": {...}}``; the worker answers ``{"ready": true}``;
* then requests ``{"id": n, "op": "receive", "token": ..., "now": t}``
  (``tokens.read_verified``) or ``{"id": n, "op": "reread", "token": ...}``
  (``tokens.read_auth_result`` without the time checks);
* answers ``{"id": n, "verified": {...}}``, ``{"id": n, "result": {...}}``,
  ``{"id": n, "refused": [reason, detail]}`` (``InvalidToken``: no part of the
  token) or ``{"id": n, "failed": "ErrorType"}``.

The worker logs nothing about a token and exits when the plugin's end closes.
"""

from __future__ import annotations

import json
import signal
import socket
import struct
import sys
from typing import Any

from .errors import InvalidToken
from .keys import load_private_key, load_public_key
from .model import AuthResult
from .tokens import TokenPolicy, VerifiedToken, read_auth_result, read_verified

HEADER = struct.Struct(">I")
#: The largest message either side accepts (a token is at most ``max_body_size``, itself capped far below this).
MAX_MESSAGE = 16 * 1024 * 1024


def frame(message: dict[str, Any]) -> bytes:
    """One message as sent on the socket: length, then compact JSON."""
    data = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()
    return HEADER.pack(len(data)) + data


def result_to_wire(result: AuthResult) -> dict[str, Any]:
    """An ``AuthResult`` as a JSON object (``result_from_wire`` reads it back)."""
    return {"status": result.status, "attributes": result.attributes, "session_url": result.session_url}


def result_from_wire(data: dict[str, Any]) -> AuthResult:
    """The ``AuthResult`` that ``result_to_wire`` wrote."""
    return AuthResult(data["status"], data["attributes"], data["session_url"])


def verified_to_wire(verified: VerifiedToken) -> dict[str, Any]:
    """A ``VerifiedToken`` as a JSON object (``verified_from_wire`` reads it back)."""
    return {"result": result_to_wire(verified.result), "expires_at": verified.expires_at,
            "replay_key": verified.replay_key}


def verified_from_wire(data: dict[str, Any]) -> VerifiedToken:
    """The ``VerifiedToken`` that ``verified_to_wire`` wrote."""
    return VerifiedToken(result_from_wire(data["result"]), float(data["expires_at"]), str(data["replay_key"]))


class _Reader:
    """Reads whole messages from a blocking socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def _exactly(self, count: int) -> bytes | None:
        while len(self.buffer) < count:
            chunk = self.sock.recv(max(65536, count - len(self.buffer)))
            if not chunk:
                return None
            self.buffer += chunk
        data = bytes(self.buffer[:count])
        del self.buffer[:count]
        return data

    def message(self) -> dict[str, Any] | None:
        """The next message, or ``None`` once the plugin's end is closed."""
        head = self._exactly(HEADER.size)
        if head is None:
            return None
        (length,) = HEADER.unpack(head)
        if length > MAX_MESSAGE:
            raise ValueError("message too large")
        body = self._exactly(length)
        if body is None:
            return None
        message = json.loads(body)
        if not isinstance(message, dict):
            raise ValueError("a message is a JSON object")
        return message


def answer(request: dict[str, Any], decryption: Any, signature: Any, policy: TokenPolicy) -> dict[str, Any]:
    """What the worker answers to one request."""
    ident = request.get("id")
    try:
        if request.get("op") == "receive":
            verified = read_verified(request["token"], decryption, signature, policy, now=float(request["now"]))
            return {"id": ident, "verified": verified_to_wire(verified)}
        if request.get("op") == "reread":
            result = read_auth_result(request["token"], decryption, signature, policy, check_expiry=False)
            return {"id": ident, "result": result_to_wire(result)}
        return {"id": ident, "failed": "UnknownOperation"}
    except InvalidToken as error:
        return {"id": ident, "refused": [error.reason, error.sentence]}
    except Exception as error:  # never the token or the key: only the kind of error
        return {"id": ident, "failed": type(error).__name__}


def serve(sock: socket.socket) -> int:
    """Set up from the first message, then answer requests until the socket closes."""
    reader = _Reader(sock)
    setup = reader.message()
    if setup is None:
        return 0
    decryption = load_private_key(*setup["decryption_key"])
    signature = load_public_key(*setup["signature_key"])
    policy = TokenPolicy(**setup["policy"])
    del setup
    sock.sendall(frame({"ready": True}))
    while (request := reader.message()) is not None:
        sock.sendall(frame(answer(request, decryption, signature, policy)))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -P -m connect_plugin.crypto_worker FD``."""
    args = sys.argv[1:] if argv is None else argv
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the plugin decides when to stop: it closes the socket
    sock = socket.socket(fileno=int(args[0]))
    try:
        return serve(sock)
    except (ConnectionError, BrokenPipeError):
        return 0
    finally:
        sock.close()


if __name__ == "__main__":
    sys.exit(main())
