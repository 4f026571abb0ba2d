"""Agent sign-in: the built-in implementations of ``hookspecs.AgentAuth``.

* ``open.py``: ``agent_auth = "none"``, the reference's behaviour: no sign-in.
* ``oidc.py``: ``agent_auth = "oidc"``, the plugin signs agents in with OpenID
  Connect (``provider.py`` talks to the provider, ``cookie.py`` keeps the
  sign-in in a signed cookie).
* ``alb.py``: ``agent_auth = "alb"``, an AWS Application Load Balancer signs
  agents in and the plugin checks the claims it forwards.
* ``rules.py``: which agents may see citizens' data (``oidc`` and ``alb``).

Which one runs is decided by the ``agent_auth`` setting, through the
``connect_plugin_agent_auth`` hook (``defaults.py``); a deployer's plugin can
provide another mode through the same hook.  See docs/agent-sign-in.md.
"""
