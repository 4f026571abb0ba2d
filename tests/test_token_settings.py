"""Token policy settings over HTTP: ``max_token_lifetime``, ``expected_issuer``, ``expected_audience``."""

from __future__ import annotations

import pytest

ISSUER, AUDIENCE = "https://auth.example.nl", "https://plugin.example.nl"


async def post(plugin, token: str):
    started = (await plugin.api.start("report_move")).json
    return await plugin.api.post_result(started["attr_url"], token)


def refused_for(response, reason: str) -> bool:
    return response.status == 400 and response.json["detail"].startswith(f"invalid auth_result token ({reason})")


@pytest.mark.gen_test
async def test_a_token_valid_longer_than_max_token_lifetime_is_refused(plugin_factory, mint):
    plugin = await plugin_factory(max_token_lifetime=600)
    assert refused_for(await post(plugin, mint(lifetime=3600)), "lifetime")
    assert (await post(plugin, mint(lifetime=600, attributes={"email": "b@example.nl"}))).status == 200


@pytest.mark.gen_test
async def test_the_default_lifetime_cap_is_an_hour(plugin_factory, mint):
    plugin = await plugin_factory()
    assert refused_for(await post(plugin, mint(lifetime=31 * 365 * 24 * 3600)), "lifetime")
    assert (await post(plugin, mint(lifetime=3600))).status == 200


@pytest.mark.gen_test
async def test_expected_issuer_refuses_tokens_from_anyone_else(plugin_factory, mint):
    plugin = await plugin_factory(expected_issuer=ISSUER)
    assert refused_for(await post(plugin, mint()), "wrong_issuer")
    assert refused_for(await post(plugin, mint(issuer="https://evil.example")), "wrong_issuer")
    assert (await post(plugin, mint(issuer=ISSUER))).status == 200


@pytest.mark.gen_test
async def test_expected_audience_refuses_tokens_for_anyone_else(plugin_factory, mint):
    plugin = await plugin_factory(expected_audience=AUDIENCE)
    assert refused_for(await post(plugin, mint()), "wrong_audience")
    assert refused_for(await post(plugin, mint(audience="https://other.example")), "wrong_audience")
    assert (await post(plugin, mint(audience=AUDIENCE))).status == 200


@pytest.mark.gen_test
async def test_an_inline_result_meets_the_same_policy(plugin_factory, mint):
    plugin = await plugin_factory(expected_issuer=ISSUER)
    refused = await plugin.api.start("report_move", auth_result=mint())
    assert refused_for(refused, "wrong_issuer")
