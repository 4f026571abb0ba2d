"""Helpers for the agent sign-in tests: a real OpenID provider, ALB-style tokens, sign-in cookies.

* :class:`OpenIdProviderProcess`: Node's ``oidc-provider`` (``tests/oidc/``) on
  127.0.0.1, installed with ``npm ci`` on first use when ``.ci/run`` has not.
* :func:`alb_token`: the ``x-amzn-oidc-data`` header as an AWS load balancer
  makes it: an ES256 JWT whose parts are base64url *with padding*, signed
  over the padded parts (PyJWT makes the unpadded kind).
* :func:`cookie_header`: a sign-in cookie minted with a given secret, for
  forged, foreign and expired cookies.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from connect_plugin.agent_auth.cookie import SignedCookies
from connect_plugin.model import Agent
from tests.support import ROOT, free_port

OIDC_DIR = ROOT / "tests" / "oidc"
CLIENT_ID = "connect-plugin-tests"
CLIENT_SECRET = "client-secret-for-the-test-provider"
COOKIE_SECRET = "a-cookie-secret-shared-by-all-test-instances-0123456789"
#: The provider's accounts: login name -> claims.  Any password signs in.
ACCOUNTS = {
    "alice": {"email": "alice@gemeente.example", "name": "Alice Agent", "groups": ["agents", "staff"]},
    "bob": {"email": "bob@gemeente.example", "name": "Bob Sales", "groups": ["sales"]},
}
#: The agent page's settings in the browser tests (the streams library is a stand-in, served by the test).
CCP_URL = "https://example.my.connect.aws/ccp-v2"
STREAMS_URL = "https://static.example.nl/amazon-connect-streams/connect-streams-min.js"
ALB_ARN = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/agents/0123456789abcdef"


def require_node() -> str:
    """The ``node`` binary with ``oidc-provider`` installed beside the provider script (else skip, or fail in CI)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        if os.environ.get("CI"):
            pytest.fail("CI needs Node.js and npm for the OpenID provider (tests/oidc)")
        pytest.skip("no node/npm: the OpenID provider tests need them")
    if not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=OIDC_DIR, check=True,
                       timeout=300, stdout=subprocess.DEVNULL)
    return node


class OpenIdProviderProcess:
    """``node tests/oidc/provider.mjs``: a real OpenID provider with one client and :data:`ACCOUNTS`."""

    def __init__(self, redirect_uris: list[str], port: int | None = None, log_dir: Path | None = None) -> None:
        self.port = port or free_port()
        self.redirect_uris = redirect_uris
        self.log_path = (log_dir or Path("/tmp")) / f"oidc-provider.{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        """The provider's issuer (and base URL)."""
        return f"http://127.0.0.1:{self.port}"

    def settings(self, **extra: Any) -> dict[str, Any]:
        """Plugin settings that sign agents in here (members of ``agents`` may see data)."""
        return {"agent_auth": "oidc", "oidc_issuer": self.issuer, "oidc_client_id": CLIENT_ID,
                "oidc_client_secret": CLIENT_SECRET, "agent_cookie_secret": COOKIE_SECRET,
                "oidc_scopes": ["openid", "email", "profile", "groups"], "oidc_allowed_groups": ["agents"],
                **extra}

    def start(self, timeout: float = 30.0) -> OpenIdProviderProcess:
        """Start the provider and return once it listens."""
        node = require_node()
        config = {"port": self.port, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                  "redirect_uris": self.redirect_uris, "accounts": ACCOUNTS}
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([node, "provider.mjs", json.dumps(config)], cwd=OIDC_DIR, stdout=log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the OpenID provider exited with {self.proc.returncode}:\n{self.output()}")
            if f"ready {self.issuer}" in self.output():
                return self
            time.sleep(0.05)
        raise TimeoutError(f"the OpenID provider did not start within {timeout}s:\n{self.output()}")

    def output(self) -> str:
        """What the provider printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """Stop the provider."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _b64(data: bytes, padded: bool) -> str:
    text = base64.urlsafe_b64encode(data).decode("ascii")
    return text if padded else text.rstrip("=")


def alb_token(key: ec.EllipticCurvePrivateKey, kid: str, claims: dict[str, Any], *, signer: str = ALB_ARN,
              lifetime: float = 120, padded: bool = True, **header: Any) -> str:
    """An ``x-amzn-oidc-data`` value as the load balancer makes it (``header`` adds or replaces fields)."""
    fields = {"typ": "JWT", "kid": kid, "alg": "ES256", "iss": "https://idp.example", "client": "alb-client",
              "signer": signer, "exp": int(time.time() + lifetime), **header}
    signing_input = ".".join(_b64(json.dumps(part).encode(), padded) for part in (fields, claims))
    r, s = decode_dss_signature(key.sign(signing_input.encode("ascii"), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'), padded)}"


def cookie_header(agent: Agent, *, secret: str = COOKIE_SECRET, issuer: str, lifetime: float = 3600,
                  now: float | None = None) -> dict[str, str]:
    """A ``Cookie`` header signing ``agent`` in (over plain http on loopback), made with ``secret``."""
    cookies = SignedCookies(secret, secure=False, issuer=issuer)
    return {"Cookie": f"{cookies.session_name}={cookies.session_value(agent, lifetime, now=now)}"}
