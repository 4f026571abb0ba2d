"""Each setting is declared once: the README's table and the loader are both made from the declarations."""

from __future__ import annotations

import dataclasses
import re

from connect_plugin.config import Settings, markdown_table
from connect_plugin.config.settings import REQUIRED, declared, known_keys
from connect_plugin.errors import error_word
from tests.support import ROOT


def test_readme_configuration_table_is_the_declared_one():
    readme = (ROOT / "README.md").read_text()
    table = markdown_table()
    assert table in readme, "README's table differs: paste the output of `python -m connect_plugin.config`"


def test_every_field_of_settings_is_a_declared_setting_or_a_loading_fact():
    facts = {"source", "notices", "open_on_purpose"}
    names = {f.name for f, _ in declared()}
    assert {f.name for f in dataclasses.fields(Settings)} == names | facts


def test_every_declaration_has_documentation_and_a_parser():
    for _, spec in declared():
        assert spec.doc, spec.key
        assert callable(spec.parse), spec.key
        assert re.fullmatch(r"[a-z_]+", spec.key), spec.key


def test_declared_defaults_pass_their_own_parser(tmp_path):
    from connect_plugin.config.values import Context

    for _, spec in declared():
        if spec.default is REQUIRED or spec.default is None:
            continue
        spec.parse(spec.default, Context(spec.key, tmp_path))


def test_known_keys_are_the_declared_keys():
    assert "decryption_privkey" in known_keys()
    assert "decryption_key" not in known_keys()
    assert len(known_keys()) == len(declared())


def test_error_words_come_from_one_place():
    assert [error_word(s) for s in (400, 401, 403, 404, 405, 413, 415, 421, 429, 503)] == [
        "BadRequest", "Unauthorized", "Forbidden", "NotFound", "MethodNotAllowed", "PayloadTooLarge",
        "UnsupportedMediaType", "MisdirectedRequest", "TooManyRequests", "ServiceUnavailable",
    ]
