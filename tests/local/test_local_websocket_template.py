"""What the local WebSocket API reads from a template, and how it reads the authorizer's policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from support.websocket_api import REGION, WEBSOCKET_TEMPLATE

from chatbot_local.cloudformation import TemplateError
from chatbot_local.template import Template
from chatbot_local.websocket_events import read_policy
from chatbot_local.websocket_template import IdentitySource, websocket_api

METHOD_ARN = "arn:aws:execute-api:eu-west-1:123456789012:local/v1/$connect"


def fixture_api(text_changes: dict[str, str] | None = None, tmp_path: Path | None = None) -> Any:
    text = WEBSOCKET_TEMPLATE.read_text()
    for old, new in (text_changes or {}).items():
        assert old in text
        text = text.replace(old, new)
    path = WEBSOCKET_TEMPLATE
    if tmp_path is not None:
        path = tmp_path / "template.yaml"
        path.write_text(text)
    template = Template.load(path)
    return websocket_api(template, template.resolver({}, REGION))


def test_routes_stage_authorizer_and_functions_come_from_the_template() -> None:
    api = fixture_api()

    assert api.logical_id == "StreamApi"
    assert api.stage == "v1"
    assert api.selection_path == ("action",)
    assert set(api.routes) == {"$connect", "$disconnect", "sendMessage", "work", "echo", "$default"}
    assert {route.function_id for route in api.routes.values()} == {"StreamFunction"}
    connect = api.routes["$connect"].authorizer
    assert connect is not None
    assert connect.function_id == "StreamAuthorizerFunction"
    assert connect.identity_sources == (IdentitySource("querystring", "ticket"),)
    assert api.routes["echo"].two_way
    assert not api.routes["sendMessage"].two_way


def test_a_template_without_a_websocket_api_has_none(fixture_template: Template) -> None:
    assert websocket_api(fixture_template, fixture_template.resolver({}, REGION)) is None


def test_a_websocket_api_switched_off_by_its_condition_is_not_served(tmp_path: Path) -> None:
    changes = {
        "Resources:\n  StreamApi:\n    Type: AWS::ApiGatewayV2::Api\n": (
            "Conditions:\n  Streaming: !Equals [yes, no]\n\n"
            "Resources:\n  StreamApi:\n    Type: AWS::ApiGatewayV2::Api\n    Condition: Streaming\n"
        )
    }

    assert fixture_api(changes, tmp_path) is None


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("$request.body.action", "$request.header.action", "route selection"),
        ("route.request.querystring.ticket", "$context.identity.sourceIp", "identity source"),
        ("IntegrationType: AWS_PROXY", "IntegrationType: HTTP_PROXY", "AWS_PROXY"),
        ("      RouteKey: sendMessage\n", "      RouteKey: sendMessage\n      AuthorizationType: AWS_IAM\n", "CUSTOM"),
    ],
)
def test_what_the_local_api_cannot_emulate_is_a_template_error(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    with pytest.raises(TemplateError, match=message):
        fixture_api({old: new}, tmp_path)


def policy(effect: str, resource: str = METHOD_ARN, action: str = "execute-api:Invoke") -> dict[str, Any]:
    return {"Effect": effect, "Action": action, "Resource": resource}


def answer(*statements: dict[str, Any], context: Any = None) -> dict[str, Any]:
    document = {"Version": "2012-10-17", "Statement": list(statements)}
    return {"principalId": "p", "policyDocument": document, "context": context or {"n": 1, "b": True}}


def test_allow_on_the_method_arn_admits_with_the_context_as_strings() -> None:
    decision = read_policy(answer(policy("Allow")), METHOD_ARN, 7)

    assert decision.allowed
    assert decision.context == {"n": "1", "b": "true", "principalId": "p", "integrationLatency": 7}


@pytest.mark.parametrize(
    "statements",
    [
        [policy("Deny")],
        [policy("Allow"), policy("Deny", "arn:aws:execute-api:*")],
        [policy("Allow", METHOD_ARN.replace("v1", "v2"))],
        [policy("Allow", action="execute-api:ManageConnections")],
        [],
    ],
)
def test_a_deny_or_no_matching_allow_is_403(statements: list[dict[str, Any]]) -> None:
    assert read_policy(answer(*statements), METHOD_ARN, 0).error == (403, "Forbidden")


def test_wildcards_match_as_in_iam() -> None:
    assert read_policy(answer(policy("Allow", "arn:aws:execute-api:eu-west-1:*:local/*")), METHOD_ARN, 0).allowed
    assert read_policy(answer(policy("Allow", action="execute-api:*")), METHOD_ARN, 0).allowed


@pytest.mark.parametrize(
    "result",
    [
        None,
        {"policyDocument": {"Statement": []}},
        {"principalId": "p", "policyDocument": {}},
        answer(policy("Allow"), context={"nested": {"a": 1}}),
    ],
)
def test_a_malformed_answer_is_500(result: Any) -> None:
    assert read_policy(result, METHOD_ARN, 0).error == (500, "Internal Server Error")
