"""The contact flow (``aws/contact-flow.json``) and its renderer (``aws/render_flow.py``).

The file is checked against Amazon Connect's flow language as documented
(Version ``2019-10-30``, ``StartAction``, ``Actions`` of ``Identifier``/``Type``/
``Parameters``/``Transitions``, each action type's parameters and error types),
against what ``aws/assign_id.py`` reads and returns, and against the sample
configuration's code length.  Then calls are walked through it by a small
interpreter of those documented semantics: with a stand-in Lambda to cover every
branch, and once with the real Lambda handler and a real running plugin.
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.aws_support import AWS, SAMPLE_EVENT, StandIn, load_aws_module
from tests.support import ROOT, Api, KeySet, PluginProcess, dtmf_of, write_config

FLOW_PATH = AWS / "contact-flow.json"
FLOW: dict[str, Any] = json.loads(FLOW_PATH.read_text(encoding="utf-8"))
ACTIONS: dict[str, dict[str, Any]] = {a["Identifier"]: a for a in FLOW["Actions"]}

assign_id = load_aws_module("assign_id")
render_flow = load_aws_module("render_flow")

SAMPLE_DTMF_LENGTH: int = tomllib.loads((ROOT / "sample" / "config.toml").read_text())["global"]["dtmf_length"]
MAX_TRIES = 3

#: Action types used here, with the error types their documentation lists.
ERROR_TYPES = {
    "MessageParticipant": {"NoMatchingError"},
    "GetParticipantInput": {"NoMatchingError", "NoMatchingCondition", "InvalidPhoneNumber", "InputTimeLimitExceeded"},
    "UpdateContactAttributes": {"NoMatchingError"},
    "InvokeLambdaFunction": {"NoMatchingError"},
    "Compare": {"NoMatchingCondition"},
    "UpdateContactTargetQueue": {"NoMatchingError"},
    "TransferContactToQueue": {"QueueAtCapacity", "NoMatchingError"},
    "DisconnectParticipant": set(),
    "UpdateFlowLoggingBehavior": set(),  # "Set logging behavior": no errors, no conditions
}
TERMINAL = {"DisconnectParticipant"}
#: Characters the flow language does not allow in an Identifier.
FORBIDDEN_IN_IDENTIFIER = set("%:(\\/)=$,;[]{}")


def of_type(flow: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The actions of one type, in file order."""
    return [a for a in flow["Actions"] if a["Type"] == kind]


def targets(action: dict[str, Any]) -> list[str]:
    """Every action this one can go to: NextAction, error targets, condition targets."""
    tr = action["Transitions"]
    out = [tr["NextAction"]] if "NextAction" in tr else []
    out += [e["NextAction"] for e in tr.get("Errors", [])]
    out += [c["NextAction"] for c in tr.get("Conditions", [])]
    return out


def error_target(action: dict[str, Any], error_type: str) -> str | None:
    """Where an error of this type goes, or None when the action does not handle it."""
    return next((e["NextAction"] for e in action["Transitions"].get("Errors", []) if e["ErrorType"] == error_type),
                None)


# --------------------------------------------------------------------------- the file's structure


def test_flow_file_is_flow_language_json():
    assert FLOW["Version"] == "2019-10-30"
    assert FLOW["StartAction"] in ACTIONS
    assert isinstance(FLOW["Actions"], list)
    assert 0 < len(FLOW["Actions"]) <= 250
    assert set(FLOW) <= {"Version", "StartAction", "Metadata", "Actions"}
    for action in FLOW["Actions"]:
        assert set(action) == {"Identifier", "Type", "Parameters", "Transitions"}, action
        assert isinstance(action["Parameters"], dict)
        assert isinstance(action["Transitions"], dict)


def test_identifiers_are_unique_and_allowed():
    identifiers = [a["Identifier"] for a in FLOW["Actions"]]
    assert len(identifiers) == len(set(identifiers))
    for identifier in identifiers:
        assert 0 < len(identifier) <= 50
        assert not FORBIDDEN_IN_IDENTIFIER & set(identifier), identifier


def test_only_documented_action_types_and_error_types_are_used():
    for action in FLOW["Actions"]:
        assert action["Type"] in ERROR_TYPES, action["Identifier"]
        for error in action["Transitions"].get("Errors", []):
            assert set(error) == {"NextAction", "ErrorType"}
            assert error["ErrorType"] in ERROR_TYPES[action["Type"]], (action["Identifier"], error)


def test_every_transition_points_at_an_existing_action():
    for action in FLOW["Actions"]:
        for target in targets(action):
            assert target in ACTIONS, (action["Identifier"], target)


def test_every_action_but_a_hang_up_says_where_to_go_next():
    for action in FLOW["Actions"]:
        if action["Type"] in TERMINAL:
            assert action["Transitions"] == {}
        else:
            assert action["Transitions"]["NextAction"] in ACTIONS, action["Identifier"]
            assert isinstance(action["Transitions"].get("Errors", []), list)
            for condition in action["Transitions"].get("Conditions", []):
                assert set(condition) == {"NextAction", "Condition"}
                assert condition["Condition"]["Operator"] == "Equals"
                assert len(condition["Condition"]["Operands"]) == 1


def test_every_action_is_reachable_from_the_start():
    seen, todo = set(), [FLOW["StartAction"]]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo += targets(ACTIONS[current])
    assert seen == set(ACTIONS)


def test_metadata_positions_name_existing_actions():
    # Metadata is optional ("may be filled in with data as desired"); where
    # present it only places the blocks in the designer.
    for identifier in FLOW.get("Metadata", {}).get("ActionMetadata", {}):
        assert identifier in ACTIONS


def test_flow_logs_are_switched_on_by_one_set_logging_behavior_block_before_anything_else():
    [logging] = of_type(FLOW, "UpdateFlowLoggingBehavior")
    assert logging["Parameters"] == {"FlowLoggingBehavior": "Enabled"}  # a static value: dynamic ones are refused
    assert logging["Transitions"] == {"NextAction": "ask-code-1"}  # the documented block has no errors, no conditions
    assert FLOW["StartAction"] == logging["Identifier"]


def test_no_lambda_invocation_is_reachable_without_passing_the_logging_block():
    # Cut the logging block out: no Lambda block may be reachable from the start any more.
    [logging] = of_type(FLOW, "UpdateFlowLoggingBehavior")
    seen, todo = {logging["Identifier"]}, [FLOW["StartAction"]]
    reached = set()
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            reached.add(ACTIONS[current]["Type"])
            todo += targets(ACTIONS[current])
    assert "InvokeLambdaFunction" not in reached


# --------------------------------------------------------------------------- agreement with the Lambda and the plugin


def test_code_prompt_takes_as_many_digits_as_the_sample_configuration_issues():
    prompts = of_type(FLOW, "GetParticipantInput")
    assert len(prompts) == MAX_TRIES
    for prompt in prompts:
        params = prompt["Parameters"]
        assert params["StoreInput"] == "True"
        assert params["InputValidation"] == {"CustomValidation": {"MaximumLength": str(SAMPLE_DTMF_LENGTH)}}
        assert 1 <= int(params["InputTimeLimitSeconds"]) <= 179
        assert params["Text"].strip()
        # With StoreInput "True" there are no conditions and no NoMatchingCondition; NoMatchingError is required.
        assert prompt["Transitions"].get("Conditions", []) == []
        assert error_target(prompt, "NoMatchingCondition") is None
        assert error_target(prompt, "NoMatchingError") is not None


def test_code_is_kept_as_the_contact_attribute_the_lambda_reads():
    for update in of_type(FLOW, "UpdateContactAttributes"):
        assert update["Parameters"]["Attributes"] == {assign_id.CODE_KEY: "$.StoredCustomerInput"}
    for invoke in of_type(FLOW, "InvokeLambdaFunction"):
        assert invoke["Parameters"]["LambdaInvocationAttributes"] == {
            assign_id.CODE_KEY: f"$.Attributes.{assign_id.CODE_KEY}",
        }


def test_lambda_is_invoked_synchronously_with_string_map_validation_inside_connects_limit():
    invokes = of_type(FLOW, "InvokeLambdaFunction")
    assert len(invokes) == MAX_TRIES
    for invoke in invokes:
        params = invoke["Parameters"]
        assert params["ResponseValidation"] == {"ResponseType": "STRING_MAP"}
        assert params.get("InvocationType", "SYNCHRONOUS") == "SYNCHRONOUS"
        limit = int(params["InvocationTimeLimitSeconds"])
        assert 1 <= limit <= 8
        assert limit > assign_id.MAX_TIMEOUT  # the function gives up on the plugin before Connect gives up on it
        assert params["LambdaFunctionARN"] == render_flow.LAMBDA_PLACEHOLDER
        assert error_target(invoke, "NoMatchingError") is not None


def test_flow_branches_on_the_result_key_the_lambda_returns():
    for invoke in of_type(FLOW, "InvokeLambdaFunction"):
        check = ACTIONS[invoke["Transitions"]["NextAction"]]
        assert check["Type"] == "Compare"
        assert check["Parameters"]["ComparisonValue"] == f"$.External.{assign_id.RESULT_KEY}"
        operands = [c["Condition"]["Operands"][0] for c in check["Transitions"]["Conditions"]]
        assert operands == [assign_id.LINKED[assign_id.RESULT_KEY]]
        # "false" (and anything else) takes the no-match branch: ask again, or give up.
        assert error_target(check, "NoMatchingCondition") == check["Transitions"]["NextAction"]


def test_queue_is_a_placeholder_to_replace():
    [set_queue] = of_type(FLOW, "UpdateContactTargetQueue")
    assert set_queue["Parameters"] == {"QueueId": render_flow.QUEUE_PLACEHOLDER}


def test_readme_names_every_prompt_a_deployer_edits():
    readme = (AWS / "README.md").read_text(encoding="utf-8")
    for action in FLOW["Actions"]:
        if "Text" in action["Parameters"]:
            assert f"`{action['Identifier']}`" in readme, action["Identifier"]


# --------------------------------------------------------------------------- walking calls through the flow


@dataclass
class Call:
    """One call walked through the flow: what the caller types at each prompt, and what happened."""

    typed: list[str]
    contact_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    queue_error: str | None = None  # None, or the error the queue actions raise
    attributes: dict[str, str] = field(default_factory=dict)
    external: dict[str, str] = field(default_factory=dict)
    stored: str | None = None
    prompts: int = 0
    invocations: list[dict[str, Any]] = field(default_factory=list)
    heard: list[str] = field(default_factory=list)
    path: list[str] = field(default_factory=list)
    queue: str | None = None
    outcome: str | None = None  # "queued" or "disconnected"
    logging: bool = False  # flow logs on (a "Set logging behavior" block said Enabled)
    logged_invocations: list[bool] = field(default_factory=list)  # logging, at each Lambda invocation


def resolve(call: Call, value: str) -> str | None:
    """A flow parameter value: a JSONPath into the contact's data, or a static string."""
    if not value.startswith("$."):
        return value
    if value == "$.StoredCustomerInput":
        return call.stored
    if value == "$.ContactId":
        return call.contact_id
    namespace, _, key = value[2:].partition(".")
    return {"Attributes": call.attributes, "External": call.external}[namespace].get(key)


def lambda_event(call: Call, parameters: dict[str, str]) -> dict[str, Any]:
    """The event Amazon Connect hands the function: contact data, its attributes, the block's parameters."""
    event = copy.deepcopy(SAMPLE_EVENT)
    contact = event["Details"]["ContactData"]
    contact.update(ContactId=call.contact_id, InitialContactId=call.contact_id, PreviousContactId=call.contact_id)
    contact["Attributes"] = dict(call.attributes)
    event["Details"]["Parameters"] = parameters
    return event


def walk(flow: dict[str, Any], call: Call, function: Callable[[dict[str, Any], Any], Any]) -> Call:
    """Run ``call`` through ``flow`` as the documented action semantics say, invoking ``function`` as the Lambda."""
    actions = {a["Identifier"]: a for a in flow["Actions"]}
    current: str | None = flow["StartAction"]
    typed = list(call.typed)
    while current is not None:
        assert len(call.path) < 100, f"no end in sight: {call.path[-10:]}"
        call.path.append(current)
        action = actions[current]
        kind, params, tr = action["Type"], action["Parameters"], action["Transitions"]
        nxt: str | None = tr.get("NextAction")
        if kind == "UpdateFlowLoggingBehavior":
            call.logging = params["FlowLoggingBehavior"] == "Enabled"
        elif kind == "MessageParticipant":
            call.heard.append(params["Text"])
        elif kind == "GetParticipantInput":
            call.heard.append(params["Text"])
            call.prompts += 1
            digits = typed.pop(0) if typed else ""
            limit = int(params["InputValidation"]["CustomValidation"]["MaximumLength"])
            call.stored = digits[:limit] if digits else "Timeout"  # Connect stores "Timeout" for no input
        elif kind == "Compare":
            value = resolve(call, params["ComparisonValue"])
            matched = [c["NextAction"] for c in tr.get("Conditions", [])
                       if c["Condition"]["Operator"] == "Equals" and value == c["Condition"]["Operands"][0]]
            nxt = matched[0] if matched else error_target(action, "NoMatchingCondition")
            assert nxt is not None, f"{current} has no NoMatchingCondition branch"
        elif kind == "UpdateContactAttributes":
            for key, value in params["Attributes"].items():
                call.attributes[key] = resolve(call, value) or ""
        elif kind == "InvokeLambdaFunction":
            parameters = {k: resolve(call, v) or "" for k, v in params.get("LambdaInvocationAttributes", {}).items()}
            event = lambda_event(call, parameters)
            call.invocations.append(event)
            call.logged_invocations.append(call.logging)
            try:
                result = function(event, None)
                flat = isinstance(result, dict) and all(isinstance(v, str) for v in result.values())
                if params["ResponseValidation"]["ResponseType"] == "STRING_MAP" and not flat:
                    raise ValueError("not a flat map of strings")  # Connect: a response it cannot use is an error
                call.external = dict(result)
            except Exception:  # the function failed, timed out or answered garbage: the Error branch
                call.external = {}
                nxt = error_target(action, "NoMatchingError")
        elif kind == "UpdateContactTargetQueue":
            if call.queue_error:
                nxt = error_target(action, "NoMatchingError")
            else:
                call.queue = params["QueueId"]
        elif kind == "TransferContactToQueue":
            if call.queue_error:
                nxt = error_target(action, call.queue_error) or error_target(action, "NoMatchingError")
            else:
                assert call.queue is not None, "transfer without a target queue"
                call.outcome = "queued"
                nxt = None
        elif kind == "DisconnectParticipant":
            call.outcome = "disconnected"
            nxt = None
        else:
            raise AssertionError(f"the walker does not know {kind}")
        current = nxt
    return call


class StandInLambda:
    """Answers the flow as the real function would for a plugin that knows ``codes``; counts invocations."""

    def __init__(self, codes: set[str] = frozenset(), fail: bool = False) -> None:  # type: ignore[assignment]
        self.codes, self.fail, self.calls = set(codes), fail, 0

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, str]:
        self.calls += 1
        if self.fail:
            raise RuntimeError("plugin unreachable")
        code = event["Details"]["Parameters"].get("dtmf") or event["Details"]["ContactData"]["Attributes"].get("dtmf")
        return {"linked": "true" if code in self.codes else "false"}


GOOD, BAD = "1234567890", "9999999999"


def test_caller_with_a_known_code_is_linked_at_once_and_queued():
    function = StandInLambda({GOOD})

    call = walk(FLOW, Call([GOOD]), function)

    assert call.outcome == "queued"
    assert call.prompts == 1
    assert function.calls == 1
    assert call.attributes == {"dtmf": GOOD}
    assert call.invocations[0]["Details"]["Parameters"] == {"dtmf": GOOD}
    assert "say-linked" in call.path


@pytest.mark.parametrize("typed", [[GOOD], [BAD, GOOD], [BAD] * 3, [BAD]])
def test_every_lambda_invocation_happens_with_flow_logs_on(typed):
    call = walk(FLOW, Call(typed), StandInLambda({GOOD}))

    assert call.logged_invocations
    assert all(call.logged_invocations)


@pytest.mark.parametrize("wrong_tries", [1, 2])
def test_caller_is_asked_again_after_an_unknown_code(wrong_tries):
    function = StandInLambda({GOOD})

    call = walk(FLOW, Call([BAD] * wrong_tries + [GOOD]), function)

    assert call.outcome == "queued"
    assert call.prompts == wrong_tries + 1
    assert "say-linked" in call.path


def test_caller_is_asked_at_most_three_times_then_queued_unauthenticated():
    function = StandInLambda({GOOD})

    call = walk(FLOW, Call([BAD] * 10), function)

    assert call.prompts == MAX_TRIES
    assert function.calls == MAX_TRIES
    assert call.outcome == "queued"
    assert "say-not-linked" in call.path


@pytest.mark.parametrize("wrong_tries", [0, 1, 2])
def test_caller_who_types_nothing_is_queued_without_invoking_the_lambda_again(wrong_tries):
    function = StandInLambda({GOOD})

    call = walk(FLOW, Call([BAD] * wrong_tries), function)  # then silence

    assert call.outcome == "queued"
    assert call.prompts == wrong_tries + 1
    assert function.calls == wrong_tries


def test_longer_input_is_cut_at_the_code_length():
    function = StandInLambda({GOOD})

    call = walk(FLOW, Call([GOOD + "999"]), function)

    assert call.attributes == {"dtmf": GOOD}
    assert call.prompts == 1


def test_lambda_error_still_reaches_an_agent():
    function = StandInLambda(fail=True)

    call = walk(FLOW, Call([GOOD]), function)

    assert call.outcome == "queued"
    assert function.calls == 1
    assert "say-not-checked" in call.path


@pytest.mark.parametrize("queue_error", ["QueueAtCapacity", "NoMatchingError"])
def test_hang_up_only_after_the_queue_transfer_fails(queue_error):
    call = walk(FLOW, Call([GOOD], queue_error=queue_error), StandInLambda({GOOD}))

    assert call.outcome == "disconnected"
    assert call.path[-2:] == ["say-queue-failed", "hang-up"]


def test_every_path_ends_in_a_queue_transfer_or_a_hang_up_after_a_failed_transfer():
    # Cut the edges a queue failure takes; what remains must lead every call to
    # the transfer, without loops, and never to a hang-up.
    queue_kinds = {"UpdateContactTargetQueue", "TransferContactToQueue"}

    def edges(identifier: str) -> list[str]:
        action = ACTIONS[identifier]
        if action["Type"] == "TransferContactToQueue":
            return []
        if action["Type"] in queue_kinds:
            return [action["Transitions"]["NextAction"]]
        return targets(action)

    def paths(identifier: str, seen: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        assert identifier not in seen, f"loop: {(*seen, identifier)}"
        nexts = edges(identifier)
        if not nexts:
            yield (*seen, identifier)
        for nxt in set(nexts):
            yield from paths(nxt, (*seen, identifier))

    ends = {path[-1] for path in paths(FLOW["StartAction"], ())}
    assert {ACTIONS[end]["Type"] for end in ends} == {"TransferContactToQueue"}
    for action in FLOW["Actions"]:
        if action["Type"] in queue_kinds:
            for error in action["Transitions"]["Errors"]:
                assert error["NextAction"] in {"say-queue-failed", "hang-up"}


# --------------------------------------------------------------------------- the whole chain: flow, Lambda, plugin


@pytest.fixture
def plugin_process(tmp_path: Path, keyset: KeySet, sqlite_url: str) -> Iterator[PluginProcess]:
    """A ``connect-plugin serve`` process that wants a bearer token on ``/link_phone``."""
    config = write_config(tmp_path / "plugin.toml", keyset, database_url=sqlite_url,
                          link_phone_token="flow-test-token-0123456789")
    process = PluginProcess(config).start()
    yield process
    process.terminate()


@pytest.mark.gen_test
async def test_call_through_the_flow_links_the_session_with_the_real_lambda_and_plugin(plugin_process, mint,
                                                                                       monkeypatch):
    api = Api(plugin_process.base_url)
    started = await api.start("request_permit")
    assert (await api.post_result(started.json["attr_url"], mint(attributes={"email": "jane@example.com"}))).status \
        == 200
    code = dtmf_of(started)
    monkeypatch.setenv("CALL_URL", plugin_process.base_url + "/link_phone")
    monkeypatch.setenv("CALL_TOKEN", "flow-test-token-0123456789")
    monkeypatch.delenv("CALL_TIMEOUT", raising=False)

    # The caller mistypes twice (codes the plugin did not issue), then gets it right.
    wrong = [f"{(int(code) + k) % 10 ** len(code):0{len(code)}d}" for k in (1, 2)]
    call = walk(FLOW, Call([*wrong, code]), assign_id.handler)

    assert call.outcome == "queued"
    assert call.prompts == 3
    assert "say-linked" in call.path
    info = await api.info(call.contact_id)
    assert info.status == 200
    assert info.json == {"purpose": "request_permit",
                         "auth_result": {"status": "succes", "attributes": {"email": "jane@example.com"}}}


def reference_flow() -> dict[str, Any]:
    """The shape of a flow built for the reference's Node Lambda, which threw on every answer but 2xx.

    Keep the code, invoke the function, and read *Success* as linked and *Error*
    as not linked; either way the call is queued.  No such file was published
    with the reference: this is the contract its Lambda implies.
    """
    def step(identifier: str, kind: str, parameters: dict[str, Any], nxt: str, error: str | None = None,
             error_type: str = "NoMatchingError") -> dict[str, Any]:
        errors = [{"NextAction": error or nxt, "ErrorType": error_type}]
        return {"Identifier": identifier, "Type": kind, "Parameters": parameters,
                "Transitions": {"NextAction": nxt, "Errors": errors, "Conditions": []}}

    return {"Version": "2019-10-30", "StartAction": "ask", "Actions": [
        step("ask", "GetParticipantInput", {**ACTIONS["ask-code-1"]["Parameters"]}, "save"),
        step("save", "UpdateContactAttributes", {"Attributes": {"dtmf": "$.StoredCustomerInput"}}, "link"),
        step("link", "InvokeLambdaFunction", {"LambdaFunctionARN": render_flow.LAMBDA_PLACEHOLDER,
                                              "InvocationTimeLimitSeconds": "8",
                                              "ResponseValidation": {"ResponseType": "JSON"}},
             "say-linked", error="say-not-linked"),
        step("say-linked", "MessageParticipant", {"Text": "Verified."}, "set-queue"),
        step("say-not-linked", "MessageParticipant", {"Text": "Not verified."}, "set-queue"),
        step("set-queue", "UpdateContactTargetQueue", {"QueueId": render_flow.QUEUE_PLACEHOLDER}, "transfer",
             error="hang-up"),
        step("transfer", "TransferContactToQueue", {}, "hang-up"),
        {"Identifier": "hang-up", "Type": "DisconnectParticipant", "Parameters": {}, "Transitions": {}},
    ]}


@pytest.mark.gen_test
async def test_flow_built_for_the_reference_takes_its_error_branch_for_a_wrong_code_with_unknown_code_error(
        plugin_process, monkeypatch):
    code = dtmf_of(await Api(plugin_process.base_url).start("request_permit"))
    wrong = f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"
    monkeypatch.setenv("CALL_URL", plugin_process.base_url + "/link_phone")
    monkeypatch.setenv("CALL_TOKEN", "flow-test-token-0123456789")

    # Without the setting such a flow reads a wrong code as verified: the flat map is a success.
    monkeypatch.delenv("UNKNOWN_CODE", raising=False)
    assert "say-linked" in walk(reference_flow(), Call([wrong]), assign_id.handler).path

    monkeypatch.setenv("UNKNOWN_CODE", "error")
    mistyped = walk(reference_flow(), Call([wrong]), assign_id.handler)
    right = walk(reference_flow(), Call([code]), assign_id.handler)

    assert mistyped.outcome == right.outcome == "queued"
    assert "say-not-linked" in mistyped.path
    assert "say-linked" not in mistyped.path
    assert "say-linked" in right.path
    assert (await Api(plugin_process.base_url).info(right.contact_id)).status == 200


@pytest.fixture
def refusing_plugin() -> Iterator[StandIn]:
    """A stand-in plugin whose link failure budget is spent: every link attempt answers 429."""
    server = StandIn(status=429, headers={"Retry-After": "42"}, body={"error": "TooManyRequests"})
    yield server
    server.close()


def test_429_through_our_flow_reaches_an_agent_with_one_request_per_try(refusing_plugin, monkeypatch):
    monkeypatch.setenv("CALL_URL", refusing_plugin.url)
    monkeypatch.delenv("UNKNOWN_CODE", raising=False)

    call = walk(FLOW, Call([GOOD] * MAX_TRIES), assign_id.handler)

    assert call.outcome == "queued"
    assert "say-not-linked" in call.path
    assert "say-not-checked" not in call.path  # not the Error branch: Amazon Connect does not retry
    assert len(refusing_plugin.requests) == MAX_TRIES == call.prompts


def test_429_through_a_reference_flow_with_unknown_code_error_reaches_an_agent(refusing_plugin, monkeypatch):
    monkeypatch.setenv("CALL_URL", refusing_plugin.url)
    monkeypatch.setenv("UNKNOWN_CODE", "error")

    call = walk(reference_flow(), Call([GOOD]), assign_id.handler)

    assert call.outcome == "queued"
    assert "say-not-linked" in call.path
    assert len(refusing_plugin.requests) == 1


# --------------------------------------------------------------------------- rendering for a real instance

LAMBDA_ARN = "arn:aws:lambda:eu-central-1:111122223333:function:id-contact-assign-id"
QUEUE_ARN = "arn:aws:connect:eu-central-1:111122223333:instance/0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0" \
            "/queue/1a2b3c4d-5e6f-4a8b-9c0d-e1f2a3b4c5d6"


def test_stored_flow_is_its_own_rendering_without_arguments():
    assert render_flow.render(render_flow.load_flow()) == FLOW
    assert set(render_flow.placeholders_left(FLOW)) == {
        a["Identifier"] for a in FLOW["Actions"] if a["Type"] in {"InvokeLambdaFunction", "UpdateContactTargetQueue"}
    }


def test_render_puts_in_the_real_arns_and_code_length():
    rendered = render_flow.render(FLOW, lambda_arn=LAMBDA_ARN, queue_arn=QUEUE_ARN, dtmf_length=8)

    assert render_flow.placeholders_left(rendered) == []
    assert {a["Parameters"]["LambdaFunctionARN"] for a in of_type(rendered, "InvokeLambdaFunction")} == {LAMBDA_ARN}
    assert of_type(rendered, "UpdateContactTargetQueue")[0]["Parameters"]["QueueId"] == QUEUE_ARN
    assert {a["Parameters"]["InputValidation"]["CustomValidation"]["MaximumLength"]
            for a in of_type(rendered, "GetParticipantInput")} == {"8"}
    assert ACTIONS["ask-code-1"]["Parameters"]["InputValidation"]["CustomValidation"]["MaximumLength"] \
        == str(SAMPLE_DTMF_LENGTH)  # the stored flow is left alone
    call = walk(rendered, Call(["12345678"]), StandInLambda({"12345678"}))
    assert call.outcome == "queued"
    assert call.queue == QUEUE_ARN


@pytest.mark.parametrize(("argument", "value"), [
    ("lambda_arn", "id-contact-assign-id"),
    ("lambda_arn", QUEUE_ARN),
    ("queue_arn", LAMBDA_ARN),
    ("queue_arn", "arn:aws:connect:eu-central-1:111122223333:instance/x/contact-flow/y"),
    ("dtmf_length", 5),
    ("dtmf_length", 33),
])
def test_render_refuses_what_cannot_go_into_the_flow(argument, value):
    with pytest.raises(render_flow.RenderError):
        render_flow.render(FLOW, **{argument: value})


def test_render_command_reads_the_code_length_from_the_plugins_settings(tmp_path, capsys):
    config = tmp_path / "config.toml"
    config.write_text("[global]\ndtmf_length = 6\n")
    out = tmp_path / "flow.json"

    status = render_flow.main(["--lambda-arn", LAMBDA_ARN, "--queue-arn", QUEUE_ARN, "--config", str(config),
                               "-o", str(out)])

    assert status == 0
    rendered = json.loads(out.read_text())
    assert {a["Parameters"]["InputValidation"]["CustomValidation"]["MaximumLength"]
            for a in of_type(rendered, "GetParticipantInput")} == {"6"}
    assert capsys.readouterr().err == ""


def test_render_command_reads_the_sample_configuration_and_warns_about_placeholders_left(capsys):
    status = render_flow.main(["--config", str(ROOT / "sample" / "config.toml")])

    captured = capsys.readouterr()
    assert status == 0
    assert json.loads(captured.out) == FLOW
    assert "still placeholders" in captured.err


def test_render_command_refuses_a_bad_arn_with_one_line(capsys):
    assert render_flow.main(["--lambda-arn", "not-an-arn"]) == 2
    assert re.fullmatch(r"render_flow: --lambda-arn must be .*\n", capsys.readouterr().err)
