"""The README's store plugin and its test are the files the suite runs, word for word.

``plugins/memory-store/connect_plugin_memory_store.py`` is installed like any
plugin and ``tests/test_memory_store.py`` runs the contract kit on it; this
test keeps the README's copies of both true.
"""

from __future__ import annotations

import re

from tests.support import ROOT


def python_blocks(section: str) -> list[str]:
    """The fenced ``python`` blocks of one ``###`` section of the README."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    body = text.split(f"### {section}\n", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    return re.findall(r"```python\n(.*?)```", body, flags=re.DOTALL)


def test_the_readme_shows_the_memory_store_plugin_and_its_kit_test_as_they_are():
    store, test = python_blocks("Writing a store plugin")
    assert store == (ROOT / "plugins/memory-store/connect_plugin_memory_store.py").read_text(encoding="utf-8")
    assert test == (ROOT / "tests/test_memory_store.py").read_text(encoding="utf-8")


def test_the_readme_store_plugin_imports_only_from_connect_plugin_api():
    store, test = python_blocks("Writing a store plugin")
    imports = re.findall(r"^from (connect_plugin(?:\.\w+)*) import", store + test, flags=re.MULTILINE)
    assert sorted(set(imports)) == ["connect_plugin.api", "connect_plugin.testing"]
