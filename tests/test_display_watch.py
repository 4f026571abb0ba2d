"""``FlowService.watch``: a display's view of one call, straight from the flow service (no HTTP).

``/session_events`` only frames what a watch gives; these tests hold the watch
itself to what the stream promises (see ``test_web_events`` for the wire).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from connect_plugin.model import ANONYMOUS, Agent
from tests.support import dtmf_of

CONTACT = "3c1e5a7b-9d2f-4b6a-8e0c-1f3a5b7d9e21"
TRANSLATIONS = {"en": {"report_move": "Report a move"}}


async def next_item(items: AsyncIterator[Any], timeout: float = 5) -> Any:
    """The watch's next item, within ``timeout`` seconds."""
    return await asyncio.wait_for(anext(items), timeout)


async def ended(items: AsyncIterator[Any], timeout: float = 5) -> bool:
    """True when the watch ends within ``timeout`` seconds, giving no state before (a quiet spell's ``None`` may)."""
    async def rest() -> list[Any]:
        return [item async for item in items if item is not None]

    return await asyncio.wait_for(rest(), timeout) == []


@pytest.mark.gen_test(timeout=30)
async def test_a_watch_gives_labels_the_state_at_once_then_each_change_once(plugin_factory, mint):
    plugin = await plugin_factory(translations=TRANSLATIONS, events_keepalive=1)
    service = plugin.runtime.service
    started = await plugin.api.start("report_move")
    async with service.watch(CONTACT, ANONYMOUS, accept_language="en-GB") as watch:
        assert watch.labels["locale"] == "en"
        assert watch.labels["labels"]["report_move"] == "Report a move"
        items = aiter(watch)
        assert await next_item(items) == {"state": "no_session", "locale": "en"}
        assert (await plugin.api.link(dtmf_of(started), CONTACT)).status == 200
        assert (await next_item(items))["state"] == "waiting"
        await service.notifier.publish(CONTACT)  # a wake without a change repeats nothing ...
        assert await next_item(items) is None  # ... the next item is the quiet spell's
        assert (await plugin.api.post_result(started.json["attr_url"], mint())).status == 200
        assert (await next_item(items))["state"] == "verified"
    assert plugin.runtime.parts.notifier.listener_count() == 0


@pytest.mark.gen_test(timeout=30)
async def test_a_watch_ends_when_its_display_goes(plugin_factory):
    plugin = await plugin_factory(events_keepalive=60)
    gone = asyncio.Event()
    async with plugin.runtime.service.watch(CONTACT, ANONYMOUS, until=gone) as watch:
        items = aiter(watch)
        assert (await next_item(items))["state"] == "no_session"
        assert plugin.runtime.parts.notifier.listener_count() == 1
        gone.set()
        assert await ended(items, timeout=2)
    assert plugin.runtime.parts.notifier.listener_count() == 0


@pytest.mark.gen_test(timeout=30)
async def test_a_watch_ends_when_the_viewers_sign_in_does(plugin_factory):
    plugin = await plugin_factory(events_keepalive=60)
    viewer = Agent(subject="agent-1", expires_at=time.time() + 1)
    async with plugin.runtime.service.watch(CONTACT, viewer) as watch:
        items = aiter(watch)
        assert (await next_item(items))["state"] == "no_session"
        assert await ended(items, timeout=5)


@pytest.mark.gen_test(timeout=30)
async def test_watches_end_when_the_plugin_stops(plugin_factory):
    plugin = await plugin_factory(events_keepalive=60)
    service = plugin.runtime.service
    async with service.watch(CONTACT, ANONYMOUS) as watch:
        items = aiter(watch)
        await next_item(items)
        service.end_watches()
        await service.notifier.publish(CONTACT)
        assert await ended(items, timeout=2)
