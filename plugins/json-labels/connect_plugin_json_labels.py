"""A translator plugin: labels for purposes and attribute keys from a JSON file.

Turned on by ``[global.plugins.json_labels] file = "labels.json"`` (a path
relative to the configuration file).  The file maps locales to labels::

    {"nl": {"report_move": "Verhuizing doorgeven", "email": "E-mailadres"},
     "en": {"report_move": "Report a move", "email": "Email address"}}

Its labels are laid over those of ``[global.translations.<locale>]``, so a
deployer can keep a few in the configuration and the long list in the file.
"""

from __future__ import annotations

import json

from connect_plugin.config import Settings
from connect_plugin.errors import ConfigError
from connect_plugin.hookspecs import hookimpl
from connect_plugin.translations import ConfigTranslator

NAME = "json_labels"


class JsonLabels(ConfigTranslator):
    """The built-in translator's lookups, over the configuration's labels overlaid with the file's."""


def load(settings: Settings, file: str) -> JsonLabels:
    """Read and check the file; problems are ConfigErrors naming the setting."""
    key = f"plugins.{NAME}.file"
    path = settings.resolve_path(file)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(key, f"cannot read {path}: {error.strerror}") from None
    except ValueError:
        raise ConfigError(key, f"{path} is not valid JSON") from None
    if not isinstance(data, dict) or not all(
        isinstance(table, dict) and all(isinstance(v, str) for v in table.values()) for table in data.values()
    ):
        raise ConfigError(key, "must map locales to objects of label strings")
    merged: dict[str, dict[str, str]] = {locale: dict(t) for locale, t in settings.translations.items()}
    for locale, table in data.items():
        merged.setdefault(locale.lower(), {}).update(table)
    return JsonLabels(merged)


@hookimpl
def connect_plugin_translator(settings: Settings) -> JsonLabels | None:
    """Answer only when ``[global.plugins.json_labels]`` names a file."""
    options = settings.plugins.get(NAME)
    if not isinstance(options, dict) or "file" not in options:
        return None
    return load(settings, str(options["file"]))
