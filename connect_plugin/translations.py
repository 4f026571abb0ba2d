"""The built-in translator: labels from ``[global.translations.<locale>]``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class ConfigTranslator:
    """Labels for purposes and attribute keys, straight from the configuration."""

    def __init__(self, translations: Mapping[str, Mapping[str, str]]) -> None:
        self._labels = {locale.lower(): dict(labels) for locale, labels in translations.items()}

    def locales(self) -> Sequence[str]:
        """The configured locales."""
        return tuple(self._labels)

    def labels(self, locale: str) -> Mapping[str, str]:
        """Tag -> label for ``locale``; empty for a locale without labels."""
        return self._labels.get(locale.lower(), {})
