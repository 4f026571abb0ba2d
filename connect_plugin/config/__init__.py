"""Settings: a TOML file plus environment overrides, read the way the reference (Rocket) reads them.

* ``settings.py`` declares every setting once (key, type, default, bounds, documentation);
* ``sources.py`` finds the file, merges its profiles and reads the environment;
* ``load.py`` validates the lot into a frozen :class:`Settings`;
* ``values.py`` and ``database.py`` hold the parsers.

Every problem is a :class:`~connect_plugin.errors.ConfigError` naming the key and
what is wrong, never the value: values include private keys and tokens.
"""

from .load import load_settings
from .settings import LOG_LEVELS, Settings, markdown_table
from .values import OPEN, Secret, is_loopback

__all__ = ["LOG_LEVELS", "OPEN", "Secret", "Settings", "is_loopback", "load_settings", "markdown_table"]
