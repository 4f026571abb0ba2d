"""Prometheus metrics: what a scrape of ``/metrics`` tells after real traffic, and who may scrape it."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from connect_plugin.errors import StoreUnavailable
from connect_plugin.hookspecs import hookimpl
from connect_plugin.stores.sql import SqlStore
from connect_plugin.tokens import REFUSAL_REASONS
from tests.sse_client import EventStream
from tests.support import Api, dtmf_of, free_port

LINK_TOKEN = "lambda-shared-secret-for-metrics"
METRICS_TOKEN = "metrics-token-for-tests-0123456789"
CONTACT = "5e1f0c2a-7b3d-4e8f-9a6b-0c1d2e3f4a5b"
ATTRIBUTE = "Zeldzame-Waarde-7781"


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Metrics do not depend on the store: SQLite only."""
    return sqlite_url


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and labels."""
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(text: str, name: str, **labels: str) -> float:
    """One sample's value (``KeyError`` when the scrape has no such series)."""
    return samples(text)[(name, tuple(sorted(labels.items())))]


async def scrape(api: Api, token: str | None = None, **headers: str) -> str:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    response = await api.call("GET", "/metrics", headers=headers)
    assert response.status == 200, response.body[:200]
    assert response.headers["Content-Type"].startswith("text/plain")
    return response.body.decode()


async def early_in_a_minute() -> None:
    """Wait, if need be, for a fresh minute: link failures are counted per minute of the clock."""
    into = time.time() % 60
    if into > 40:
        await asyncio.sleep(60 - into + 0.1)


async def first_cleanup_done(api: Api) -> None:
    """Wait (bounded) until the cleanup that a plugin makes when it starts has been counted."""
    for _ in range(500):
        if value(await scrape(api), "connect_plugin_cleanup_runs_total") >= 1:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the first cleanup was never counted")


class FlakyStore(SqlStore):
    """The SQL store, whose reads and cleanups fail with ``StoreUnavailable`` while ``down`` is set."""

    down = False

    @staticmethod
    def check() -> None:
        if FlakyStore.down:
            raise StoreUnavailable("the store does not answer", reason="test")

    async def ping(self) -> None:
        self.check()
        await super().ping()

    async def find_by_contact(self, contact_id: str) -> Any:
        self.check()
        return await super().find_by_contact(contact_id)

    async def delete_idle(self, before: float, limit: int) -> int:
        self.check()
        return await super().delete_idle(before, limit)

    async def delete_expired(self, now: float, limit: int) -> int:
        self.check()
        return await super().delete_expired(now, limit)


class FlakyStorePlugin:
    @hookimpl
    def connect_plugin_session_store(self, settings: Any) -> FlakyStore:
        return FlakyStore(settings.database_url, pool_size=1, timeout=settings.database_timeout)


@pytest.mark.gen_test(timeout=60)
async def test_metrics_are_not_served_unless_asked_for(plugin):
    response = await plugin.api.call("GET", "/metrics")
    assert response.status == 404


@pytest.mark.gen_test(timeout=90)
async def test_a_scrape_counts_a_whole_call_and_holds_no_code_token_or_contact_id(plugin_factory, mint):
    plugin = await plugin_factory(metrics=True, link_phone_token=LINK_TOKEN)
    api = plugin.api
    await first_cleanup_done(api)
    await early_in_a_minute()
    before = await scrape(api)
    assert value(before, "connect_plugin_sessions_started_total") == 0
    assert value(before, "connect_plugin_link_failure_budget") == 60
    assert value(before, "connect_plugin_store_up") == 1
    for reason in REFUSAL_REASONS:  # every reason is a series from the start, so that rate() sees the first one
        assert value(before, "connect_plugin_token_refusals_total", reason=reason) == 0

    token = mint(attributes={"fullname": ATTRIBUTE})
    started = (await api.start("report_move")).json
    result_code = started["attr_url"].rsplit("/", 1)[1]
    assert (await api.post_result(started["attr_url"], token)).status == 200
    assert (await api.link("0000000000", "guessing-caller", token=LINK_TOKEN)).status == 404
    assert (await api.link(dtmf_of(started), CONTACT, token=LINK_TOKEN)).status == 200
    assert (await api.info(CONTACT)).status == 200
    assert (await api.call("GET", f"/lost/{CONTACT}/{result_code}")).status == 404
    assert (await api.call("GET", "/clean_db")).status == 200
    inline = (await api.start("request_permit", auth_result=mint())).json
    assert "attr_url" not in inline

    text = await scrape(api)
    assert value(text, "connect_plugin_sessions_started_total") == 2
    assert value(text, "connect_plugin_results_stored_total", via="post") == 1
    assert value(text, "connect_plugin_results_stored_total", via="inline") == 1
    assert value(text, "connect_plugin_links_made_total") == 1
    assert value(text, "connect_plugin_link_failures_total") == 1
    assert value(text, "connect_plugin_link_failure_budget_used") == 1
    assert value(text, "connect_plugin_cleanup_runs_total") >= 2  # the server's own at start, and /clean_db
    assert value(text, "connect_plugin_http_responses_total", route="/link_phone", status="404") == 1
    assert value(text, "connect_plugin_http_responses_total", route="/link_phone", status="200") == 1
    assert value(text, "connect_plugin_http_responses_total", route="/session_result/<resultcode>",
                 status="200") == 1
    assert value(text, "connect_plugin_http_responses_total", route="<unmatched>", status="404") == 1
    assert value(text, "connect_plugin_http_request_duration_seconds_count", route="/session_info/<contact>") == 1
    assert value(text, "connect_plugin_http_request_duration_seconds_bucket", route="/session_info/<contact>",
                 le="+Inf") == 1
    for secret in (token[:40], dtmf_of(started), result_code, CONTACT, ATTRIBUTE, LINK_TOKEN, "guessing-caller"):
        assert secret not in text


@pytest.mark.gen_test(timeout=90)
async def test_route_labels_are_the_route_table_whatever_the_paths(plugin_factory):
    plugin = await plugin_factory(metrics=True)
    api = plugin.api
    for n in range(20):
        await api.call("GET", f"/made-up-{n}/path")
        await api.call("GET", f"/attribute-ui/file-{n}.js")
        await api.call("GET", f"/session_info/contact-{n}")
    await api.call("GET", "/openapi.json", headers={"Host": "attacker.example"})
    routes = {dict(labels).get("route") for (name, labels) in samples(await scrape(api))
              if name == "connect_plugin_http_responses_total"}
    assert routes == {"<unmatched>", "/attribute-ui/<...>", "/session_info/<contact>", "<refused>"}


@pytest.mark.gen_test(timeout=90)
async def test_plugins_in_one_process_count_apart(plugin_factory):
    first = await plugin_factory(metrics=True)
    second = await plugin_factory(metrics=True)
    await first.api.start("report_move")
    await first.api.start("report_move")
    await second.api.start("report_move")
    assert value(await scrape(first.api), "connect_plugin_sessions_started_total") == 2
    assert value(await scrape(second.api), "connect_plugin_sessions_started_total") == 1


@pytest.mark.gen_test(timeout=60)
async def test_metrics_token_is_required_when_set(plugin_factory):
    plugin = await plugin_factory(metrics=True, metrics_token=METRICS_TOKEN)
    api = plugin.api
    missing = await api.call("GET", "/metrics")
    wrong = await api.call("GET", "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}x"})
    basic = await api.call("GET", "/metrics", headers={"Authorization": f"Basic {METRICS_TOKEN}"})
    for refused in (missing, wrong, basic):
        assert refused.status == 401
        assert refused.json == {"error": "Unauthorized", "detail": "missing or wrong bearer token"}
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert "connect_plugin_sessions_started_total" in await scrape(api, METRICS_TOKEN)


@pytest.mark.gen_test(timeout=60)
async def test_a_scraper_may_name_the_instance_by_its_ip_address(plugin_factory):
    plugin = await plugin_factory(metrics=True)
    api = plugin.api
    assert "connect_plugin_info" in await scrape(api, Host="10.20.30.40:8000")
    assert "connect_plugin_info" in await scrape(api, Host="[fd00::7]:8000")
    # ... a name it does not serve still gets 421 there, and elsewhere an address is no exception.
    assert (await api.call("GET", "/metrics", headers={"Host": "attacker.example"})).status == 421
    assert (await api.call("GET", "/openapi.json", headers={"Host": "10.20.30.40:8000"})).status == 421


@pytest.mark.gen_test(timeout=60)
async def test_metrics_on_a_port_of_their_own(plugin_factory):
    port = free_port()
    plugin = await plugin_factory(metrics=True, metrics_port=port, metrics_token=METRICS_TOKEN)
    assert plugin.runtime.metrics_port == port
    await plugin.api.start("report_move")
    assert (await plugin.api.call("GET", "/metrics")).status == 404  # not on the main server
    own = Api(f"http://127.0.0.1:{port}")
    text = await scrape(own, METRICS_TOKEN)
    assert value(text, "connect_plugin_sessions_started_total") == 1
    assert (await own.call("GET", "/metrics")).status == 401
    assert (await own.call("GET", "/start_communication")).status == 404
    assert (await own.call("GET", "/metrics", headers={"Host": "attacker.example"})).status == 421
    assert "X-Request-Id" in (await own.call("GET", "/health")).headers


@pytest.mark.gen_test(timeout=90)
async def test_refusals_are_counted_by_limit_and_reason(plugin_factory, mint, keyset):
    from tests.test_decryptions import junk_tokens

    plugin = await plugin_factory(metrics=True, link_failure_budget=2)
    api = plugin.api
    await early_in_a_minute()
    statuses = [(await api.link(f"99999{n:05d}", f"caller-{n}")).status for n in range(4)]
    assert statuses == [404, 404, 429, 429]
    started = (await api.start("report_move")).json
    assert (await api.post_result(started["attr_url"], junk_tokens(mint, keyset, 1)[0])).status == 400
    expired = mint(now=time.time() - 7200)
    assert (await api.post_result(started["attr_url"], expired)).status == 400
    once = mint()
    assert (await api.post_result(started["attr_url"], once)).status == 200
    assert (await api.start("report_move", auth_result=once)).status == 400  # the same token again

    text = await scrape(api)
    assert value(text, "connect_plugin_too_many_requests_total", limit="link_failure_budget") == 2
    assert value(text, "connect_plugin_too_many_requests_total", limit="receipt_queue") == 0
    # The second failure spent the budget: the next attempts were refused before the store was asked.
    assert value(text, "connect_plugin_link_failures_total") == 2
    assert value(text, "connect_plugin_link_failure_budget_used") == 2
    assert value(text, "connect_plugin_token_refusals_total", reason="bad_signature") == 1
    assert value(text, "connect_plugin_token_refusals_total", reason="expired") == 1
    assert value(text, "connect_plugin_token_refusals_total", reason="replayed") == 1


@pytest.mark.gen_test(timeout=60)
async def test_store_errors_and_503s_are_counted(plugin_factory):
    plugin = await plugin_factory(metrics=True, hook_plugins=[FlakyStorePlugin()])
    api = plugin.api
    await first_cleanup_done(api)
    assert value(await scrape(api), "connect_plugin_store_up") == 1
    FlakyStore.down = True
    try:
        assert (await api.info(CONTACT)).status == 503
        assert (await api.call("GET", "/health")).status == 503
        text = await scrape(api)
    finally:
        FlakyStore.down = False
    assert value(text, "connect_plugin_store_up") == 0
    assert value(text, "connect_plugin_store_errors_total", operation="find_by_contact") == 1
    assert value(text, "connect_plugin_store_errors_total", operation="ping") == 1
    assert value(text, "connect_plugin_http_responses_total", route="/session_info/<contact>", status="503") == 1
    assert value(text, "connect_plugin_http_responses_total", route="/health", status="503") == 1
    assert (await api.call("GET", "/health")).status == 200
    assert value(await scrape(api), "connect_plugin_store_up") == 1


@pytest.mark.gen_test(timeout=60)
async def test_live_displays_are_a_gauge(plugin_factory):
    plugin = await plugin_factory(metrics=True)
    api = plugin.api
    stream = await EventStream.open(plugin.base_url, f"/session_events/{CONTACT}")
    try:
        await stream.next_event("session")
        assert value(await scrape(api), "connect_plugin_live_displays") == 1
    finally:
        stream.close()
    for _ in range(500):  # the server notices the hang-up on its next read
        if value(await scrape(api), "connect_plugin_live_displays") == 0:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the display's hang-up was never counted")


@pytest.mark.gen_test(timeout=60)
async def test_session_feedback_is_counted_by_kind_and_outcome(plugin_factory, mint):
    from tests.test_feedback import Receiver

    receiver = Receiver()
    failing = Receiver(status=500)
    try:
        plugin = await plugin_factory(metrics=True, feedback_hosts=["127.0.0.1"], link_phone_token=LINK_TOKEN)
        api = plugin.api
        for n, target in enumerate((receiver, failing)):
            started = (await api.start("report_move")).json
            token = mint(session_url=f"{target.url}/session/s{n}")
            assert (await api.post_result(started["attr_url"], token)).status == 200
            assert (await api.link(dtmf_of(started), f"{CONTACT}-{n}", token=LINK_TOKEN)).status == 200
            await target.next_call()
        for _ in range(500):
            text = await scrape(api)
            if value(text, "connect_plugin_session_feedback_total", kind="user_active", outcome="failed") == 1:
                break
            await asyncio.sleep(0.02)
        assert value(text, "connect_plugin_session_feedback_total", kind="user_active", outcome="sent") == 1
        assert value(text, "connect_plugin_session_feedback_total", kind="user_active", outcome="failed") == 1
        assert value(text, "connect_plugin_session_feedback_total", kind="logout", outcome="sent") == 0
    finally:
        receiver.server.stop()
        failing.server.stop()


@pytest.mark.gen_test(timeout=60)
async def test_a_scrape_passes_promtool_check_metrics(plugin_factory):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    plugin = await plugin_factory(metrics=True)
    await plugin.api.start("report_move")
    text = await scrape(plugin.api)
    checked = await asyncio.to_thread(subprocess.run, [promtool, "check", "metrics"], input=text.encode(),
                                      capture_output=True, timeout=60)
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()


def test_the_description_shows_metrics_where_this_plugin_serves_them(tmp_path, keyset):
    from connect_plugin import openapi
    from connect_plugin.config import load_settings
    from tests.support import write_config

    def described(**values: Any) -> dict[str, Any]:
        config = write_config(tmp_path / "settings.toml", keyset, **values)
        return openapi.for_settings(load_settings(config, environ={}))

    assert "/metrics" not in described()["paths"]
    open_metrics = described(metrics=True)["paths"]["/metrics"]["get"]
    assert open_metrics["security"] == []
    guarded = described(metrics=True, metrics_token=METRICS_TOKEN)
    assert guarded["paths"]["/metrics"]["get"]["security"] == [{"metricsToken": []}]
    assert guarded["components"]["securitySchemes"]["metricsToken"]["scheme"] == "bearer"
    assert "/metrics" not in described(metrics=True, metrics_port=9464)["paths"]  # on a server of its own
