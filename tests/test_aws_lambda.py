"""The Amazon Connect Lambda (``aws/assign_id.py``) against a real running plugin, over real HTTP.

Events have Amazon Connect's documented shape (``aws/test-event.json``):
the code at ``Details.Parameters.dtmf`` or ``Details.ContactData.Attributes.dtmf``,
the call at ``Details.ContactData.ContactId``.  Every answer the plugin can
give comes from a ``connect-plugin serve`` process; only a plugin that is slow,
answers 5xx or a redirect, or refuses links with 429 (its link failure budget
spent) is played by a stand-in server on 127.0.0.1, because the real one cannot
be made to do that on purpose.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.aws_support import (
    SAMPLE_EVENT,
    StandIn,
    assert_string_map,
    connect_event,
    load_aws_module,
    new_contact,
)
from tests.support import Api, KeySet, PluginProcess, dtmf_of, free_port, write_config

TOKEN = "lambda-to-plugin-secret-0123456789"
WRONG_TOKEN = "not-the-plugin-secret-9876543210"

assign_id = load_aws_module("assign_id")


# --------------------------------------------------------------------------- plugins and stand-ins


def start_plugin(directory: Path, keyset: KeySet, **settings: Any) -> PluginProcess:
    """``connect-plugin serve`` on a fresh SQLite file (serve migrates it), listening on a free port."""
    directory.mkdir(parents=True, exist_ok=True)
    config = write_config(directory / "plugin.toml", keyset, database_url=f"sqlite:///{directory}/sessions.sqlite3",
                          **settings)
    return PluginProcess(config).start()


@pytest.fixture(scope="module")
def open_plugin(tmp_path_factory: pytest.TempPathFactory, keyset: KeySet) -> Iterator[PluginProcess]:
    """A plugin whose ``/link_phone`` takes no token (``link_phone_token`` unset)."""
    process = start_plugin(tmp_path_factory.mktemp("open"), keyset)
    yield process
    process.terminate()


@pytest.fixture(scope="module")
def guarded_plugin(tmp_path_factory: pytest.TempPathFactory, keyset: KeySet) -> Iterator[PluginProcess]:
    """A plugin whose ``/link_phone`` wants ``Authorization: Bearer TOKEN``."""
    process = start_plugin(tmp_path_factory.mktemp("guarded"), keyset, link_phone_token=TOKEN)
    yield process
    process.terminate()


@pytest.fixture
def stand_in() -> Iterator[Callable[..., StandIn]]:
    """``stand_in(status=, delay=, headers=)`` starts a stand-in; all are closed after the test."""
    started: list[StandIn] = []

    def start(**kwargs: Any) -> StandIn:
        server = StandIn(**kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``lambda_env(url, token=None, timeout=None, unknown_code=None)`` sets the function's environment."""

    def configure(url: str | None, token: str | None = None, timeout: str | None = None,
                  unknown_code: str | None = None) -> None:
        for name, value in (("CALL_URL", url), ("CALL_TOKEN", token), ("CALL_TIMEOUT", timeout),
                            ("UNKNOWN_CODE", unknown_code)):
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)

    return configure


@pytest.fixture
def lambda_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """What the function logs (CloudWatch, in AWS)."""
    caplog.set_level(logging.INFO, logger="assign_id")
    return caplog


async def issue_code(plugin: PluginProcess, purpose: str = "report_move") -> str:
    """Start a session on the plugin, as the core does; the code the caller's phone will send."""
    started = await Api(plugin.base_url).start(purpose)
    assert started.status == 200
    return dtmf_of(started)


# --------------------------------------------------------------------------- linking through the real plugin


@pytest.mark.gen_test
async def test_known_code_links_the_call(open_plugin, lambda_env):
    code = await issue_code(open_plugin, "request_passport")
    contact = new_contact()
    lambda_env(open_plugin.base_url + "/link_phone")

    result = assign_id.handler(connect_event(contact, attribute=code), None)

    assert result == {"linked": "true"}
    assert_string_map(result)
    info = await Api(open_plugin.base_url).info(contact)
    assert info.status == 200
    assert info.json["purpose"] == "request_passport"


@pytest.mark.gen_test
async def test_retried_invocation_for_the_same_call_is_still_linked(open_plugin, lambda_env):
    code = await issue_code(open_plugin)
    contact = new_contact()
    lambda_env(open_plugin.base_url + "/link_phone")
    event = connect_event(contact, attribute=code)

    assert assign_id.handler(event, None) == {"linked": "true"}
    assert assign_id.handler(event, None) == {"linked": "true"}  # Amazon Connect retries failed invocations


@pytest.mark.gen_test
async def test_code_already_used_by_another_call_is_not_linked(open_plugin, lambda_env):
    code = await issue_code(open_plugin)
    lambda_env(open_plugin.base_url + "/link_phone")
    assert assign_id.handler(connect_event(new_contact(), attribute=code), None) == {"linked": "true"}

    result = assign_id.handler(connect_event(new_contact(), attribute=code), None)

    assert result == {"linked": "false"}
    assert_string_map(result)


def test_unknown_code_is_not_linked(open_plugin, lambda_env):
    lambda_env(open_plugin.base_url + "/link_phone")

    result = assign_id.handler(connect_event(new_contact(), attribute="0000000000"), None)

    assert result == {"linked": "false"}


def test_sample_event_reaches_the_plugin_and_is_answered(open_plugin, lambda_env):
    # What a deployer sees with aws/test-event.json in the Lambda console's Test tab
    # before minting a code: the plugin is reached and knows no such code.
    lambda_env(open_plugin.base_url + "/link_phone")

    assert SAMPLE_EVENT["Name"] == "ContactFlowEvent"
    assert assign_id.handler(copy.deepcopy(SAMPLE_EVENT), None) == {"linked": "false"}


@pytest.mark.gen_test
@pytest.mark.parametrize("given_as", ["parameter", "attribute"])
async def test_code_is_read_from_parameter_or_contact_attribute(open_plugin, lambda_env, given_as):
    code = await issue_code(open_plugin)
    lambda_env(open_plugin.base_url + "/link_phone")

    result = assign_id.handler(connect_event(new_contact(), **{given_as: code}), None)

    assert result == {"linked": "true"}


@pytest.mark.gen_test
async def test_function_parameter_wins_over_contact_attribute(open_plugin, lambda_env):
    right, other = await issue_code(open_plugin), await issue_code(open_plugin)
    lambda_env(open_plugin.base_url + "/link_phone")
    contact = new_contact()

    assert assign_id.handler(connect_event(contact, parameter=right, attribute="0000000000"), None) \
        == {"linked": "true"}
    # Had the attribute been read, this other code would link the same call.
    assert assign_id.handler(connect_event(new_contact(), parameter="0000000000", attribute=other), None) \
        == {"linked": "false"}


@pytest.mark.gen_test
async def test_empty_function_parameter_falls_back_to_the_contact_attribute(open_plugin, lambda_env):
    # A flow whose input parameter names an unset value passes an empty string.
    code = await issue_code(open_plugin)
    lambda_env(open_plugin.base_url + "/link_phone")

    assert assign_id.handler(connect_event(new_contact(), parameter="", attribute=code), None) == {"linked": "true"}


@pytest.mark.gen_test
async def test_success_log_names_the_contact_never_the_code(open_plugin, lambda_env, lambda_log):
    code = await issue_code(open_plugin)
    contact = new_contact()
    lambda_env(open_plugin.base_url + "/link_phone")

    assign_id.handler(connect_event(contact, attribute=code), None)

    assert contact in lambda_log.text
    assert "linked" in lambda_log.text
    assert code not in lambda_log.text


# --------------------------------------------------------------------------- no usable code: the plugin is not asked

BAD_EVENTS: dict[str, Callable[[], dict[str, Any]]] = {
    "no attributes at all": lambda: _without(connect_event(new_contact()), "Attributes"),
    "no parameters and empty attributes": lambda: connect_event(new_contact()),
    "attributes without dtmf": lambda: connect_event(new_contact(), attributes={"language": "nl"}),
    "empty code": lambda: connect_event(new_contact(), attribute=""),
    "caller typed nothing (Connect stores Timeout)": lambda: connect_event(new_contact(), attribute="Timeout"),
    "code with letters": lambda: connect_event(new_contact(), parameter="12345abcde"),
    "code is not a string": lambda: connect_event(new_contact(), attributes={"dtmf": 1234567890}),  # type: ignore[dict-item]
    "no contact id": lambda: connect_event(None, attribute="1234567890"),
    "empty contact id": lambda: connect_event("", attribute="1234567890"),
    "contact id with a slash": lambda: connect_event("a/b", attribute="1234567890"),
    "no Details": lambda: {"Name": "ContactFlowEvent"},
    "not an object": lambda: [],  # type: ignore[dict-item, return-value]
}


def _without(event: dict[str, Any], key: str) -> dict[str, Any]:
    del event["Details"]["ContactData"][key]
    return event


@pytest.mark.parametrize("case", BAD_EVENTS)
def test_event_without_usable_code_or_contact_is_not_linked_and_plugin_is_not_asked(case, stand_in, lambda_env,
                                                                                  lambda_log):
    counter = stand_in()
    lambda_env(counter.url)

    result = assign_id.handler(BAD_EVENTS[case](), None)

    assert result == {"linked": "false"}
    assert counter.requests == []
    assert "not asking the plugin" in lambda_log.text


def test_event_without_code_needs_no_configuration(lambda_env):
    lambda_env(None)  # CALL_URL unset: nothing would be reachable

    assert assign_id.handler(connect_event(new_contact()), None) == {"linked": "false"}


# --------------------------------------------------------------------------- failures: raise, log which, never the code


def assert_logged_safely(log: pytest.LogCaptureFixture, *secrets: str) -> None:
    """The log holds none of the secrets (codes, tokens)."""
    for secret in secrets:
        assert secret not in log.text


@pytest.mark.gen_test
async def test_right_token_is_sent_as_bearer_and_links(guarded_plugin, lambda_env):
    code = await issue_code(guarded_plugin)
    lambda_env(guarded_plugin.base_url + "/link_phone", token=TOKEN)

    assert assign_id.handler(connect_event(new_contact(), attribute=code), None) == {"linked": "true"}


@pytest.mark.gen_test
@pytest.mark.parametrize("token", [WRONG_TOKEN, None], ids=["wrong token", "no token"])
async def test_refused_token_raises_and_logs_refusal_without_code_or_token(guarded_plugin, lambda_env, lambda_log,
                                                                           token):
    code = await issue_code(guarded_plugin)
    contact = new_contact()
    lambda_env(guarded_plugin.base_url + "/link_phone", token=token)

    with pytest.raises(assign_id.LinkFailed, match="token"):
        assign_id.handler(connect_event(contact, attribute=code), None)

    assert "refused the bearer token (HTTP 401)" in lambda_log.text
    assert contact in lambda_log.text
    assert_logged_safely(lambda_log, code, TOKEN, WRONG_TOKEN)
    # The refused call linked nothing: the code still works with the right token.
    lambda_env(guarded_plugin.base_url + "/link_phone", token=TOKEN)
    assert assign_id.handler(connect_event(contact, attribute=code), None) == {"linked": "true"}


def test_plugin_down_raises_and_says_unreachable(lambda_env, lambda_log):
    lambda_env(f"http://127.0.0.1:{free_port()}/link_phone", token=TOKEN)

    with pytest.raises(assign_id.LinkFailed, match="unreachable"):
        assign_id.handler(connect_event(new_contact(), attribute="1234567890"), None)

    assert "unreachable" in lambda_log.text
    assert_logged_safely(lambda_log, "1234567890", TOKEN)


@pytest.mark.parametrize("status", [500, 503])
def test_plugin_5xx_raises_and_says_which_status(stand_in, lambda_env, lambda_log, status):
    failing = stand_in(status=status)
    contact = new_contact()
    lambda_env(failing.url, token=TOKEN)

    with pytest.raises(assign_id.LinkFailed, match=str(status)):
        assign_id.handler(connect_event(contact, attribute="1234567890"), None)

    assert f"the plugin failed (HTTP {status})" in lambda_log.text
    assert_logged_safely(lambda_log, "1234567890", TOKEN)
    # What was sent is the protocol's request, with the token as a bearer credential.
    [request] = failing.requests
    assert request["path"] == "/link_phone"
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert request["headers"]["Content-Type"] == "application/json"
    assert json.loads(request["body"]) == {"dtmf": "1234567890", "sessionid": contact}


def test_slow_plugin_raises_within_the_configured_timeout(stand_in, lambda_env, lambda_log):
    slow = stand_in(delay=10.0)
    lambda_env(slow.url, timeout="0.5")

    started = time.monotonic()
    with pytest.raises(assign_id.LinkFailed, match=r"did not answer within 0\.5 s"):
        assign_id.handler(connect_event(new_contact(), attribute="1234567890"), None)
    elapsed = time.monotonic() - started

    # Cut off by the 0.5 s timeout, not by the stand-in's 10 s answer (generous: the machine is shared).
    assert 0.4 < elapsed < 6.0
    assert len(slow.requests) == 1
    assert_logged_safely(lambda_log, "1234567890")


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_is_not_followed_so_the_token_stays_with_the_plugin(stand_in, lambda_env, lambda_log, status):
    elsewhere = stand_in()
    redirecting = stand_in(status=status, headers={"Location": elsewhere.url})
    lambda_env(redirecting.url, token=TOKEN)

    with pytest.raises(assign_id.LinkFailed, match="redirect"):
        assign_id.handler(connect_event(new_contact(), attribute="1234567890"), None)

    assert elsewhere.requests == []
    assert_logged_safely(lambda_log, "1234567890", TOKEN)


@pytest.mark.parametrize("url", [None, "", "plugin.example.nl/link_phone", "ftp://plugin.example.nl/link_phone"])
def test_missing_or_non_http_call_url_raises_when_there_is_a_code(lambda_env, lambda_log, url):
    lambda_env(url)

    with pytest.raises(assign_id.LinkFailed, match="CALL_URL"):
        assign_id.handler(connect_event(new_contact(), attribute="1234567890"), None)

    assert "CALL_URL" in lambda_log.text


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(("value", "seconds"), [
    (None, 3.0), ("", 3.0), ("1.5", 1.5), ("7", 7.0), ("30", 7.0), ("0", 3.0), ("-1", 3.0), ("nan", 3.0),
    ("three", 3.0),
])
def test_call_timeout_defaults_to_3_and_stays_below_connects_8_second_limit(value, seconds):
    assert assign_id.parse_timeout(value) == seconds


def test_timeout_bounds_fit_inside_amazon_connects_limit():
    assert assign_id.DEFAULT_TIMEOUT <= 3
    assert assign_id.MAX_TIMEOUT < 8


def test_config_repr_does_not_show_the_token():
    config = assign_id.Config.from_environ({"CALL_URL": "https://plugin.example.nl/link_phone", "CALL_TOKEN": TOKEN})

    assert config.token == TOKEN
    assert TOKEN not in repr(config)


# --------------------------------------------------------------------------- the end of the call (disconnect flow)


def ended_event(contact_id: str | None) -> dict[str, Any]:
    """What a disconnect flow's Lambda block sends: the parameter ``call_event`` = ``ended``."""
    event = connect_event(contact_id)
    event["Details"]["Parameters"] = {"call_event": "ended"}
    return event


def test_end_call_url_sits_beside_link_phone():
    assert assign_id.end_call_url("https://p.example.nl/plugin/link_phone") == "https://p.example.nl/plugin/end_call"
    assert assign_id.end_call_url("https://p.example.nl/link_phone?x=1") == "https://p.example.nl/end_call"


@pytest.mark.gen_test
async def test_end_of_a_linked_call_is_reported_to_the_plugin(guarded_plugin, lambda_env):
    code = await issue_code(guarded_plugin)
    contact = new_contact()
    lambda_env(guarded_plugin.base_url + "/link_phone", token=TOKEN)
    assert assign_id.handler(connect_event(contact, attribute=code), None) == {"linked": "true"}

    result = assign_id.handler(ended_event(contact), None)

    assert result == {"ended": "true"}
    assert_string_map(result)


def test_end_of_an_unlinked_call_is_answered_false(open_plugin, lambda_env):
    lambda_env(open_plugin.base_url + "/link_phone")
    assert assign_id.handler(ended_event(new_contact()), None) == {"ended": "false"}
    assert assign_id.handler(ended_event(None), None) == {"ended": "false"}


def test_end_of_call_with_a_wrong_token_raises(guarded_plugin, lambda_env, lambda_log):
    lambda_env(guarded_plugin.base_url + "/link_phone", token=WRONG_TOKEN)
    with pytest.raises(assign_id.LinkFailed):
        assign_id.handler(ended_event(new_contact()), None)
    assert WRONG_TOKEN not in lambda_log.text


# ------------------------------------------------------------------ UNKNOWN_CODE=error: the reference's contract


@pytest.mark.parametrize("value", [None, "", "false", " FALSE "])
def test_unknown_code_answers_the_flat_map_by_default(open_plugin, lambda_env, value):
    lambda_env(open_plugin.base_url + "/link_phone", unknown_code=value)

    result = assign_id.handler(connect_event(new_contact(), attribute="0000000000"), None)

    assert result == {"linked": "false"}
    assert_string_map(result)


def test_unknown_code_raises_with_unknown_code_error_as_the_references_lambda_did(open_plugin, lambda_env,
                                                                                    lambda_log):
    # A flow built for the reference takes the Error branch for a wrong code.
    contact = new_contact()
    lambda_env(open_plugin.base_url + "/link_phone", unknown_code="error")

    with pytest.raises(assign_id.NotLinked, match="no such unused code") as raised:
        assign_id.handler(connect_event(contact, attribute="0000000000"), None)

    assert "0000000000" not in str(raised.value)
    assert contact in lambda_log.text
    assert_logged_safely(lambda_log, "0000000000")


@pytest.mark.gen_test
async def test_known_code_still_answers_linked_with_unknown_code_error(guarded_plugin, lambda_env):
    code = await issue_code(guarded_plugin)
    contact = new_contact()
    lambda_env(guarded_plugin.base_url + "/link_phone", token=TOKEN, unknown_code="error")

    assert assign_id.handler(connect_event(contact, attribute=code), None) == {"linked": "true"}
    # A code already used by another call is a wrong code too.
    with pytest.raises(assign_id.NotLinked):
        assign_id.handler(connect_event(new_contact(), attribute=code), None)


@pytest.mark.parametrize("case", ["caller typed nothing (Connect stores Timeout)", "no contact id", "not an object"])
def test_event_without_usable_code_raises_with_unknown_code_error_and_plugin_is_not_asked(case, stand_in, lambda_env):
    counter = stand_in()
    lambda_env(counter.url, unknown_code="error")

    with pytest.raises(assign_id.NotLinked, match="no usable"):
        assign_id.handler(BAD_EVENTS[case](), None)

    assert counter.requests == []


@pytest.mark.parametrize("value", ["eror", "true", "raise", "0"])
def test_misspelt_unknown_code_fails_loudly_instead_of_answering_linked_false(stand_in, lambda_env, lambda_log,
                                                                              value):
    # Falling back to the flat map would send every wrong code of a reference flow on as if linked.
    counter = stand_in()
    lambda_env(counter.url, unknown_code=value)

    with pytest.raises(assign_id.LinkFailed, match="UNKNOWN_CODE"):
        assign_id.handler(connect_event(new_contact(), attribute="1234567890"), None)

    assert counter.requests == []
    assert "UNKNOWN_CODE must be false or error" in lambda_log.text


def test_end_of_call_answers_the_same_in_both_modes(open_plugin, lambda_env):
    lambda_env(open_plugin.base_url + "/link_phone", unknown_code="error")

    assert assign_id.handler(ended_event(new_contact()), None) == {"ended": "false"}


# ------------------------------------------------------------------ 429: the link failure budget is spent

TOO_MANY = {"error": "TooManyRequests"}


def test_429_is_not_linked_once_without_raising_or_retrying(stand_in, lambda_env, lambda_log):
    refusing = stand_in(status=429, headers={"Retry-After": "37"}, body=TOO_MANY)
    contact = new_contact()
    lambda_env(refusing.url, token=TOKEN)

    result = assign_id.handler(connect_event(contact, attribute="1234567890"), None)

    assert result == {"linked": "false"}
    assert_string_map(result)
    assert len(refusing.requests) == 1  # no retry: the call goes on to an agent
    assert f"contact {contact}: not linked: the plugin refuses links for now (HTTP 429" in lambda_log.text
    assert "retry after 37 s" in lambda_log.text
    assert [r.levelname for r in lambda_log.records] == ["WARNING"]
    assert_logged_safely(lambda_log, "1234567890", TOKEN)


@pytest.mark.parametrize("retry_after", [None, "Wed, 21 Oct 2015 07:28:00 GMT", "1" * 40])
def test_429_with_a_missing_or_odd_retry_after_is_still_not_linked(stand_in, lambda_env, lambda_log, retry_after):
    refusing = stand_in(status=429, headers={"Retry-After": retry_after} if retry_after else {}, body=TOO_MANY)
    lambda_env(refusing.url)

    assert assign_id.handler(connect_event(new_contact(), attribute="1234567890"), None) == {"linked": "false"}
    assert "retry after" not in lambda_log.text


def test_429_with_unknown_code_error_raises_not_linked_once(stand_in, lambda_env, lambda_log):
    # For a flow built for the reference, not linked is the Error branch, which such a flow routes on.
    refusing = stand_in(status=429, headers={"Retry-After": "12"}, body=TOO_MANY)
    lambda_env(refusing.url, token=TOKEN, unknown_code="error")

    with pytest.raises(assign_id.NotLinked, match="refuses links for now"):
        assign_id.handler(connect_event(new_contact(), attribute="1234567890"), None)

    assert len(refusing.requests) == 1
    assert_logged_safely(lambda_log, "1234567890", TOKEN)


def test_429_from_end_call_is_a_failure_not_a_link_answer(stand_in, lambda_env):
    # Only link attempts have a failure budget; /end_call answering 429 is unexpected.
    refusing = stand_in(status=429, body=TOO_MANY)
    lambda_env(refusing.url)

    with pytest.raises(assign_id.LinkFailed, match="HTTP 429"):
        assign_id.handler(ended_event(new_contact()), None)
