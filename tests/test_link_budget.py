"""The link failure budget: guessing codes stops after ``link_failure_budget`` failures a minute, for every code.

Over real HTTP on SQLite and PostgreSQL; the service's clock is moved to
cross windows.  Across instances with two ``connect-plugin serve`` processes
on one PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

import pytest

from tests.support import Api, PluginProcess, count_rows, dtmf_of, write_config

CONTACT = "b0d9e7c1-0000-4000-8000-000000000001"


class Clock:
    """A clock the test moves: starts one second into a whole minute."""

    def __init__(self) -> None:
        self.now = math.floor(time.time() / 60) * 60 + 1.0

    def __call__(self) -> float:
        return self.now


def wrong_code(right: str) -> str:
    """A code of the same length that is certainly not ``right``."""
    return "".join("1" if c == "0" else "0" for c in right)


async def budget_plugin(plugin_factory, budget: int):
    plugin = await plugin_factory(link_failure_budget=budget)
    clock = Clock()
    plugin.runtime.service.clock = clock
    return plugin, clock


@pytest.mark.gen_test
async def test_beyond_the_budget_every_link_even_the_right_code_is_429_until_the_window_ends(plugin_factory):
    plugin, clock = await budget_plugin(plugin_factory, budget=5)
    api = plugin.api
    right = dtmf_of(await api.start("report_move"))
    for _ in range(5):
        assert (await api.link(wrong_code(right), CONTACT)).status == 404
    refused = await api.link(right, CONTACT)
    assert refused.status == 429
    assert refused.json == {"error": "TooManyRequests"}
    assert (await api.link(wrong_code(right), CONTACT)).status == 429
    assert (await api.info(CONTACT)).status == 404  # the right code linked nothing

    clock.now += 60  # the next window
    assert (await api.link(right, CONTACT)).status == 200
    assert (await api.info(CONTACT)).status == 200


@pytest.mark.gen_test
async def test_429_tells_when_the_window_ends(plugin_factory):
    plugin, clock = await budget_plugin(plugin_factory, budget=1)
    right = dtmf_of(await plugin.api.start("report_move"))
    assert (await plugin.api.link(wrong_code(right), CONTACT)).status == 404
    clock.now += 20  # 21 s into the minute
    refused = await plugin.api.link(right, CONTACT)
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "39"


@pytest.mark.gen_test
async def test_the_right_code_within_the_budget_links(plugin_factory):
    plugin, _clock = await budget_plugin(plugin_factory, budget=3)
    right = dtmf_of(await plugin.api.start("report_move"))
    for _ in range(2):
        assert (await plugin.api.link(wrong_code(right), CONTACT)).status == 404
    assert (await plugin.api.link(right, CONTACT)).status == 200


@pytest.mark.gen_test
async def test_malformed_codes_and_codes_of_other_calls_count_as_failures(plugin_factory):
    plugin, _clock = await budget_plugin(plugin_factory, budget=3)
    api = plugin.api
    taken = dtmf_of(await api.start("report_move"))
    right = dtmf_of(await api.start("report_move"))
    assert (await api.link(taken, "other-call-0001")).status == 200
    assert (await api.link("12ab", CONTACT)).status == 404  # not digits
    assert (await api.link("", CONTACT)).status == 404
    assert (await api.link(taken, CONTACT)).status == 404  # another call's code
    assert (await api.link(right, CONTACT)).status == 429


@pytest.mark.gen_test
async def test_a_spent_budget_is_logged_once_per_window_with_no_code_or_contact(plugin_factory, caplog):
    plugin, clock = await budget_plugin(plugin_factory, budget=2)
    right = dtmf_of(await plugin.api.start("report_move"))
    caplog.set_level(logging.WARNING, logger="connect_plugin")
    for _ in range(6):
        await plugin.api.link(wrong_code(right), CONTACT)
    clock.now += 60
    for _ in range(6):
        await plugin.api.link(wrong_code(right), CONTACT)
    spent = [r.getMessage() for r in caplog.records if "budget spent" in r.getMessage()]
    assert len(spent) == 2  # one per window
    for message in spent:
        assert right not in message
        assert wrong_code(right) not in message
        assert CONTACT not in message


@pytest.mark.gen_test
async def test_ended_failure_windows_are_deleted_by_cleanup(plugin_factory, database_url):
    plugin, clock = await budget_plugin(plugin_factory, budget=10)
    await plugin.api.link("000000000", CONTACT)
    assert await count_rows(database_url, "comm_link_failure") == 1
    assert (await plugin.api.call("GET", "/clean_db")).status == 200
    assert await count_rows(database_url, "comm_link_failure") == 1  # still the current window
    clock.now += 60
    assert (await plugin.api.call("GET", "/clean_db")).status == 200
    assert await count_rows(database_url, "comm_link_failure") == 0


@pytest.mark.gen_test(timeout=120)
async def test_instances_on_one_postgres_database_share_one_budget(tmp_path, keyset, postgres_url):
    config = write_config(tmp_path / "shared.toml", keyset, database_url=postgres_url, link_failure_budget=6)
    a = PluginProcess(config, log_dir=tmp_path).start()
    b = PluginProcess(config, log_dir=tmp_path).start()
    try:
        api_a, api_b = Api(a.base_url), Api(b.base_url)
        # The processes' clocks are real: begin early in a minute, so the 6 failures share one window.
        if time.time() % 60 > 40:
            await asyncio.sleep(61 - time.time() % 60)
        right = dtmf_of(await api_a.start("report_move"))
        for i in range(6):
            assert (await (api_a if i % 2 else api_b).link(wrong_code(right), CONTACT)).status == 404
        # Three failures on each: neither instance alone is over its budget, together they are.
        assert (await api_a.link(right, CONTACT)).status == 429
        assert (await api_b.link(right, CONTACT)).status == 429
        assert (await api_a.info(CONTACT)).status == 404
    finally:
        a.terminate()
        b.terminate()
