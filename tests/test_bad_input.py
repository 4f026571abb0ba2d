"""What bad input gets: a 4xx JSON error naming the problem, nothing stored, nothing echoed."""

from __future__ import annotations

import pytest

from tests.support import count_sessions, dtmf_of

CONTACT = "0c8e7f52-9d1a-4b3e-8f6a-5e2d1c0b9a87"
BAD_REQUEST = "BadRequest"


def assert_bad_request(response, detail_part: str) -> None:
    assert response.status == 400, response.body
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json["error"] == BAD_REQUEST
    assert detail_part in response.json["detail"]


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        ("{not json", "not valid JSON"),
        ("", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('"report_move"', "must be a JSON object"),
        ("{}", "missing field: purpose"),
        ('{"purpose": 7}', "purpose must be a string"),
        ('{"purpose": ""}', "purpose must be 1 to 256"),
        ('{"purpose": "x\\u0000y"}', "printable"),
        ('{"purpose": "report_move", "auth_result": 12}', "auth_result must be a string"),
        (b'\xff\xfe{"purpose": 1}', "not valid JSON"),
    ],
)
async def test_start_with_malformed_body_is_400_and_stores_nothing(plugin, database_url, raw, detail):
    response = await plugin.api.call("POST", "/start_communication", raw=raw,
                                     headers={"Content-Type": "application/json"})
    assert_bad_request(response, detail)
    assert await count_sessions(database_url) == 0


@pytest.mark.gen_test
async def test_start_with_unknown_fields_ignores_them(api):
    response = await api.call("POST", "/start_communication", {"purpose": "report_move", "colour": "blue"})
    assert response.status == 200


@pytest.mark.gen_test
async def test_start_with_invalid_inline_result_is_400_and_leaves_no_session(plugin, database_url, mint):
    bad = mint()[:-8] + "AAAAAAAA"  # flipped tag
    response = await plugin.api.start("report_move", auth_result=bad)
    assert_bad_request(response, "auth_result")
    assert bad not in response.body.decode()
    assert await count_sessions(database_url) == 0


@pytest.mark.gen_test
async def test_start_with_expired_inline_result_is_400(plugin, database_url, mint):
    import time

    response = await plugin.api.start("report_move", auth_result=mint(now=time.time() - 3600))
    assert_bad_request(response, "expired")
    assert await count_sessions(database_url) == 0


@pytest.mark.gen_test
async def test_oversized_body_is_413_json(api, database_url):
    response = await api.call("POST", "/start_communication", {"purpose": "x", "pad": "a" * 70_000})
    assert response.status == 413
    assert response.json["error"] == "PayloadTooLarge"
    assert await count_sessions(database_url) == 0


@pytest.mark.gen_test
async def test_result_for_unknown_code_is_404(api, mint):
    response = await api.post_result("/session_result/NoSuchCode0000000000000000000000", mint())
    assert response.status == 404
    assert response.json == {"error": "NotFound"}


@pytest.mark.gen_test
async def test_result_posted_twice_is_404_and_first_result_stays(api, mint):
    started = (await api.start("report_move")).json
    first = await api.post_result(started["attr_url"], mint(attributes={"email": "first@example.com"}))
    second = await api.post_result(started["attr_url"], mint(attributes={"email": "second@example.com"}))
    assert (first.status, second.status) == (200, 404)
    assert second.json == {"error": "NotFound"}
    await api.link(dtmf_of(started), CONTACT)
    info = (await api.info(CONTACT)).json
    assert info["auth_result"]["attributes"] == {"email": "first@example.com"}


@pytest.mark.gen_test
async def test_invalid_result_is_400_and_a_valid_one_can_still_follow(api, mint):
    started = (await api.start("report_move")).json
    token = mint()
    tampered = token.replace(".", ".x", 1)
    bad = await api.post_result(started["attr_url"], tampered)
    assert_bad_request(bad, "auth_result")
    assert tampered not in bad.body.decode()
    good = await api.post_result(started["attr_url"], token)
    assert good.status == 200


@pytest.mark.gen_test
@pytest.mark.parametrize("raw", [b"", b"   ", b"\xff\xfe\xfd"])
async def test_result_with_empty_or_binary_body_is_400(api, raw):
    started = (await api.start("report_move")).json
    response = await api.post_result(started["attr_url"], raw)
    assert_bad_request(response, "compact JWE")


@pytest.mark.gen_test
async def test_link_with_unknown_code_is_404(api):
    response = await api.link("0000000000", CONTACT)
    assert response.status == 404
    assert response.json == {"error": "NotFound"}


@pytest.mark.gen_test
@pytest.mark.parametrize("typed", ["", "12ab", "*#", "1 2 3"])
async def test_link_with_code_a_caller_cannot_have_been_given_is_404(api, typed):
    await api.start("report_move")
    assert (await api.link(typed, CONTACT)).status == 404


@pytest.mark.gen_test
async def test_link_retried_with_same_contact_is_200(api):
    dtmf = dtmf_of(await api.start("report_move"))
    assert (await api.link(dtmf, CONTACT)).status == 200
    assert (await api.link(dtmf, CONTACT)).status == 200
    assert (await api.info(CONTACT)).status == 200


@pytest.mark.gen_test
async def test_link_of_used_code_with_another_contact_is_404(api):
    dtmf = dtmf_of(await api.start("report_move"))
    assert (await api.link(dtmf, CONTACT)).status == 200
    other = "11111111-2222-3333-4444-555555555555"
    assert (await api.link(dtmf, other)).status == 404
    assert (await api.info(other)).status == 404
    assert (await api.info(CONTACT)).status == 200


@pytest.mark.gen_test
async def test_contact_already_linked_cannot_take_a_second_session(api):
    first = dtmf_of(await api.start("report_move"))
    second = dtmf_of(await api.start("request_permit"))
    assert (await api.link(first, CONTACT)).status == 200
    assert (await api.link(second, CONTACT)).status == 404
    assert (await api.info(CONTACT)).json["purpose"] == "report_move"


@pytest.mark.gen_test
@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"sessionid": CONTACT}, "missing field: dtmf"),
        ({"dtmf": "123"}, "missing field: sessionid"),
        ({"dtmf": 123, "sessionid": CONTACT}, "dtmf must be a string"),
        ({"dtmf": "123", "sessionid": ["x"]}, "sessionid must be a string"),
        ({"dtmf": "123", "sessionid": "a/b"}, "sessionid must be a contact id"),
        ({"dtmf": "123", "sessionid": ""}, "sessionid must be a contact id"),
    ],
)
async def test_link_with_malformed_body_is_400(api, body, detail):
    assert_bad_request(await api.call("POST", "/link_phone", body), detail)


@pytest.mark.gen_test
async def test_info_for_unknown_contact_is_404(api):
    response = await api.info("99999999-9999-9999-9999-999999999999")
    assert response.status == 404
    assert response.json == {"error": "NotFound"}


@pytest.mark.gen_test
async def test_unknown_path_is_404_json(api):
    response = await api.call("GET", "/no/such/thing")
    assert response.status == 404
    assert response.json == {"error": "NotFound"}


@pytest.mark.gen_test
async def test_wrong_method_is_405_json(api):
    response = await api.call("GET", "/start_communication")
    assert response.status == 405
    assert response.json == {"error": "MethodNotAllowed"}
