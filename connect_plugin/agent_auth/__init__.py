"""Agent sign-in: the built-in implementations of ``hookspecs.AgentAuth``.

* ``open.py``: ``agent_auth = "none"``, the reference's behaviour: no sign-in.

Which one runs is decided by the ``agent_auth`` setting, through the
``connect_plugin_agent_auth`` hook (``defaults.py``); a deployer's plugin can
provide another mode through the same hook.
"""
