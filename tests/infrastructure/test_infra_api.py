"""HTTP API: routes, authorizer, CORS, throttling and access logs (docs/contract.md sections 2, 3, 6)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

ANONYMOUS_ROUTE = "POST /v1/anonymous-sessions"
# docs/contract.md section 3 (binding)
DESIGN_ROUTES = {
    "POST /v1/anonymous-sessions",
    "POST /v1/sessions",
    "GET /v1/sessions",
    "GET /v1/sessions/{session_id}",
    "DELETE /v1/sessions/{session_id}",
    "POST /v1/sessions/{session_id}/messages",
    "GET /v1/sessions/{session_id}/messages",
    "DELETE /v1/admin/users/{subject}",
    # section 8
    "POST /v1/sessions/{session_id}/stream-tickets",
    "GET /v1/me/export",
    "DELETE /v1/me",
}


def _chat_function_integration(operation: dict) -> str:
    uri = operation["x-amazon-apigateway-integration"]["uri"]["Fn::Sub"]
    return str(uri)


# ------------------------------------------------------------------ routes


def test_api_serves_exactly_the_design_routes(stack) -> None:
    assert set(stack.routes()) == DESIGN_ROUTES


def test_every_route_invokes_the_chat_function_with_payload_2(stack) -> None:
    for route, operation in stack.routes().items():
        integration = operation["x-amazon-apigateway-integration"]
        assert integration["type"] == "aws_proxy", route
        assert integration["payloadFormatVersion"] == "2.0", route
        assert "${ChatFunction.Arn}" in _chat_function_integration(operation), route


def test_every_route_uses_the_lambda_authorizer_except_the_anonymous_route(stack) -> None:
    # Given the routes API Gateway will deploy
    for route, operation in stack.routes().items():
        # Then each one requires the Lambda authorizer, except the anonymous-session route
        expected: list[dict[str, list[str]]] = (
            [{"NONE": []}] if route == ANONYMOUS_ROUTE else [{"LambdaAuthorizer": []}]
        )
        assert operation.get("security") == expected, route


def test_no_catch_all_route(stack) -> None:
    # A "$default"/ANY/greedy route would reach the function without a declared authorization.
    for route in stack.routes():
        method, path = route.split(" ", 1)
        assert method not in {"X-AMAZON-APIGATEWAY-ANY-METHOD", "ANY"}, route
        assert "+}" not in path, route
        assert path != "$default", route


# ------------------------------------------------------------------ authorizer


def test_authorizer_is_a_request_authorizer_with_simple_responses(stack) -> None:
    authorizer = stack.authorizer()
    assert authorizer["type"] == "request"
    assert authorizer["authorizerPayloadFormatVersion"] == "2.0"
    assert authorizer["enableSimpleResponses"] is True
    assert "${__FunctionArn__}" in authorizer["authorizerUri"]["Fn::Sub"][0]
    assert authorizer["authorizerUri"]["Fn::Sub"][1] == {
        "__FunctionArn__": {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]}
    }


def test_authorizer_identity_sources_include_the_authorization_header_and_the_route_key(stack) -> None:
    # The route key in the cache key keeps a cached decision from crossing routes (rule 4).
    identity = stack.authorizer()["identitySource"]
    assert "$request.header.Authorization" in identity
    assert "$context.routeKey" in identity


def test_authorizer_cache_ttl_follows_its_parameter(stack) -> None:
    assert stack.authorizer()["authorizerResultTtlInSeconds"] == {"Ref": "AuthorizerCacheTtlSeconds"}
    assert stack.raw["Parameters"]["AuthorizerCacheTtlSeconds"]["Default"] == 300


def test_api_gateway_may_invoke_the_authorizer_of_this_api_only(stack) -> None:
    permissions = [
        res["Properties"]
        for res in stack.of_type("AWS::Lambda::Permission").values()
        if res["Properties"]["FunctionName"] == {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]}
    ]
    assert len(permissions) == 1
    (permission,) = permissions
    assert permission["Principal"] == "apigateway.amazonaws.com"
    source, variables = permission["SourceArn"]["Fn::Sub"]
    assert source.endswith(":${__ApiId__}/authorizers/*")
    assert variables == {"__ApiId__": {"Ref": "ChatApi"}}


def test_chat_function_permissions_are_scoped_to_this_api(stack) -> None:
    for permission in stack.of_type("AWS::Lambda::Permission").values():
        properties = permission["Properties"]
        if properties["FunctionName"] == {"Ref": "ChatFunction"}:
            assert properties["Principal"] == "apigateway.amazonaws.com"
            assert "__ApiId__" in json.dumps(properties["SourceArn"]), properties


# ------------------------------------------------------------------ CORS


def test_no_cors_configuration_when_allowed_origins_is_empty(stack) -> None:
    assert stack.params["AllowedOrigins"] == ""
    assert "x-amazon-apigateway-cors" not in stack.api_body()
    assert "CorsConfiguration" not in stack.of_type("AWS::ApiGatewayV2::Api")["ChatApi"]["Properties"]


def test_cors_allows_exactly_the_configured_origins(make_stack: Callable) -> None:
    stack = make_stack(AllowedOrigins="https://app.example.com,https://admin.example.com")
    cors = stack.api_body()["x-amazon-apigateway-cors"]
    assert cors["allowOrigins"] == ["https://app.example.com", "https://admin.example.com"]
    assert sorted(cors["allowMethods"]) == ["DELETE", "GET", "OPTIONS", "POST"]
    assert sorted(header.lower() for header in cors["allowHeaders"]) == ["authorization", "content-type"]
    assert cors.get("allowCredentials") in (None, False)
    assert isinstance(cors["maxAge"], int)
    assert cors["maxAge"] > 0


@pytest.mark.parametrize(
    "origins", ["*", "https://*.example.com", "https://a.example.com,*", "https://a.example.com/app"]
)
def test_allowed_origins_parameter_refuses_wildcards_and_paths(raw, origins: str) -> None:
    pattern = raw["Parameters"]["AllowedOrigins"]["AllowedPattern"]
    assert re.fullmatch(pattern, origins) is None


@pytest.mark.parametrize(
    "origins",
    [
        "http://app.example.com",
        "https://app.example.com,http://app.example.com",
        "http://localhost.example.com",
        "http://127.0.0.1.example.com",
        "http://10.0.0.1",
        "http://[::2]",
        "ftp://app.example.com",
    ],
)
def test_allowed_origins_parameter_refuses_plain_http_except_on_loopback(raw, origins: str) -> None:
    pattern = raw["Parameters"]["AllowedOrigins"]["AllowedPattern"]
    assert re.fullmatch(pattern, origins) is None


@pytest.mark.parametrize(
    "origins",
    [
        "",
        "https://app.example.com",
        "https://app.example.com:8443,https://admin.example.com",
        "http://localhost:8080",
        "http://127.0.0.1:5173,https://app.example.com",
        "http://[::1]:3000",
        "http://localhost",
    ],
)
def test_allowed_origins_parameter_accepts_https_and_loopback_http(raw, origins: str) -> None:
    pattern = raw["Parameters"]["AllowedOrigins"]["AllowedPattern"]
    assert re.fullmatch(pattern, origins) is not None


# ------------------------------------------------------------------ stage


def test_default_route_throttling_comes_from_parameters(stack) -> None:
    assert stack.stage()["DefaultRouteSettings"] == {
        "ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"},
        "ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"},
    }


def test_access_logs_go_to_the_encrypted_access_log_group(stack) -> None:
    settings = stack.stage()["AccessLogSettings"]
    assert settings["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert stack.props("ApiAccessLogGroup")["KmsKeyId"] == {"Fn::GetAtt": ["ChatbotKey", "Arn"]}


def test_the_access_log_group_is_a_vended_logs_group(stack) -> None:
    # Outside /aws/vendedlogs/, delivery adds to the account's CloudWatch Logs resource policy (5,120
    # characters in all): in a busy account the stage then fails to create.
    name = stack.props("ApiAccessLogGroup")["LogGroupName"]["Fn::Sub"]
    assert name.startswith("/aws/vendedlogs/"), name


def test_access_log_format_is_json_with_the_required_fields(stack) -> None:
    record = json.loads(stack.stage()["AccessLogSettings"]["Format"])
    for field, variable in {
        "requestId": "$context.requestId",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "responseLatency": "$context.responseLatency",
        "integrationLatency": "$context.integrationLatency",
        "authorizerError": "$context.authorizer.error",
        "protocol": "$context.protocol",
    }.items():
        assert record.get(field) == variable, field


def test_access_log_format_keeps_no_client_ip(stack) -> None:
    # An IP is personal data, and the access-log format cannot hash one (docs/data-protection.md)
    format_text = stack.stage()["AccessLogSettings"]["Format"]
    assert "sourceIp" not in format_text
    assert not any(value.startswith("$context.identity.") for value in json.loads(format_text).values())


def test_access_log_format_has_no_header_token_or_query_values(stack) -> None:
    # Given the access log record template
    record = json.loads(stack.stage()["AccessLogSettings"]["Format"])
    # Then every value is one plain context variable, and none can carry a credential or an input
    forbidden = re.compile(
        r"header|authorization|token|querystring|query|body|cookie|path|user[-_]?agent|claims|\$request\.", re.I
    )
    for field, value in record.items():
        assert re.fullmatch(r"\$context\.[A-Za-z.]+", value), (field, value)
        assert not forbidden.search(value), (field, value)
