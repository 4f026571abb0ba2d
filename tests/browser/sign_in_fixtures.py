"""Fixtures for the browser sign-in tests: a real OpenID provider, two plugin instances, a guarded browser.

* ``deployment``: the provider (Node's ``oidc-provider``) and two
  ``connect-plugin serve`` processes, A and B, on one PostgreSQL database and
  one cookie secret, as several instances run behind a load balancer.
* ``agent_page``: a page in a fresh browser context (no sign-in yet) that
  can reach nothing but this machine: the provider's own pages ask for web
  fonts, which must never leave it.

``tests/browser/test_agent_sign_in.py`` imports these by name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.browser.live import Calls
from tests.sign_in_support import CCP_URL, STREAMS_URL, OpenIdProviderProcess
from tests.support import KeySet, PluginProcess, free_port, rsa_keyset, write_config

SIGN_IN_WAIT_MS = 20_000  # a sign-in is several redirects and two forms on a busy machine


@dataclass
class Deployment:
    """An OpenID provider and two plugin instances that share a database and a cookie secret."""

    provider: OpenIdProviderProcess
    a: PluginProcess
    b: PluginProcess

    def calls(self, instance: PluginProcess) -> Calls:
        """The protocol's calls (core, authentication plugin, Lambda) to one instance."""
        return Calls(instance.base_url)


@pytest.fixture(scope="module")
def deployment(postgres_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    """Provider, instance A and instance B; stopped after the module."""
    folder = tmp_path_factory.mktemp("sign-in")
    keyset: KeySet = rsa_keyset()
    ports = {"a": free_port(), "b": free_port()}
    provider = OpenIdProviderProcess([f"http://127.0.0.1:{p}/agent/callback" for p in ports.values()],
                                     log_dir=folder).start()
    instances = {}
    try:
        for name, port in ports.items():
            config = write_config(folder / f"{name}.toml", keyset, internal_url=f"http://127.0.0.1:{port}",
                                  database_url=postgres_server, amazon_connect_url=CCP_URL, streams_url=STREAMS_URL,
                                  **provider.settings())
            instances[name] = PluginProcess(config, port=port, log_dir=folder).start()
        yield Deployment(provider, instances["a"], instances["b"])
    finally:
        for instance in instances.values():
            instance.terminate()
        provider.stop()


def _local_only(route: Any) -> None:
    host = urlsplit(route.request.url).hostname
    if host in ("127.0.0.1", "localhost"):
        route.continue_()
    else:
        route.abort()


@pytest.fixture
def agent_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """``agent_page(width=640, height=480)``: a page of a fresh browser context, kept on this machine."""
    contexts: list[Any] = []
    problems: list[str] = []

    def open_(width: int = 640, height: int = 480) -> Any:
        context = browser.new_context(locale="en-US", viewport={"width": width, "height": height})
        context.set_default_timeout(SIGN_IN_WAIT_MS)
        context.route("**/*", _local_only)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: problems.append(f"uncaught exception: {error}"))
        return page

    yield open_
    for context in contexts:
        context.close()
    assert problems == [], "the pages raised errors"
