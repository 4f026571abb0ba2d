"""The two bounds a session cannot beat: a bare Tornado JSON handler and a bare RSA-OAEP decryption.

``python -m tests.bench.bare --port N`` serves ``POST /`` with the least a
JSON endpoint can do in Tornado: parse the body, answer a small JSON object.
wrk drives it with the same connections as the plugin: its requests per
second is ``bare_rps``.

:func:`rsa_per_second` decrypts an RSA-OAEP (SHA-1) key wrap with
pycryptodome in a single-threaded loop, with the plugin's own decryption
key: ``rsa_per_s``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import time
from pathlib import Path

from Crypto.Cipher import PKCS1_OAEP
from Crypto.Hash import SHA1
from Crypto.PublicKey import RSA
from Crypto.Random import get_random_bytes
from tornado.httpserver import HTTPServer
from tornado.web import Application, RequestHandler


class JsonPost(RequestHandler):
    """``POST /``: a JSON object in, a JSON object out."""

    def post(self) -> None:
        body = json.loads(self.request.body)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"ok": True, "purpose": body.get("purpose")}))


def rsa_per_second(private_key_pem: Path, seconds: float = 3.0) -> float:
    """RSA-2048 OAEP (SHA-1) decryptions per second of a 32-byte key, one thread, pycryptodome."""
    key = RSA.import_key(private_key_pem.read_text())
    cipher = PKCS1_OAEP.new(key, hashAlgo=SHA1)
    wrapped = PKCS1_OAEP.new(key.publickey(), hashAlgo=SHA1).encrypt(get_random_bytes(32))
    for _ in range(20):
        cipher.decrypt(wrapped)
    done = 0
    began = time.perf_counter()
    while (elapsed := time.perf_counter() - began) < seconds:
        for _ in range(20):
            cipher.decrypt(wrapped)
        done += 20
    return done / elapsed


async def serve(port: int) -> None:
    """Serve ``JsonPost`` on 127.0.0.1 until SIGTERM."""
    server = HTTPServer(Application([(r"/", JsonPost)], log_function=lambda _handler: None))
    server.listen(port, "127.0.0.1")
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    server.stop()


def main() -> None:
    """Run the bare server."""
    parser = argparse.ArgumentParser(description="bare Tornado JSON POST handler on 127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
