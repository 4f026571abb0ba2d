"""The plugin manager: built-in defaults, then plugins installed through entry points.

A deployer's plugin is a distribution that declares an entry point in the
``connect_plugin`` group pointing at a module (or object) with ``@hookimpl``
functions; see the README, "Plugins".
"""

from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass

import pluggy

from . import defaults, hookspecs
from .config import Settings
from .errors import ConfigError
from .hookspecs import AgentAuth, CodeGenerator, Notifier, SessionStore, Translator

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "connect_plugin"
DEFAULT_PLUGINS = (defaults,)


@dataclass(frozen=True)
class Parts:
    """The swappable parts of one running plugin."""

    store: SessionStore
    code_generator: CodeGenerator
    translator: Translator
    notifier: Notifier
    agent_auth: AgentAuth


def make_manager(load_entry_points: bool = True) -> pluggy.PluginManager:
    """A PluginManager with the hook specifications, the defaults and installed plugins."""
    pm = pluggy.PluginManager(hookspecs.PROJECT)
    pm.add_hookspecs(hookspecs)
    for plugin in DEFAULT_PLUGINS:
        pm.register(plugin, name=f"default:{plugin.__name__.rsplit('.', 1)[-1]}")
    if load_entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    return pm


def build_parts(settings: Settings, pm: pluggy.PluginManager) -> Parts:
    """Ask the hooks for each part; the first plugin that answers provides it."""
    hook = pm.hook
    agent_auth = hook.connect_plugin_agent_auth(settings=settings)
    if agent_auth is None:
        raise ConfigError("agent_auth", f"no installed plugin provides {settings.agent_auth!r} "
                                        '(built in: "oidc", "alb", "none")')
    parts = Parts(
        store=hook.connect_plugin_session_store(settings=settings),
        code_generator=hook.connect_plugin_code_generator(settings=settings),
        translator=hook.connect_plugin_translator(settings=settings),
        notifier=hook.connect_plugin_notifier(settings=settings),
        agent_auth=agent_auth,
    )
    for name, part in vars(parts).items():
        check_part(name, part, PART_PROTOCOLS[name], pm)
        log.info("%s: %s", name.replace("_", " "), type(part).__module__ + "." + type(part).__qualname__)
    return parts


#: The interface each part must offer (see ``hookspecs``).
PART_PROTOCOLS: dict[str, type] = {
    "store": SessionStore,
    "code_generator": CodeGenerator,
    "translator": Translator,
    "notifier": Notifier,
    "agent_auth": AgentAuth,
}


def check_part(name: str, part: object, protocol: type, pm: pluggy.PluginManager) -> None:
    """Refuse, in one line naming the plugin, a part lacking a method of its Protocol (or not async as it must be)."""
    problems = []
    for member in _protocol_methods(protocol):
        wanted = getattr(protocol, member)
        found = getattr(part, member, None)
        if not callable(found):
            problems.append(f"no method {member}")
        elif inspect.iscoroutinefunction(wanted) and not inspect.iscoroutinefunction(found):
            problems.append(f"{member} is not async")
    if problems:
        kind = name.replace("_", " ")
        raise ConfigError(kind, f"{type(part).__qualname__} from plugin {provider_name(part, pm)!r} is not a "
                                f"{protocol.__name__}: {', '.join(problems)}")


def _protocol_methods(protocol: type) -> list[str]:
    return sorted(name for name, value in vars(protocol).items()
                  if not name.startswith("_") and callable(value))


def provider_name(part: object, pm: pluggy.PluginManager) -> str:
    """The registered plugin a part most likely came from (by module), for messages."""
    module = type(part).__module__
    for name, plugin in pm.list_name_plugin():
        plugin_module = plugin.__name__ if inspect.ismodule(plugin) else type(plugin).__module__
        if module == plugin_module or module.startswith(plugin_module.split(".")[0] + "."):
            return name
    return module


def plugin_names(pm: pluggy.PluginManager) -> list[str]:
    """Names of the registered plugins (for diagnostics)."""
    return sorted(name for name, _ in pm.list_name_plugin())
