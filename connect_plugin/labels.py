"""The attribute display's words: built-in interface strings, the browser's locale, and labels.

The built-in interface strings are ``web_assets/attribute-ui/strings.json``,
the one place they live (the display reads the same file).  Labels of purpose
tags and attribute keys come from the translator hook; the locale is
negotiated from ``Accept-Language`` among the translator's and the built-in
locales, else ``default_locale``.  A tag without a label in that locale gets
``default_locale``'s label, as the reference falls back to Dutch.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import connect_plugin.web_assets

from .hookspecs import Translator

STRINGS_FILE = Path(connect_plugin.web_assets.__path__[0]) / "attribute-ui" / "strings.json"
FALLBACK_STRINGS_LOCALE = "en"
MAX_LANGUAGES = 16  # Accept-Language entries looked at
_LANGUAGE_TAG = re.compile(r"^(?:[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*|\*)$")


@cache
def interface_strings() -> dict[str, dict[str, str]]:
    """The built-in interface strings: locale -> key -> text (read once from ``strings.json``)."""
    return json.loads(STRINGS_FILE.read_text(encoding="utf-8"))


def accepted_languages(header: str | None) -> list[str]:
    """The language tags of an ``Accept-Language`` header, most wanted first (``q=0`` left out)."""
    weighted: list[tuple[float, int, str]] = []
    for position, item in enumerate((header or "").split(",")[:MAX_LANGUAGES]):
        tag, *params = (part.strip() for part in item.split(";"))
        if not _LANGUAGE_TAG.match(tag):
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            weighted.append((-quality, position, tag.lower()))
    return [tag for _, _, tag in sorted(weighted)]


def negotiate_locale(header: str | None, available: Iterable[str], default: str) -> str:
    """The best of ``available`` for an ``Accept-Language`` header, else ``default``.

    A tag matches a locale exactly, by its primary language (``en-US`` -> ``en``),
    or a locale of the same language (``en`` -> ``en-gb``).
    """
    locales = sorted({locale.lower() for locale in available})
    for tag in accepted_languages(header):
        if tag == "*":
            break
        primary = tag.split("-", 1)[0]
        for candidate in (tag, primary):
            if candidate in locales:
                return candidate
        for locale in locales:
            if locale.split("-", 1)[0] == primary:
                return locale
    return default.lower()


def display_locale(header: str | None, translator: Translator, default: str) -> str:
    """The display's locale: among the translator's and the built-in ones, else ``default``."""
    return negotiate_locale(header, [*translator.locales(), *interface_strings()], default)


def tag_labels(translator: Translator, locale: str, default: str) -> dict[str, str]:
    """Labels of purpose tags and attribute keys for ``locale``, else ``default``'s (as the reference does).

    A browser whose language has no labels sees the ``default_locale`` ones
    (Dutch unless configured), never the raw tags where a label exists.  Only
    tags fall back: the interface strings keep the browser's language.
    """
    interface_keys = {key for strings in interface_strings().values() for key in strings}
    fallback = {tag: label for tag, label in translator.labels(default).items() if tag not in interface_keys}
    return {**fallback, **translator.labels(locale)}


def page_labels(translator: Translator, locale: str, default: str) -> dict[str, str]:
    """Interface strings for ``locale`` with the translator's labels over them (one flat map)."""
    builtin = interface_strings()
    strings = builtin.get(locale) or builtin.get(locale.split("-", 1)[0]) or builtin[FALLBACK_STRINGS_LOCALE]
    return {**strings, **tag_labels(translator, locale, default)}


def labels_message(translator: Translator, locale: str, default: str) -> dict[str, Any]:
    """What the display needs to label a call: ``{"locale", "default_locale", "labels"}``."""
    return {"locale": locale, "default_locale": default.lower(), "labels": page_labels(translator, locale, default)}
