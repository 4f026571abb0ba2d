"""The memory-store example, tested with the store contract kit (shown in full in the README)."""

import pytest
from connect_plugin_memory_store import MemoryStore

from connect_plugin.testing import StoreContract


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store_factory(self):
        store = MemoryStore()  # one process, one object: both "instances" of each test are this store
        return lambda: store
