"""Which agents may see citizens' data: the claim rules shared by ``oidc`` and ``alb``."""

from __future__ import annotations

from connect_plugin.agent_auth.rules import ClaimRules
from connect_plugin.model import ANONYMOUS

CLAIMS = {"sub": "alice", "email": "alice@Gemeente.NL", "groups": ["staff", "agents"]}


def test_a_member_of_an_allowed_group_may_see_data_and_carries_only_the_groups_that_matter():
    rules = ClaimRules(allowed_groups=frozenset({"agents"}))
    agent = rules.agent(CLAIMS)
    assert agent.groups == ("agents",)
    assert rules.allows(agent)
    assert not rules.allows(rules.agent({**CLAIMS, "groups": ["staff"]}))
    assert not rules.allows(rules.agent({"sub": "alice"}))


def test_the_groups_claim_is_configurable_and_may_be_a_single_string():
    rules = ClaimRules(groups_claim="cognito:groups", allowed_groups=frozenset({"agents"}))
    assert rules.allows(rules.agent({"sub": "a", "cognito:groups": "agents"}))
    assert not rules.allows(rules.agent({"sub": "a", "groups": ["agents"]}))


def test_an_allowed_domain_needs_a_verified_address_in_it():
    rules = ClaimRules(allowed_domains=frozenset({"gemeente.nl"}))
    assert rules.allows(rules.agent(CLAIMS))
    assert not rules.allows(rules.agent({**CLAIMS, "email": "alice@gemeente.nl.evil.example"}))
    assert not rules.allows(rules.agent({**CLAIMS, "email": "alice@sub.gemeente.nl"}))
    for unverified in (False, "false", "FALSE"):
        agent = rules.agent({**CLAIMS, "email_verified": unverified})
        assert agent.email is None
        assert not rules.allows(agent)
    assert rules.allows(rules.agent({**CLAIMS, "email_verified": "true"}))


def test_with_both_rules_both_must_hold():
    rules = ClaimRules(allowed_groups=frozenset({"agents"}), allowed_domains=frozenset({"gemeente.nl"}))
    assert rules.allows(rules.agent(CLAIMS))
    assert not rules.allows(rules.agent({**CLAIMS, "groups": []}))
    assert not rules.allows(rules.agent({**CLAIMS, "email": "alice@elsewhere.nl"}))


def test_without_rules_only_an_explicit_allow_any_lets_agents_in():
    assert not ClaimRules().allows(ClaimRules().agent(CLAIMS))
    assert ClaimRules(allow_any=True).allows(ClaimRules().agent(CLAIMS))
    assert not ClaimRules(allow_any=True).allows(ANONYMOUS)


def test_claims_without_a_usable_subject_make_no_agent():
    rules = ClaimRules(allow_any=True)
    for claims in ({}, {"sub": ""}, {"sub": 42}, {"sub": "x" * 300}):
        assert rules.agent(claims) is None
