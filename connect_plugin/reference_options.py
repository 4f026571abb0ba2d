"""The options of ``connect-plugin migrate`` that take over the reference plugin's live sessions.

Kept apart from ``reference`` (the copy itself, which needs SQLAlchemy's
engines) so that building the command line costs ``serve`` nothing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .config import Settings
from .config.database import is_postgres, normalise
from .errors import ConfigError
from .stores.urls import require_driver

#: The reference plugin's table of sessions.
TABLE = "session"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``connect-plugin migrate`` that take over the reference's sessions."""
    group = parser.add_argument_group("switching over from the reference plugin")
    group.add_argument("--from-reference", action="store_true",
                       help="after migrating, copy the live sessions of the reference plugin's table "
                            f"{TABLE!r} into this plugin's; safe to run again")
    group.add_argument("--from", dest="reference_url", metavar="URL",
                       help="the reference's database, in any form database_url takes "
                            "(default: this plugin's own database)")
    group.add_argument("--drop-reference-table", action="store_true",
                       help=f"drop the table {TABLE!r} once its sessions are copied (stop the old plugin first)")
    group.add_argument("--reference-timezone", metavar="ZONE",
                       help="the time zone the reference wrote its times in (default: the database's TimeZone)")


def check_arguments(args: argparse.Namespace, settings: Settings) -> None:
    """Refuse a wrong ``--from`` before anything changes; the reference's options need ``--from-reference``."""
    if args.from_reference:
        source_url(settings, args.reference_url)
        return
    for option, given in (("--from", args.reference_url), ("--drop-reference-table", args.drop_reference_table),
                          ("--reference-timezone", args.reference_timezone)):
        if given:
            raise ConfigError(option, "only with --from-reference")


def source_url(settings: Settings, given: str | None) -> str:
    """The reference's database: ``--from`` (any form ``database_url`` takes), else ours; PostgreSQL only."""
    url = normalise(given, "--from", Path.cwd()) if given is not None else settings.database_url
    if not is_postgres(url):
        if given is None:
            raise ConfigError("--from", "this plugin's database is not PostgreSQL, where the reference keeps its "
                                        "sessions: give the reference's database with --from URL")
        raise ConfigError("--from", "must be the reference's PostgreSQL database")
    require_driver(url)
    return url
