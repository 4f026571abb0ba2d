"""``python -m connect_plugin.config``: print the README's configuration table from the declarations."""

from .settings import markdown_table

print(markdown_table(), end="")
