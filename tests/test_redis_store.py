"""The Redis store (``plugins/redis-store``): the contract kit, its keys, their expiry, and its settings.

Against the real Redis server (``tests/fixtures/redis.py``), under a key
prefix of each test's own.
"""

from __future__ import annotations

import pytest

from connect_plugin.testing import StoreContract
from tests.support import free_port

redis_store = pytest.importorskip("connect_plugin_redis_store")


class TestRedisStore(StoreContract):
    """Sessions expire by Redis TTL: the kit reads their expiry with ``PEXPIRETIME``."""

    expires_by_itself = True

    @pytest.fixture
    def store_factory(self, redis_server, redis_prefix):
        return lambda: redis_store.RedisStore(redis_server, prefix=redis_prefix, session_ttl=3600, timeout=5.0)

    @pytest.fixture
    def unreachable_store_factory(self):
        return lambda: redis_store.RedisStore(f"redis://127.0.0.1:{free_port()}/0", prefix="x:", session_ttl=60)

    async def session_expiry(self, store, session):
        return await store.expires_at(session.result_key)
