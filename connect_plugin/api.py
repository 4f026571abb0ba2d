"""Everything a plugin author imports, from one place.

A plugin needs the hook marker, the interfaces its part must offer, the plain
data the flow hands it, the errors it may raise and the settings it is
given; they live in several modules of the package, and are re-exported
here so that a plugin reads ``from connect_plugin.api import ...``::

    from connect_plugin.api import CodeTaken, NotFound, SessionStore, hookimpl

The names here are the plugin interface: they stay importable from here
across releases.  Checks for a store plugin are in ``connect_plugin.testing``
(which needs pytest).
"""

from __future__ import annotations

from .config import Settings
from .errors import CodeTaken, ConfigError, NotFound, StoreUnavailable, TokenReused
from .hookspecs import AgentAuth, CodeGenerator, Notifier, SessionStore, Subscription, Translator, hookimpl
from .model import Agent, FailureWindow, NewResult, NewSession, StoredSession
from .notify import LocalNotifier

__all__ = [
    "Agent",
    "AgentAuth",
    "CodeGenerator",
    "CodeTaken",
    "ConfigError",
    "FailureWindow",
    "LocalNotifier",
    "NewResult",
    "NewSession",
    "NotFound",
    "Notifier",
    "SessionStore",
    "Settings",
    "StoreUnavailable",
    "StoredSession",
    "Subscription",
    "TokenReused",
    "Translator",
    "hookimpl",
]
