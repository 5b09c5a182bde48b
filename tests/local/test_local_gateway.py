"""The API Gateway emulation, with fake functions: routing, gateway responses, authorizer, cache, CORS, events."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from local_kit import REGION, WEB_ORIGIN, FakeFunction, GatewayKit, echo_event, failing

from chatbot_local.cloudformation import TemplateError
from chatbot_local.events import ApiIdentity, HttpRequest
from chatbot_local.gateway import Gateway
from chatbot_local.template import Template

GOOD = {"Authorization": "Bearer good-alice"}
SESSION = "0b9f3c1e-8f0a-4c55-9a57-8a0c2f1b5d11"

Build = Callable[..., GatewayKit]


def body_of(response: Any) -> Any:
    return json.loads(response.body)


# --- gateway responses ----------------------------------------------------------------------------


def test_unknown_route_is_404_not_found_without_calling_anything(make_gateway: Build) -> None:
    kit = make_gateway()

    response = kit.request("GET", "/v1/nothing-here", GOOD)

    assert response.status == 404
    assert body_of(response) == {"message": "Not Found"}
    assert response.header("content-type") == "application/json"
    assert kit.authorizer.events == []
    assert kit.chat.events == []


def test_known_path_with_another_method_is_404(make_gateway: Build) -> None:
    assert make_gateway().request("PUT", "/v1/sessions", GOOD).status == 404


def test_trailing_slash_is_another_route(make_gateway: Build) -> None:
    assert make_gateway().request("GET", "/v1/sessions/", GOOD).status == 404


def test_missing_authorization_header_is_401_without_calling_the_authorizer(make_gateway: Build) -> None:
    kit = make_gateway()

    response = kit.request("GET", "/v1/sessions")

    assert response.status == 401
    assert body_of(response) == {"message": "Unauthorized"}
    assert kit.authorizer.events == []


def test_empty_authorization_header_is_401(make_gateway: Build) -> None:
    kit = make_gateway()

    assert kit.request("GET", "/v1/sessions", {"Authorization": ""}).status == 401
    assert kit.authorizer.events == []


def test_denied_by_the_authorizer_is_403_forbidden(make_gateway: Build) -> None:
    kit = make_gateway()

    response = kit.request("GET", "/v1/sessions", {"Authorization": "Bearer forged"})

    assert response.status == 403
    assert body_of(response) == {"message": "Forbidden"}
    assert kit.chat.events == []


def test_authorizer_that_raises_is_500_as_in_api_gateway(make_gateway: Build) -> None:
    kit = make_gateway(authorizer=failing)

    response = kit.request("GET", "/v1/sessions", GOOD)

    assert response.status == 500
    assert body_of(response) == {"message": "Internal Server Error"}
    assert kit.chat.events == []


@pytest.mark.parametrize(
    "answer", [{"isAuthorized": "yes"}, {"allowed": True}, None, {"isAuthorized": True, "context": 1}]
)
def test_invalid_authorizer_response_is_500(make_gateway: Build, answer: Any) -> None:
    kit = make_gateway(authorizer=lambda event: answer)

    assert kit.request("GET", "/v1/sessions", GOOD).status == 500


def test_function_that_raises_is_500(make_gateway: Build) -> None:
    response = make_gateway(chat=failing).request("GET", "/v1/sessions", GOOD)

    assert response.status == 500
    assert body_of(response) == {"message": "Internal Server Error"}


def test_open_route_skips_the_authorizer(make_gateway: Build) -> None:
    kit = make_gateway()

    response = kit.request("POST", "/v1/anonymous-sessions")

    assert response.status == 200
    assert kit.authorizer.events == []
    assert "authorizer" not in kit.chat.events[0]["requestContext"]


def test_stage_throttling_answers_429_too_many_requests(make_gateway: Build) -> None:
    kit = make_gateway(environ={"THROTTLING_BURST_LIMIT": "2", "THROTTLING_RATE_LIMIT": "1"})

    statuses = [kit.request("POST", "/v1/anonymous-sessions").status for _ in range(3)]
    kit.clock.now += 1.0
    after_refill = kit.request("POST", "/v1/anonymous-sessions")

    assert statuses == [200, 200, 429]
    assert after_refill.status == 200


def test_every_response_carries_a_unique_request_id(make_gateway: Build) -> None:
    kit = make_gateway()

    ids = {kit.request("GET", "/v1/sessions", GOOD).header("apigw-requestid") for _ in range(5)}

    assert len(ids) == 5
    assert len({event["requestContext"]["requestId"] for event in kit.chat.events}) == 5


def test_one_log_line_per_request_without_headers_ids_or_tokens(make_gateway: Build) -> None:
    kit = make_gateway()

    kit.request("GET", f"/v1/sessions/{SESSION}", GOOD)
    kit.request("GET", "/v1/sessions\r\nforged")

    assert len(kit.lines) == 2
    assert kit.lines[0].startswith("GET /v1/sessions/{session_id} 200 ")
    assert kit.lines[1].startswith("GET (no route) 404 ")
    assert not any("good-alice" in line or SESSION in line for line in kit.lines)


def test_the_log_line_of_an_unknown_path_never_holds_the_path(make_gateway: Build) -> None:
    kit = make_gateway()

    kit.request("GET", "/v1/users/alice@example.com/secrets")

    assert kit.lines == [kit.lines[0]]
    assert kit.lines[0].startswith("GET (no route) 404 ")
    assert "alice" not in kit.lines[0]


def test_the_log_line_of_a_denial_carries_the_authorizers_reason(fixture_template: Template) -> None:

    lines: list[str] = []
    reasons = iter(["stale", "kid"])
    resolver = fixture_template.resolver({"ALLOWED_ORIGINS": ""}, REGION)
    functions = {
        "AuthorizerFunction": FakeFunction(lambda event: {"isAuthorized": False}),
        "ChatFunction": FakeFunction(echo_event),
    }
    gateway = Gateway(
        fixture_template.http_api(resolver, ()),
        functions,
        ApiIdentity(REGION, "123456789012"),
        log=lines.append,
        denial_reason=lambda: next(reasons, None),
    )
    request = HttpRequest("POST", "/v1/sessions", "", (("Authorization", "Bearer x"),))
    gateway.handle(request)
    gateway.handle(request)  # the cached denial keeps its reason

    assert [line.split(" ", 3)[:3] for line in lines] == [["POST", "/v1/sessions", "403"]] * 2
    assert all(line.endswith(" reason=kid") for line in lines)


def test_the_log_line_of_a_request_without_credentials_says_so(make_gateway: Build) -> None:
    kit = make_gateway()

    kit.request("GET", "/v1/sessions")

    assert kit.lines[0].endswith(" reason=no_identity_source")


# --- the integration event -----------------------------------------------------------------------


def test_function_receives_a_payload_2_event(make_gateway: Build) -> None:
    kit = make_gateway()
    body = json.dumps({"content": "hi"}).encode()
    headers = {**GOOD, "Content-Type": "application/json", "X-Custom": "a", "Cookie": "a=1; b=2"}

    kit.request("POST", f"/v1/sessions/{SESSION}/messages", headers, body, query="limit=5&x=1&x=2")

    event = kit.chat.events[0]
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /v1/sessions/{session_id}/messages"
    assert event["rawPath"] == f"/v1/sessions/{SESSION}/messages"
    assert event["rawQueryString"] == "limit=5&x=1&x=2"
    assert event["queryStringParameters"] == {"limit": "5", "x": "1,2"}
    assert event["pathParameters"] == {"session_id": SESSION}
    assert event["headers"]["x-custom"] == "a"
    assert event["headers"]["content-type"] == "application/json"
    assert all(name == name.lower() for name in event["headers"])
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["body"] == '{"content": "hi"}'
    assert event["isBase64Encoded"] is False


def test_the_path_reaches_the_function_percent_decoded_like_an_http_api(make_gateway: Build) -> None:
    # HTTP APIs decode rawPath (REST APIs and function URLs do not); the chat function relies on it.
    kit = make_gateway()

    kit.request("DELETE", "/v1/admin/users/auth0%7Cabc%20d%22e", GOOD)

    event = kit.chat.events[0]
    assert event["rawPath"] == '/v1/admin/users/auth0|abc d"e'
    assert event["requestContext"]["http"]["path"] == '/v1/admin/users/auth0|abc d"e'
    assert event["pathParameters"] == {"subject": 'auth0|abc d"e'}


def test_request_context_is_api_gateways(make_gateway: Build) -> None:
    kit = make_gateway()

    kit.request("GET", f"/v1/sessions/{SESSION}", GOOD)

    context = kit.chat.events[0]["requestContext"]
    assert context["accountId"] == "123456789012"
    assert context["apiId"] == "local"
    assert context["domainName"] == "127.0.0.1"
    assert context["stage"] == "$default"
    assert context["routeKey"] == "GET /v1/sessions/{session_id}"
    assert context["http"] == {
        "method": "GET",
        "path": f"/v1/sessions/{SESSION}",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "tests",
    }
    assert isinstance(context["requestId"], str)
    assert context["requestId"]
    assert isinstance(context["timeEpoch"], int)
    assert context["time"].endswith(" +0000")
    assert context["authorizer"] == {"lambda": {"principal": "good-alice"}}


def test_event_without_query_body_or_parameters_omits_them(make_gateway: Build) -> None:
    kit = make_gateway()

    kit.request("GET", "/v1/sessions", GOOD)

    event = kit.chat.events[0]
    assert event["rawQueryString"] == ""
    assert "queryStringParameters" not in event
    assert "pathParameters" not in event
    assert "body" not in event
    assert event["isBase64Encoded"] is False


def test_binary_or_non_text_body_is_base64_encoded(make_gateway: Build) -> None:
    kit = make_gateway()
    raw = b"\xff\xfe not utf-8"

    kit.request("POST", f"/v1/sessions/{SESSION}/messages", {**GOOD, "Content-Type": "application/json"}, raw)
    kit.request("POST", f"/v1/sessions/{SESSION}/messages", {**GOOD, "Content-Type": "image/png"}, b"png")

    invalid_utf8, binary = kit.chat.events
    assert invalid_utf8["isBase64Encoded"] is True
    assert base64.b64decode(invalid_utf8["body"]) == raw
    assert binary["isBase64Encoded"] is True


def test_text_plain_body_is_passed_as_text(make_gateway: Build) -> None:
    kit = make_gateway()

    kit.request("POST", f"/v1/sessions/{SESSION}/messages", {**GOOD, "Content-Type": "text/plain"}, b"content=hi")

    assert kit.chat.events[0]["body"] == "content=hi"
    assert kit.chat.events[0]["isBase64Encoded"] is False


def test_source_ip_is_the_peer_and_forwarded_for_is_appended(make_gateway: Build) -> None:
    kit = make_gateway()

    kit.request("GET", "/v1/sessions", {**GOOD, "X-Forwarded-For": "203.0.113.9"})

    event = kit.chat.events[0]
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"
    assert event["headers"]["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"


# --- the authorizer event and cache --------------------------------------------------------------


def test_authorizer_receives_a_payload_2_request_event(make_gateway: Build) -> None:
    kit = make_gateway()

    kit.request("DELETE", f"/v1/sessions/{SESSION}", GOOD, query="a=b")

    event = kit.authorizer.events[0]
    assert event["version"] == "2.0"
    assert event["type"] == "REQUEST"
    assert event["routeArn"] == f"arn:aws:execute-api:{REGION}:123456789012:local/$default/DELETE/v1/sessions/{SESSION}"
    assert event["identitySource"] == ["Bearer good-alice", "DELETE /v1/sessions/{session_id}"]
    assert event["routeKey"] == "DELETE /v1/sessions/{session_id}"
    assert event["rawPath"] == f"/v1/sessions/{SESSION}"
    assert event["rawQueryString"] == "a=b"
    assert event["headers"]["authorization"] == "Bearer good-alice"
    assert event["pathParameters"] == {"session_id": SESSION}
    assert event["requestContext"]["routeKey"] == "DELETE /v1/sessions/{session_id}"
    assert "authorizer" not in event["requestContext"]
    assert "body" not in event


def test_cached_decision_is_reused_for_the_same_token_and_route(make_gateway: Build) -> None:
    kit = make_gateway()

    first = kit.request("GET", "/v1/sessions", GOOD)
    second = kit.request("GET", "/v1/sessions", GOOD)

    assert first.status == second.status == 200
    assert len(kit.authorizer.events) == 1
    assert kit.chat.events[1]["requestContext"]["authorizer"] == {"lambda": {"principal": "good-alice"}}


def test_cache_never_crosses_routes(make_gateway: Build) -> None:
    kit = make_gateway()

    kit.request("GET", "/v1/sessions", GOOD)
    kit.request("POST", "/v1/sessions", GOOD)

    assert len(kit.authorizer.events) == 2


def test_cache_never_crosses_tokens(make_gateway: Build) -> None:
    kit = make_gateway()

    kit.request("GET", "/v1/sessions", GOOD)
    kit.request("GET", "/v1/sessions", {"Authorization": "Bearer good-bob"})

    assert len(kit.authorizer.events) == 2
    assert kit.chat.events[1]["requestContext"]["authorizer"]["lambda"] == {"principal": "good-bob"}


def test_denials_are_cached_too(make_gateway: Build) -> None:
    kit = make_gateway()

    statuses = [kit.request("GET", "/v1/sessions", {"Authorization": "Bearer bad"}).status for _ in range(2)]

    assert statuses == [403, 403]
    assert len(kit.authorizer.events) == 1


def test_cache_entries_expire_after_the_templates_ttl(make_gateway: Build) -> None:
    kit = make_gateway()

    kit.request("GET", "/v1/sessions", GOOD)
    kit.clock.now += 299
    kit.request("GET", "/v1/sessions", GOOD)
    kit.clock.now += 2
    kit.request("GET", "/v1/sessions", GOOD)

    assert len(kit.authorizer.events) == 2


def test_ttl_zero_disables_the_cache(make_gateway: Build) -> None:
    kit = make_gateway(environ={"AUTHORIZER_CACHE_TTL": "0"})

    kit.request("GET", "/v1/sessions", GOOD)
    kit.request("GET", "/v1/sessions", GOOD)

    assert len(kit.authorizer.events) == 2


def test_authorizer_failures_are_not_cached(make_gateway: Build) -> None:
    calls: list[int] = []

    def flaky(event: dict[str, Any]) -> Any:
        calls.append(1)
        return None if len(calls) == 1 else {"isAuthorized": True}

    kit = make_gateway(authorizer=flaky)

    assert [kit.request("GET", "/v1/sessions", GOOD).status for _ in range(2)] == [500, 200]


# --- CORS ----------------------------------------------------------------------------------------


def preflight(kit: GatewayKit, origin: str, path: str = "/v1/sessions") -> Any:
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    return kit.request("OPTIONS", path, headers)


def test_preflight_from_an_allowed_origin_gets_204_and_the_templates_cors_headers(make_gateway: Build) -> None:
    kit = make_gateway()

    response = preflight(kit, WEB_ORIGIN)

    assert response.status == 204
    assert response.body == b""
    assert response.header("access-control-allow-origin") == WEB_ORIGIN
    assert response.header("access-control-allow-methods") == "GET,POST,DELETE"
    assert response.header("access-control-allow-headers") == "authorization,content-type"
    assert response.header("access-control-max-age") == "600"
    assert kit.authorizer.events == []
    assert kit.chat.events == []


def test_preflight_from_another_origin_gets_204_without_cors_headers(make_gateway: Build) -> None:
    response = preflight(make_gateway(), "http://evil.example")

    assert response.status == 204
    assert not [name for name, _ in response.headers if name.startswith("access-control-")]


def test_preflight_is_answered_on_any_path(make_gateway: Build) -> None:
    assert preflight(make_gateway(), WEB_ORIGIN, "/not/a/route").status == 204


def test_preflight_is_logged_under_the_route_template_without_the_id(make_gateway: Build) -> None:
    kit = make_gateway()

    preflight(kit, WEB_ORIGIN, f"/v1/sessions/{SESSION}/messages")

    assert kit.lines[0].startswith("OPTIONS /v1/sessions/{session_id}/messages 204 ")
    assert SESSION not in kit.lines[0]


def test_options_without_preflight_headers_is_routed_like_any_request(make_gateway: Build) -> None:
    assert make_gateway().request("OPTIONS", "/v1/sessions", {"Origin": WEB_ORIGIN}).status == 404


def test_actual_response_gets_allow_origin_for_an_allowed_origin_only(make_gateway: Build) -> None:
    kit = make_gateway()

    allowed = kit.request("GET", "/v1/sessions", {**GOOD, "Origin": WEB_ORIGIN})
    other = kit.request("GET", "/v1/sessions", {**GOOD, "Origin": "http://evil.example"})
    denied = kit.request("GET", "/v1/sessions", {"Origin": WEB_ORIGIN})

    assert allowed.header("access-control-allow-origin") == WEB_ORIGIN
    assert other.header("access-control-allow-origin") is None
    assert denied.status == 401
    assert denied.header("access-control-allow-origin") == WEB_ORIGIN


def test_cors_headers_from_the_function_are_ignored(make_gateway: Build) -> None:
    def permissive(event: dict[str, Any]) -> dict[str, Any]:
        return {"statusCode": 200, "headers": {"Access-Control-Allow-Origin": "*"}, "body": ""}

    kit = make_gateway(chat=permissive)

    response = kit.request("GET", "/v1/sessions", {**GOOD, "Origin": "http://evil.example"})

    assert response.header("access-control-allow-origin") is None


def test_cors_settings_fall_back_to_the_routes_when_the_template_has_none(fixture_template: Template) -> None:
    resolver = fixture_template.resolver({}, REGION)  # the template's CorsConfiguration is conditional: off

    cors = fixture_template.http_api(resolver, (WEB_ORIGIN,)).cors

    assert cors is not None
    assert cors.allow_methods == ("DELETE", "GET", "POST")
    assert cors.allow_headers == ("authorization", "content-type")


def test_without_allowed_origins_there_is_no_cors_at_all(make_gateway: Build) -> None:
    kit = make_gateway(origins=())

    response = preflight(kit, WEB_ORIGIN)
    actual = kit.request("GET", "/v1/sessions", {**GOOD, "Origin": WEB_ORIGIN})

    assert response.status == 404
    assert actual.header("access-control-allow-origin") is None


# --- the function's response ---------------------------------------------------------------------


def answer_with(result: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda event: result


def test_response_object_is_mapped_to_http(make_gateway: Build) -> None:
    result = {
        "statusCode": 201,
        "headers": {"Content-Type": "application/json", "X-Count": 3},
        "cookies": ["a=1; Secure"],
        "body": '{"ok":true}',
    }
    response = make_gateway(chat=answer_with(result)).request("GET", "/v1/sessions", GOOD)

    assert response.status == 201
    assert response.header("Content-Type") == "application/json"
    assert response.header("X-Count") == "3"
    assert response.header("set-cookie") == "a=1; Secure"
    assert response.body == b'{"ok":true}'


def test_base64_body_is_decoded(make_gateway: Build) -> None:
    result = {"statusCode": 200, "body": base64.b64encode(b"\x00\x01").decode(), "isBase64Encoded": True}

    response = make_gateway(chat=answer_with(result)).request("GET", "/v1/sessions", GOOD)

    assert response.body == b"\x00\x01"


def test_204_without_body_has_no_content_type(make_gateway: Build) -> None:
    response = make_gateway(chat=answer_with({"statusCode": 204})).request("GET", "/v1/sessions", GOOD)

    assert response.status == 204
    assert response.body == b""
    assert response.header("content-type") is None


@pytest.mark.parametrize(
    ("result", "body"),
    [({"message": "hi"}, b'{"message": "hi"}'), ("Hello", b"Hello"), ([1, 2], b"[1, 2]")],
)
def test_result_without_status_code_is_200_json(make_gateway: Build, result: Any, body: bytes) -> None:
    response = make_gateway(chat=answer_with(result)).request("GET", "/v1/sessions", GOOD)

    assert response.status == 200
    assert response.header("content-type") == "application/json"
    assert response.body == body


@pytest.mark.parametrize(
    "result",
    [
        {"statusCode": 99},
        {"statusCode": "teapot"},
        {"statusCode": 200, "body": {"not": "a string"}},
        {"statusCode": 200, "headers": ["x"]},
        {"statusCode": 200, "body": "%%%", "isBase64Encoded": True},
        {"statusCode": 200, "headers": {"x": {"nested": 1}}},
    ],
)
def test_invalid_response_object_is_500(make_gateway: Build, result: Any) -> None:
    response = make_gateway(chat=answer_with(result)).request("GET", "/v1/sessions", GOOD)

    assert response.status == 500
    assert body_of(response) == {"message": "Internal Server Error"}


# --- set-up checks -------------------------------------------------------------------------------


def test_gateway_refuses_a_template_whose_functions_are_not_loaded(make_gateway: Build) -> None:
    api = make_gateway().gateway.api

    with pytest.raises(TemplateError, match="no function loaded for AuthorizerFunction"):
        Gateway(api, {"ChatFunction": make_gateway().chat}, ApiIdentity(REGION, "123456789012"))


def test_too_large_is_413_with_api_gateways_message(make_gateway: Build) -> None:
    from chatbot_local.events import HttpRequest

    kit = make_gateway()

    response = kit.gateway.too_large(HttpRequest("POST", "/v1/sessions", header_list=(("Origin", WEB_ORIGIN),)))

    assert response.status == 413
    assert body_of(response) == {"message": "Request Entity Too Large"}
    assert response.header("access-control-allow-origin") == WEB_ORIGIN
