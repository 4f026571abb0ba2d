"""The store contract kit (``connect_plugin.testing``) against the built-in store.

``SqlStore`` runs every check on a fresh SQLite file and on the real
PostgreSQL server; the example stores run the same kit in ``test_memory_store.py``
and ``test_redis_store.py``.
"""

from __future__ import annotations

import pytest

from connect_plugin.stores.sql import SqlStore
from connect_plugin.testing import StoreContract
from tests.support import free_port


class TestSqlStore(StoreContract):
    """Each test twice: on SQLite and on PostgreSQL (``database_url`` is parametrized)."""

    @pytest.fixture
    def store_factory(self, database_url):
        # Two stores on one SQLite file are two writers: give the file lock time under the races.
        return lambda: SqlStore(database_url, timeout=5.0)

    @pytest.fixture
    def unreachable_store_factory(self):
        return lambda: SqlStore(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing", timeout=1.0)

