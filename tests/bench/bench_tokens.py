"""Benchmark (not a test): the cost of reading one auth-result token against its RSA-OAEP core.

Reading a token costs one RSA private-key operation (the OAEP unwrap of the
content key), one RSA public-key signature check, an HMAC, an AES-CBC
decryption and some JSON.  The private-key operation dominates; this script
measures it bare (pycryptodome, cipher object built once) and the whole read
in the same run, and prints the medians and their ratio (aim: within 1.2x).
The bare RS256 check (cryptography) is shown too: it is part of the overhead
that no implementation can avoid.

    .venv/bin/python -m tests.bench.bench_tokens [-n 600]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from Crypto.Cipher import PKCS1_OAEP
from Crypto.Hash import SHA1
from Crypto.Random import get_random_bytes
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from connect_plugin import jwe, tokens
from connect_plugin.keys import PrivateKey, load_private_key
from connect_plugin.model import AuthResult

ROUNDS = 3  # the measurements alternate, so that a slow patch of a shared machine hits all of them


def rsa_key() -> PrivateKey:
    """A fresh RSA 2048 key, loaded as configuration loads it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return load_private_key("RSA", pem)


def median_seconds(action: Callable[[], object], runs: int) -> float:
    """Median wall time of ``action`` over ``runs`` calls, after a few warm-up calls."""
    for _ in range(5):
        action()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=600, help="timed calls per measurement (default 600)")
    runs = max(parser.parse_args().runs // ROUNDS, 1)

    decrypt, sign = rsa_key(), rsa_key()
    encrypt, verify = decrypt.public(), sign.public()
    result = AuthResult("succes", {"email": "jane@example.com", "fullname": "Jane Doe"}, "https://auth.example/s/1")
    token = tokens.make_auth_result(result, encrypt, sign)

    cipher = PKCS1_OAEP.new(decrypt.key, hashAlgo=SHA1)
    wrapped = PKCS1_OAEP.new(encrypt.key, hashAlgo=SHA1).encrypt(get_random_bytes(32))
    njwt = json.loads(jwe.decrypt(token, decrypt)[1])["njwt"]
    signing_input, signature = njwt.rsplit(".", 1)
    raw_signature = jwe.b64url_decode(signature, "signature")

    actions: dict[str, Callable[[], object]] = {
        "oaep": lambda: cipher.decrypt(wrapped),
        "verify": lambda: verify.crypto_key.verify(
            raw_signature, signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
        ),
        "read": lambda: tokens.read_auth_result(token, decrypt, verify),
    }
    assert actions["read"]() == result
    samples: dict[str, list[float]] = {name: [] for name in actions}
    for _ in range(ROUNDS):
        for name, action in actions.items():
            samples[name].append(median_seconds(action, runs))
    oaep, check, read = (statistics.median(samples[name]) for name in ("oaep", "verify", "read"))

    total = runs * ROUNDS
    print(f"token size:                            {len(token)} characters")
    print(f"bare RSA-OAEP decrypt (pycryptodome):  {oaep * 1e3:8.3f} ms  (median of {total})")
    print(f"bare RS256 verify (cryptography):      {check * 1e3:8.3f} ms  (median of {total})")
    print(f"read_auth_result (RSA keys):           {read * 1e3:8.3f} ms  (median of {total})")
    print(f"overhead beyond the OAEP operation:    {(read - oaep) * 1e3:8.3f} ms")
    print(f"ratio read / bare OAEP:                {read / oaep:8.3f}x  (aim: <= 1.2x)")


if __name__ == "__main__":
    main()
