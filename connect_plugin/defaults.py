"""The built-in parts, registered as a plugin through the same hooks a deployer uses.

Each implementation is ``trylast``: any installed plugin that answers wins.
"""

from __future__ import annotations

from .agent_auth.alb import AlbSignIn
from .agent_auth.oidc import OidcSignIn
from .agent_auth.open import OpenAccess
from .codes import RandomDigits
from .config import OPEN, Settings
from .config.database import is_postgres
from .hookspecs import AgentAuth, hookimpl
from .notify import LocalNotifier
from .stores.sql import SqlStore
from .translations import ConfigTranslator


@hookimpl(trylast=True)
def connect_plugin_session_store(settings: Settings) -> SqlStore:
    """The SQLAlchemy store on ``database_url`` (SQLite or PostgreSQL)."""
    return SqlStore(settings.database_url, pool_size=settings.database_pool_size, timeout=settings.database_timeout)


@hookimpl(trylast=True)
def connect_plugin_code_generator(settings: Settings) -> RandomDigits:
    """``dtmf_length`` random decimal digits."""
    return RandomDigits(settings.dtmf_length)


@hookimpl(trylast=True)
def connect_plugin_translator(settings: Settings) -> ConfigTranslator:
    """Labels from ``[global.translations.<locale>]``."""
    return ConfigTranslator(settings.translations)


@hookimpl(trylast=True)
def connect_plugin_notifier(settings: Settings) -> LocalNotifier:
    """PostgreSQL LISTEN/NOTIFY on a PostgreSQL store (several instances); else in-process fan-out."""
    if is_postgres(settings.database_url):
        from .stores.pg_notify import PostgresNotifier  # needs asyncpg, the postgres extra

        return PostgresNotifier(settings.database_url, timeout=settings.database_timeout)
    return LocalNotifier()


@hookimpl(trylast=True)
def connect_plugin_agent_auth(settings: Settings) -> AgentAuth | None:
    """``oidc``: the plugin signs agents in; ``alb``: the load balancer does; ``none`` (or unset): nobody does."""
    if settings.agent_auth in (None, OPEN):
        return OpenAccess()
    if settings.agent_auth == "oidc":
        return OidcSignIn(settings)
    if settings.agent_auth == "alb":
        return AlbSignIn(settings)
    return None  # another plugin's mode
