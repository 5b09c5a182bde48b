"""The streaming WebSocket API (docs/streaming.md): routes, the $connect authorizer and its identity source,
a stage whose access log holds no query string, one role per function with exactly the grants each needs
(ManageConnections on this API's connections only), and caps that keep a done frame in one 32 KB frame."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest

STREAM_FUNCTIONS = ("StreamAuthorizerFunction", "StreamFunction", "StreamWorkerFunction")
WEBSOCKET_FRAME_BYTES = 32 * 1024
CONNECTIONS = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${StreamApi}/v1/%s/@connections/*"
TABLE_ARN = {"Fn::GetAtt": ["ChatTable", "Arn"]}


def _sub(value: Any) -> str:
    return str(value["Fn::Sub"]) if isinstance(value, dict) and "Fn::Sub" in value else str(value)


# ------------------------------------------------------------------ the API, its routes and authorizer


def test_the_stream_api_is_a_websocket_api_routed_on_the_action_field(stack) -> None:
    api = stack.props("StreamApi")
    assert api["ProtocolType"] == "WEBSOCKET"
    assert api["RouteSelectionExpression"] == "$request.body.action"


def test_the_stream_api_has_exactly_its_four_routes_all_on_the_stream_function(stack) -> None:
    routes = stack.websocket_routes()
    assert set(routes) == {"$connect", "$disconnect", "sendMessage", "$default"}
    for route_key, route in routes.items():
        assert route["Target"] == {"Fn::Sub": "integrations/${StreamIntegration}"}, route_key
    integration = stack.props("StreamIntegration")
    assert integration["IntegrationType"] == "AWS_PROXY"
    assert "${StreamFunction.Arn}" in _sub(integration["IntegrationUri"])


def test_connect_is_authorized_by_the_stream_ticket_authorizer(stack) -> None:
    connect = stack.websocket_routes()["$connect"]
    assert connect["AuthorizationType"] == "CUSTOM"
    assert connect["AuthorizerId"] == {"Ref": "StreamAuthorizer"}
    others = [route for key, route in stack.websocket_routes().items() if key != "$connect"]
    assert all(route["AuthorizationType"] == "NONE" and "AuthorizerId" not in route for route in others)


def test_the_authorizer_takes_the_ticket_from_the_query_string(stack) -> None:
    authorizer = stack.props("StreamAuthorizer")
    assert authorizer["AuthorizerType"] == "REQUEST"
    assert authorizer["IdentitySource"] == ["route.request.querystring.ticket"]
    assert "${StreamAuthorizerFunction.Arn}" in _sub(authorizer["AuthorizerUri"])


def test_api_gateway_may_invoke_the_authorizer_and_the_stream_function_of_this_api_only(stack) -> None:
    permissions = {
        permission["Properties"]["FunctionName"]["Ref"]: permission["Properties"]
        for permission in stack.of_type("AWS::Lambda::Permission").values()
        if "${StreamApi}" in _sub(permission["Properties"].get("SourceArn", ""))
    }
    assert set(permissions) == {"StreamAuthorizerFunction", "StreamFunction"}
    for permission in permissions.values():
        assert permission["Principal"] == "apigateway.amazonaws.com"
        assert permission["SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert _sub(permissions["StreamAuthorizerFunction"]["SourceArn"]).endswith("/authorizers/${StreamAuthorizer}")
    # The worker is invoked by the stream function's role, never by API Gateway.
    workers = [p for p in stack.of_type("AWS::Lambda::Permission").values()
               if p["Properties"]["FunctionName"] == {"Ref": "StreamWorkerFunction"}]  # fmt: skip
    assert workers == []


# ------------------------------------------------------------------ stage: logging and throttling


def test_the_stage_is_v1_with_route_throttling_from_the_parameters(stack) -> None:
    stage = stack.props("StreamStage")
    assert stage["StageName"] == "v1"
    assert stage["DefaultRouteSettings"]["ThrottlingBurstLimit"] == {"Ref": "ApiThrottlingBurstLimit"}
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert set(stage["RouteSettings"]) == {"sendMessage"}


def test_no_execution_log_or_data_trace_holds_frames(stack) -> None:
    stage = stack.props("StreamStage")
    for settings in (stage["DefaultRouteSettings"], *stage["RouteSettings"].values()):
        assert settings["DataTraceEnabled"] is False
        assert settings["LoggingLevel"] == "OFF"


def test_the_access_log_is_an_encrypted_retained_vended_log_group(stack) -> None:
    destination = stack.props("StreamStage")["AccessLogSettings"]["DestinationArn"]
    assert destination == {"Fn::GetAtt": ["StreamAccessLogGroup", "Arn"]}
    group = stack.props("StreamAccessLogGroup")
    assert _sub(group["LogGroupName"]).startswith("/aws/vendedlogs/")
    assert group["KmsKeyId"] == {"Fn::GetAtt": ["ChatbotKey", "Arn"]}
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_the_access_log_format_has_no_query_string_token_ip_or_identity(stack) -> None:
    log_format = stack.props("StreamStage")["AccessLogSettings"]["Format"]
    # $context.error.messageString is already quoted; the rest are filled into quoted strings.
    fields = json.loads(log_format.replace("$context.error.messageString", '"x"'))
    variables = set(re.findall(r"\$context\.[A-Za-z.]+", log_format))
    names = ("requestId", "requestTime", "eventType", "routeKey", "status", "connectionId", "integrationLatency",
             "authorizer.error", "error.messageString")  # fmt: skip
    assert variables == {f"$context.{name}" for name in names}
    lowered = log_format.lower()
    for forbidden in ("query", "ticket", "identity", "sourceip", "header", "$request", "$input", "principal"):
        assert forbidden not in lowered, forbidden
    assert len(fields) == len(variables)


def test_the_key_lets_cloudwatch_logs_encrypt_the_stream_log_groups(stack) -> None:
    statement = next(
        s for s in stack.props("ChatbotKey")["KeyPolicy"]["Statement"]
        if s.get("Sid") == "AllowCloudWatchLogsForThisStacksLogGroups"
    )  # fmt: skip
    arns = {_sub(arn) for arn in statement["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]}
    for group in ("StreamAuthorizerLogGroup", "StreamLogGroup", "StreamWorkerLogGroup", "StreamAccessLogGroup"):
        name = _sub(stack.props(group)["LogGroupName"])
        assert any(arn.endswith(":log-group:" + name) for arn in arns), group


# ------------------------------------------------------------------ roles: least privilege per function


def test_each_stream_function_has_its_own_role(stack) -> None:
    roles = {stack.function_role(function_id) for function_id in STREAM_FUNCTIONS}
    assert roles == {"StreamAuthorizerFunctionRole", "StreamFunctionRole", "StreamWorkerFunctionRole"}


def test_the_authorizer_may_only_delete_ticket_items(stack) -> None:
    table_statements = [s for s in stack.function_statements("StreamAuthorizerFunction")
                        if any(a.startswith("dynamodb:") for a in s.actions)]  # fmt: skip
    (statement,) = table_statements
    assert statement.actions == ["dynamodb:DeleteItem"]
    assert statement.resources == [TABLE_ARN]
    assert statement.body["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["TICKET#*"]}}


def test_the_authorizer_reads_no_secret_and_invokes_nothing(stack) -> None:
    actions = {a for s in stack.function_statements("StreamAuthorizerFunction") for a in s.actions}
    assert not {a for a in actions if a.startswith(("secretsmanager:", "lambda:", "execute-api:", "bedrock:"))}
    assert {a for a in actions if a.startswith("kms:")} == {"kms:Decrypt", "kms:DescribeKey"}


@pytest.mark.parametrize("function_id", ["StreamFunction", "StreamWorkerFunction"])
def test_manage_connections_is_scoped_to_this_apis_post_and_delete(stack, function_id: str) -> None:
    resources = stack.allowed(function_id, "execute-api:ManageConnections")
    assert sorted(_sub(resource) for resource in resources) == [CONNECTIONS % "DELETE", CONNECTIONS % "POST"]


def test_no_other_function_manages_connections(stack) -> None:
    for function_id in ("AuthorizerFunction", "ChatFunction", "SessionCleanupFunction", "StreamAuthorizerFunction"):
        assert stack.allowed(function_id, "execute-api:ManageConnections") == [], function_id


def test_only_the_stream_function_invokes_and_only_the_worker(stack) -> None:
    worker = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-stream-worker"
    assert [_sub(r) for r in stack.allowed("StreamFunction", "lambda:InvokeFunction")] == [worker]
    assert _sub(stack.props("StreamWorkerFunction")["FunctionName"]) == "${AWS::StackName}-stream-worker"
    assert stack.function_env("StreamFunction")["STREAM_WORKER_FUNCTION"] == {
        "Fn::Sub": "${AWS::StackName}-stream-worker"
    }
    # (the cleanup invokes only itself: tests/infrastructure/test_infra_functions.py)
    for function_id in ("AuthorizerFunction", "ChatFunction", "StreamAuthorizerFunction", "StreamWorkerFunction"):
        assert stack.allowed(function_id, "lambda:InvokeFunction") == [], function_id


@pytest.mark.parametrize(
    "overrides",
    [{}, {"ModelId": "anthropic.claude-3-haiku-20240307-v1:0"}, {"ModelId": "eu.anthropic.claude-haiku-5-5"}],
    ids=["default-profile", "foundation-model", "named-profile"],
)
def test_the_worker_streams_the_chat_functions_model_and_only_the_worker_streams(
    make_stack: Callable, overrides
) -> None:
    stack = make_stack(**overrides)
    chat = stack.allowed("ChatFunction", "bedrock:InvokeModel")
    streamed = stack.allowed("StreamWorkerFunction", "bedrock:InvokeModelWithResponseStream")
    assert chat
    assert streamed == chat
    for function_id in ("ChatFunction", "StreamFunction", "StreamAuthorizerFunction"):
        assert stack.allowed(function_id, "bedrock:InvokeModelWithResponseStream") == [], function_id


def test_the_worker_shares_the_guardrail_and_model_api_key_grants(make_stack: Callable) -> None:
    guarded = make_stack(BedrockGuardrailId="abc123def456")
    assert guarded.allowed("StreamWorkerFunction", "bedrock:ApplyGuardrail") == guarded.allowed(
        "ChatFunction", "bedrock:ApplyGuardrail"
    )
    openai = make_stack(ModelProvider="openai", OpenAiBaseUrl="https://llm.example.com/v1", ModelId="gpt-4o-mini")
    assert openai.allowed("StreamWorkerFunction", "secretsmanager:GetSecretValue") == [
        {"Ref": "UserIdPepperSecret"},
        {"Ref": "ModelApiKeySecret"},
    ]


def test_the_stream_functions_never_read_the_session_token_key(stack) -> None:
    for function_id in STREAM_FUNCTIONS:
        assert {"Ref": "SessionTokenSecret"} not in stack.allowed(function_id, "secretsmanager:GetSecretValue")


# ------------------------------------------------------------------ environment and outputs


def test_the_chat_function_points_tickets_at_the_stage(stack) -> None:
    url = "wss://${StreamApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/v1"
    assert stack.function_env("ChatFunction")["STREAM_URL"] == {"Fn::Sub": url}
    assert stack.outputs["StreamUrl"]["Value"] == {"Fn::Sub": url}


@pytest.mark.parametrize("function_id", ["StreamFunction", "StreamWorkerFunction"])
def test_the_stream_functions_call_back_on_the_stage(stack, function_id: str) -> None:
    url = "https://${StreamApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/v1"
    assert stack.function_env(function_id)["STREAM_CALLBACK_URL"] == {"Fn::Sub": url}


def test_the_stream_route_integration_fits_api_gateways_29_seconds(stack) -> None:
    assert stack.props("StreamFunction")["Timeout"] <= 29


# ------------------------------------------------------------------ the account's CloudWatch role


def test_the_api_gateway_account_role_is_opt_in(raw, stack, make_stack: Callable) -> None:
    assert raw["Parameters"]["CreateApiGatewayAccountRole"]["Default"] == "false"
    assert not stack.of_type("AWS::ApiGateway::Account")
    opted = make_stack(CreateApiGatewayAccountRole="true")
    (account,) = opted.of_type("AWS::ApiGateway::Account").values()
    assert account["Properties"]["CloudWatchRoleArn"] == {"Fn::GetAtt": ["ApiGatewayCloudWatchRole", "Arn"]}
    (trust,) = opted.props("ApiGatewayCloudWatchRole")["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "apigateway.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}


# ------------------------------------------------------------------ a done frame fits one WebSocket frame


def test_the_parameter_caps_keep_a_done_frame_within_32_kb(raw) -> None:
    # Worst case (docs/streaming.md "Frame sizes"): the user's content at 4 bytes a character (UTF-8; controls
    # are refused, masking only shortens in bytes), the answer at 8 bytes a token, 512 bytes of envelope.
    max_chars = raw["Parameters"]["MaxMessageChars"]["MaxValue"]
    max_tokens = raw["Parameters"]["ModelMaxTokens"]["MaxValue"]
    assert 512 + 4 * max_chars + 8 * max_tokens <= WEBSOCKET_FRAME_BYTES
    for name in ("MaxMessageChars", "ModelMaxTokens"):
        assert raw["Parameters"][name]["Default"] <= raw["Parameters"][name]["MaxValue"]


def test_reserved_concurrency_caps_the_stream_function_and_worker_but_not_the_authorizer(make_stack: Callable) -> None:
    capped = make_stack(ReservedConcurrency="20")
    for function_id in ("StreamFunction", "StreamWorkerFunction"):
        assert capped.props(function_id)["ReservedConcurrentExecutions"] == {"Ref": "ReservedConcurrency"}
    assert "ReservedConcurrentExecutions" not in capped.props("StreamAuthorizerFunction")
