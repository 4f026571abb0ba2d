"""``connect-plugin token``: minting, decoding with the plugin's configuration, posting over real HTTP."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from connect_plugin import token_cli, tokens
from connect_plugin.keys import PrivateKey
from connect_plugin.model import AuthResult
from tests.support import KeySet
from tests.token_support import header_of

ROOT = Path(__file__).resolve().parent.parent
RUNNER = """\
import argparse, sys
from connect_plugin import token_cli
parser = argparse.ArgumentParser(prog="connect-plugin")
token_cli.register(parser.add_subparsers())
args = parser.parse_args(sys.argv[1:])
sys.exit(args.func(args))
"""


def cli(*argv: str) -> int:
    """Run ``connect-plugin token ARGV`` in process, through a parser like the real one."""
    parser = argparse.ArgumentParser(prog="connect-plugin")
    token_cli.register(parser.add_subparsers())
    args = parser.parse_args(["token", *argv])
    return args.func(args)


@pytest.fixture
def key_files(tmp_path: Path, rsa_keys: KeySet, ec_keys: KeySet) -> dict[str, str]:
    """PEM files for the RSA and EC key pairs, as a deployer has them."""
    files = {
        "rsa-encrypt": rsa_keys.encrypt.pem, "rsa-decrypt": rsa_keys.decrypt.pem,
        "rsa-sign": rsa_keys.sign.pem, "rsa-verify": rsa_keys.verify.pem,
        "ec-encrypt": ec_keys.encrypt.pem, "ec-sign": ec_keys.sign.pem,
    }
    out = {}
    for name, pem in files.items():
        path = tmp_path / f"{name}.pem"
        path.write_text(pem)
        out[name] = str(path)
    return out


@pytest.fixture
def config(tmp_path: Path, key_files: dict[str, str]) -> str:
    """A reference-style settings file naming the RSA keys."""
    path = tmp_path / "config.toml"
    path.write_text(f"""\
[global]
internal_url = "http://127.0.0.1:8000"
phonenumber = "+31850000000"
dtmf_length = 10
result_length = 32
token_leeway = 60

[global.decryption_privkey]
type = "RSA"
key_file = "{key_files['rsa-decrypt']}"

[global.signature_pubkey]
type = "RSA"
key_file = "{key_files['rsa-verify']}"
""")
    return str(path)


def mint_rsa(key_files: dict[str, str], *extra: str) -> list[str]:
    return ["--encrypt-key", key_files["rsa-encrypt"], "--sign-key", key_files["rsa-sign"], *extra]


# --------------------------------------------------------------------------- minting


def test_mint_prints_a_token_the_plugin_reads(
    key_files: dict[str, str], rsa_keys: KeySet, capsys: pytest.CaptureFixture[str]
) -> None:
    args = mint_rsa(key_files, "--encrypt-type", "RSA", "--sign-type", "RSA",
                    "--attr", "email=jane@example.com", "--attr", "fullname=Jane = Doe")
    assert cli(*args) == 0
    token = capsys.readouterr().out.strip()
    result = tokens.read_auth_result(token, rsa_keys.decrypt, rsa_keys.verify)
    assert result == AuthResult("succes", {"email": "jane@example.com", "fullname": "Jane = Doe"})


def test_mint_reads_the_key_types_from_the_pem(
    key_files: dict[str, str], ec_keys: KeySet, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("--encrypt-key", key_files["ec-encrypt"], "--sign-key", key_files["ec-sign"], "--attr", "age=42") == 0
    token = capsys.readouterr().out.strip()
    assert tokens.read_auth_result(token, ec_keys.decrypt, ec_keys.verify).attributes == {"age": "42"}


def test_mint_failed_status_session_url_and_lifetime(
    key_files: dict[str, str], rsa_keys: KeySet, capsys: pytest.CaptureFixture[str]
) -> None:
    args = mint_rsa(key_files, "--status", "failed", "--session-url", "http://auth.internal/s/1", "--lifetime", "60")
    assert cli(*args) == 0
    claims = tokens.read_claims(capsys.readouterr().out.strip(), rsa_keys.decrypt, rsa_keys.verify)
    assert claims["status"] == "failed"
    assert "attributes" not in claims
    assert claims["session_url"] == "http://auth.internal/s/1"
    assert claims["exp"] - claims["iat"] == 60


@pytest.mark.parametrize("attr", ["no-equals-sign-secret", "=secret-value"])
def test_malformed_attr_is_a_usage_error_that_does_not_echo_it(
    key_files: dict[str, str], capsys: pytest.CaptureFixture[str], attr: str
) -> None:
    assert cli(*mint_rsa(key_files, "--attr", attr)) == 2
    captured = capsys.readouterr()
    assert "KEY=VALUE" in captured.err
    assert "secret" not in captured.err + captured.out


def test_attribute_given_twice_is_a_usage_error(key_files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(*mint_rsa(key_files, "--attr", "email=a@x", "--attr", "email=b@x")) == 2
    assert "twice" in capsys.readouterr().err


def test_minting_without_keys_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("--attr", "email=a@x") == 2
    assert "--encrypt-key and --sign-key" in capsys.readouterr().err


def test_private_key_given_to_encrypt_to_is_refused_without_quoting_it(
    key_files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("--encrypt-key", key_files["rsa-sign"], "--sign-key", key_files["rsa-sign"]) == 2
    err = capsys.readouterr().err
    assert "got a private one" in err
    assert Path(key_files["rsa-sign"]).read_text().splitlines()[1] not in err


def test_missing_key_file_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = str(tmp_path / "nope.pem")
    assert cli("--encrypt-key", missing, "--sign-key", missing) == 2
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kind", "alg", "enc"),
    [("rsa", "RSA-OAEP-256", "A256GCM"), ("rsa", "RSA-OAEP", "A192CBC-HS384"), ("ec", "ECDH-ES", "A128GCM"),
     ("ec", None, "A256CBC-HS512")],
)
def test_mint_with_alg_and_enc(
    key_files: dict[str, str], rsa_keys: KeySet, ec_keys: KeySet, capsys: pytest.CaptureFixture[str],
    kind: str, alg: str | None, enc: str,
) -> None:
    keys = rsa_keys if kind == "rsa" else ec_keys
    args = ["--encrypt-key", key_files[f"{kind}-encrypt"], "--sign-key", key_files[f"{kind}-sign"], "--enc", enc]
    assert cli(*args, *(["--alg", alg] if alg else [])) == 0
    token = capsys.readouterr().out.strip()
    header = header_of(token)
    assert (header["alg"], header["enc"]) == (alg or ("RSA-OAEP" if kind == "rsa" else "ECDH-ES"), enc)
    assert tokens.read_auth_result(token, keys.decrypt, keys.verify).status == "succes"


def test_mint_defaults_to_rsa_oaep_and_a128cbc_hs256(
    key_files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(*mint_rsa(key_files)) == 0
    header = header_of(capsys.readouterr().out.strip())
    assert (header["alg"], header["enc"]) == ("RSA-OAEP", "A128CBC-HS256")


def test_mint_with_an_alg_for_the_other_key_kind_is_a_usage_error(
    key_files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(*mint_rsa(key_files, "--alg", "ECDH-ES")) == 2
    assert "--alg: an RSA key to encrypt to takes RSA-OAEP or RSA-OAEP-256" in capsys.readouterr().err


@pytest.mark.parametrize(("option", "value"), [("--alg", "RSA1_5"), ("--enc", "A128KW"), ("--alg", "dir")])
def test_mint_refuses_an_alg_or_enc_the_plugin_refuses(
    key_files: dict[str, str], capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    with pytest.raises(SystemExit) as caught:
        cli(*mint_rsa(key_files, option, value))
    assert caught.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_mint_issuer_and_audience(
    key_files: dict[str, str], rsa_keys: KeySet, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(*mint_rsa(key_files, "--issuer", "https://auth.example.nl", "--audience", "connect-plugin")) == 0
    claims = tokens.read_claims(capsys.readouterr().out.strip(), rsa_keys.decrypt, rsa_keys.verify)
    assert (claims["iss"], claims["aud"]) == ("https://auth.example.nl", "connect-plugin")


def test_decode_options_are_refused_when_minting(key_files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(*mint_rsa(key_files, "--no-expiry")) == 2
    assert "--no-expiry is only for --decode" in capsys.readouterr().err


# --------------------------------------------------------------------------- decoding


def test_decode_prints_the_claims(
    config: str, rsa_keys: KeySet, capsys: pytest.CaptureFixture[str]
) -> None:
    result = AuthResult("succes", {"email": "jane@example.com"})
    token = tokens.make_auth_result(result, rsa_keys.encrypt, rsa_keys.sign)
    assert cli("--decode", "--config", config, token) == 0
    claims = json.loads(capsys.readouterr().out)
    assert claims["attributes"] == {"email": "jane@example.com"}
    assert claims["sub"] == "id-contact-attributes"


def test_decode_reads_the_token_from_stdin(config: str, rsa_keys: KeySet) -> None:
    token = tokens.make_auth_result(AuthResult("failed"), rsa_keys.encrypt, rsa_keys.sign)
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, "token", "--decode", "--config", config, "-"],
        input=token + "\n", capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "failed"


def test_decode_of_a_refused_token_says_why_and_exits_1(
    config: str, rsa_keys: KeySet, stranger_rsa_key: PrivateKey, capsys: pytest.CaptureFixture[str]
) -> None:
    token = tokens.make_auth_result(AuthResult("failed"), rsa_keys.encrypt, stranger_rsa_key)
    assert cli("--decode", "--config", config, token) == 1
    captured = capsys.readouterr()
    assert "refused (bad_signature)" in captured.err
    assert "signature does not verify" in captured.err
    assert captured.out == ""
    for segment in token.split("."):
        assert segment not in captured.err


def test_decode_of_an_expired_token_needs_no_expiry(
    config: str, rsa_keys: KeySet, capsys: pytest.CaptureFixture[str]
) -> None:
    token = tokens.make_auth_result(AuthResult("failed"), rsa_keys.encrypt, rsa_keys.sign, now=time.time() - 3600)
    assert cli("--decode", "--config", config, token) == 1
    assert "refused (expired)" in capsys.readouterr().err
    assert cli("--decode", "--config", config, "--no-expiry", token) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["status"] == "failed"
    assert "has expired" in captured.err


def test_decode_with_a_broken_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('[global]\ninternal_url = "http://127.0.0.1:8000"\n')
    assert cli("--decode", "--config", str(broken), "x.y.z") == 2
    assert "configuration error" in capsys.readouterr().err


def test_mint_options_are_refused_when_decoding(config: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("--decode", "--config", config, "--attr", "email=secret@x", "x") == 2
    err = capsys.readouterr().err
    assert "--attr is only for minting" in err
    assert "secret" not in err
    assert cli("--decode", "--config", config, "--enc", "A256GCM", "x") == 2
    assert "--enc is only for minting" in capsys.readouterr().err


def test_decode_refuses_what_the_plugin_refuses_on_receipt(
    config: str, rsa_keys: KeySet, capsys: pytest.CaptureFixture[str]
) -> None:
    token = tokens.make_auth_result(AuthResult("failed"), rsa_keys.encrypt, rsa_keys.sign, lifetime=31 * 365 * 86400)
    assert cli("--decode", "--config", config, token) == 1
    assert "refused (lifetime)" in capsys.readouterr().err


def test_decode_reads_every_accepted_combination(
    config: str, rsa_keys: KeySet, capsys: pytest.CaptureFixture[str]
) -> None:
    token = tokens.make_auth_result(AuthResult("failed"), rsa_keys.encrypt, rsa_keys.sign, alg="RSA-OAEP-256",
                                    enc="A256GCM")
    assert cli("--decode", "--config", config, token) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "failed"


# --------------------------------------------------------------------------- posting


class Recorder(BaseHTTPRequestHandler):
    """Records each POST and answers with the server's ``reply`` (status, body)."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.seen.append((self.path, self.headers["Content-Type"], body.decode()))  # type: ignore[attr-defined]
        status, reply = self.server.reply  # type: ignore[attr-defined]
        self.send_response(status)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    """A real HTTP server on loopback that records what it is sent."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    httpd.seen = []  # type: ignore[attr-defined]
    httpd.reply = (200, b"")  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_post_sends_the_token_as_application_jwt(
    key_files: dict[str, str], rsa_keys: KeySet, server: ThreadingHTTPServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{server.server_port}/session_result/SecretResultCode123"
    assert cli(*mint_rsa(key_files, "--attr", "email=jane@example.com", "--post", url)) == 0
    out = capsys.readouterr().out
    assert out.strip() == "HTTP 200"
    [(path, content_type, body)] = server.seen  # type: ignore[attr-defined]
    assert (path, content_type) == ("/session_result/SecretResultCode123", "application/jwt")
    assert tokens.read_auth_result(body, rsa_keys.decrypt, rsa_keys.verify).attributes == {"email": "jane@example.com"}


def test_post_refused_prints_the_status_and_error_and_exits_1(
    key_files: dict[str, str], server: ThreadingHTTPServer, capsys: pytest.CaptureFixture[str]
) -> None:
    server.reply = (404, b'{"error": "NotFound"}')  # type: ignore[attr-defined]
    url = f"http://127.0.0.1:{server.server_port}/session_result/SecretResultCode123"
    assert cli(*mint_rsa(key_files, "--post", url)) == 1
    captured = capsys.readouterr()
    assert captured.out.strip() == 'HTTP 404 {"error": "NotFound"}'
    assert "SecretResultCode123" not in captured.out + captured.err


def test_post_to_a_closed_port_fails_cleanly(key_files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    closed = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    port = closed.server_port
    closed.server_close()
    assert cli(*mint_rsa(key_files, "--post", f"http://127.0.0.1:{port}/session_result/Code")) == 1
    assert "cannot post" in capsys.readouterr().err


def test_post_needs_an_http_url(key_files: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(*mint_rsa(key_files, "--post", "file:///etc/passwd")) == 2
    assert "http(s) URL" in capsys.readouterr().err


def test_the_connect_plugin_command_has_the_token_subcommand(
    key_files: dict[str, str], rsa_keys: KeySet, capsys: pytest.CaptureFixture[str]
) -> None:
    from connect_plugin import cli as main_cli

    assert main_cli.main(["token", *mint_rsa(key_files, "--attr", "email=a@example.com")]) == 0
    token = capsys.readouterr().out.strip()
    assert tokens.read_auth_result(token, rsa_keys.decrypt, rsa_keys.verify).attributes == {"email": "a@example.com"}
