"""``connect-plugin``: serve | migrate | cleanup | token | demo.

Thin: parse arguments, load settings, call into ``app``/``migrate``/``service``.
A bad setting ends the program with one line on stderr naming the key, and
exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Sequence

from . import logs, reference_options, reporting
from .codes import code_secret_for
from .config import Settings, load_settings
from .config.database import is_postgres, is_sqlite
from .errors import ConfigError, StoreUnavailable
from .schema_head import shipped_head
from .stores.sqlite_runner import sqlite_revision
from .stores.urls import sqlite_path

log = logging.getLogger("connect_plugin")

EXIT_CONFIG = 2
EXIT_UNAVAILABLE = 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``connect-plugin`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_CONFIG
    try:
        return args.func(args)
    except ConfigError as error:
        print(f"connect-plugin: configuration error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except StoreUnavailable as error:
        reason = f" ({error.reason})" if error.reason else ""
        print(f"connect-plugin: database unavailable: {error.detail}{reason}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="connect-plugin",
        description="Amazon Connect telephony communication plugin for ID Contact.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    _command(sub, "serve", "run the HTTP service (migrates an embedded SQLite database first)", _serve)
    reference_options.add_arguments(
        _command(sub, "migrate", "upgrade the database schema to the newest revision", _migrate))
    _command(sub, "cleanup", "delete sessions idle for longer than session_ttl, once", _cleanup)
    from . import token_cli  # the token tool has heavier imports; keep it apart

    token_cli.register(sub)
    from . import demo

    demo.register(sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("connect-plugin")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _command(sub: argparse._SubParsersAction, name: str, text: str,
             func: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=text, description=text)
    p.add_argument("--config", metavar="FILE",
                   help="TOML settings file (default: $CONNECT_PLUGIN_CONFIG, then $ROCKET_CONFIG)")
    p.set_defaults(func=func)
    return p


#: Libraries whose debug output carries SQL parameters: tokens, codes, contact ids.
QUIET_LOGGERS = ("sqlalchemy", "aiosqlite", "asyncpg")


def setup_logging(settings: Settings) -> None:
    """Log to stderr at the configured level, as text or as JSON lines (``log_format``).

    Access lines go through ``logs.log_request``; every line written while a
    request is handled carries its request id (a field of its own in JSON).
    Database drivers log at warning level at most, even with ``log_level = "debug"``:
    their debug lines hold the values of every statement.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(logs.RequestContext())
    if settings.log_format == "json":
        handler.setFormatter(logs.JsonLines())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=settings.log_level_number, handlers=[handler], force=True)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, settings.log_level_number))


def _settings(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    setup_logging(settings)
    for level, message in settings.notices:
        log.log(level, "%s", message)
    if reporting.start(settings):
        log.info("unexpected errors are reported to Sentry (request data and variables left out)")
    return settings


def _serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if is_sqlite(settings.database_url):
        _migrate_sqlite(settings)
    return asyncio.run(_run_server(settings))


def _migrate_sqlite(settings: Settings) -> None:
    """Bring the embedded SQLite database to head; one cheap read (no Alembic) when it is there already.

    A migration runs in a child process: Alembic and SQLAlchemy would otherwise
    stay loaded in the server for its whole life (about 20 MB) for a step of
    its first second.
    """
    path = sqlite_path(settings.database_url)
    head = shipped_head()
    if path is None:  # in memory: only this process can see it
        from . import migrate

        migrate.upgrade(settings.database_url, code_secret=code_secret_for(settings))
    elif sqlite_revision(path) != head:
        _upgrade_in_child(settings.database_url, code_secret_for(settings))
    log.info("SQLite database %s is at revision %s", path, head)


def _upgrade_in_child(url: str, code_secret: bytes) -> None:
    """``migrate.upgrade`` in a fresh process (the URL and secret travel through its stdin, not its command line).

    A plain child process, not ``multiprocessing``: that would leave its
    resource tracker process running beside the server for good.  ``-P``: the
    working directory is not on its ``sys.path`` (a source checkout there would
    stand in for the installed package).
    """
    import json
    import subprocess

    request = json.dumps({"url": url, "code_secret": code_secret.hex()})
    done = subprocess.run([sys.executable, "-P", "-m", "connect_plugin.migrate"],
                          input=request, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode == 0:
        return
    try:
        failure = json.loads(done.stdout)
    except ValueError:
        raise StoreUnavailable("the migration of the SQLite database failed",
                               reason=f"the migration process exited with {done.returncode}") from None
    raise StoreUnavailable(failure["detail"], reason=failure["reason"])


async def _run_server(settings: Settings) -> int:
    from .app import Runtime

    runtime = Runtime(settings)
    try:
        await runtime.start()
    except ConfigError:
        await runtime.parts.store.close()
        raise
    except OSError as error:
        print(f"connect-plugin: cannot listen on {settings.address}:{settings.port}: {error.strerror}",
              file=sys.stderr)
        await runtime.parts.store.close()
        return EXIT_CONFIG
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    log.info("stopping: finishing in-flight requests")
    await runtime.stop()
    log.info("stopped")
    return 0


def _migrate(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if not (is_sqlite(settings.database_url) or is_postgres(settings.database_url)):
        scheme = settings.database_url.split(":", 1)[0]
        print(f"nothing to migrate: a {scheme}: store is a plugin's and keeps no SQL schema")
        return 0
    from . import migrate

    reference_options.check_arguments(args, settings)
    migrate.upgrade(settings.database_url, code_secret=code_secret_for(settings))
    print(f"database is at revision {migrate.head_revision()}")
    if args.from_reference:  # switching over: take over the reference plugin's live sessions
        from . import reference

        return reference.run(settings, args)
    return 0


def _cleanup(args: argparse.Namespace) -> int:
    settings = _settings(args)

    async def run() -> int:
        from .app import Runtime

        runtime = Runtime(settings)
        await runtime.parts.store.open()
        try:
            return await runtime.service.cleanup()
        finally:
            await runtime.parts.store.close()

    deleted = asyncio.run(run())
    print(f"deleted {deleted} idle session(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
