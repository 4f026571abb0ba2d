"""A store plugin: sessions in Redis, for several plugin instances, with a notifier over Redis pub/sub.

Turned on by a Redis URL as the database::

    [global]
    database_url = "redis://127.0.0.1:6379/0"      # rediss:// for TLS; redis://:password@host/0

    [global.plugins.redis_store]                    # optional
    key_prefix = "connect-plugin:"                  # the default

Every key starts with ``key_prefix``, so several deployments (or test runs)
can share one server.  ``database_pool_size`` bounds each instance's
connections and ``database_timeout`` every wait on Redis, as for PostgreSQL;
sessions expire ``session_ttl`` seconds after their last activity through
Redis's own TTL.  Nothing is migrated: the store needs no schema.
"""

from __future__ import annotations

import re

from connect_plugin.api import ConfigError, Settings, hookimpl

from .notifier import RedisNotifier
from .store import RedisStore

__all__ = ["RedisNotifier", "RedisStore", "connect_plugin_notifier", "connect_plugin_session_store", "is_redis"]

NAME = "redis_store"
SCHEMES = ("redis", "rediss")
DEFAULT_PREFIX = "connect-plugin:"
_PREFIX = re.compile(r"[A-Za-z0-9_.:{}/-]{1,64}")


def is_redis(url: str) -> bool:
    """Whether a database URL names a Redis server."""
    return url.split(":", 1)[0].lower() in SCHEMES


def key_prefix(settings: Settings) -> str | None:
    """The deployment's key prefix when ``database_url`` is a Redis URL, else ``None``.

    ``[global.plugins.redis_store]`` without a Redis URL is a mistake, not a
    choice: it stops start-up, naming the setting.
    """
    options = settings.plugins.get(NAME)
    if not is_redis(settings.database_url):
        if options is not None:
            raise ConfigError(f"plugins.{NAME}", 'is set but database_url is not a redis:// URL')
        return None
    if options is None:
        return DEFAULT_PREFIX
    if not isinstance(options, dict):
        raise ConfigError(f"plugins.{NAME}", "must be a table")
    unknown = sorted(set(options) - {"key_prefix"})
    if unknown:
        raise ConfigError(f"plugins.{NAME}.{unknown[0]}", "unknown (known: key_prefix)")
    prefix = options.get("key_prefix", DEFAULT_PREFIX)
    if not isinstance(prefix, str) or not _PREFIX.fullmatch(prefix):
        raise ConfigError(f"plugins.{NAME}.key_prefix", "must be 1 to 64 of the characters A-Z a-z 0-9 _ . : { } / -")
    return prefix


@hookimpl
def connect_plugin_session_store(settings: Settings) -> RedisStore | None:
    """The Redis store, for a ``redis://`` or ``rediss://`` ``database_url`` only."""
    prefix = key_prefix(settings)
    if prefix is None:
        return None
    return RedisStore(settings.database_url, prefix=prefix, session_ttl=settings.session_ttl,
                      pool_size=settings.database_pool_size, timeout=settings.database_timeout)


@hookimpl
def connect_plugin_notifier(settings: Settings) -> RedisNotifier | None:
    """Pub/sub on the same server, so that a display on one instance hears of writes through another."""
    prefix = key_prefix(settings)
    if prefix is None:
        return None
    return RedisNotifier(settings.database_url, channel=f"{prefix}events", timeout=settings.database_timeout)
