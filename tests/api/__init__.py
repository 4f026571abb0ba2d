"""Schemathesis against a live ``connect-plugin serve`` (``tox -e api``): see ``run.py``."""
