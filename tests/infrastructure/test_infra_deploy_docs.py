"""docs/deploy.md: the deployer's IAM policy is ready to use and covers every service the stack creates."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "deploy.md"
# CloudFormation resource namespace -> IAM service prefix (where the two differ)
SERVICE_PREFIX = {"ApiGatewayV2": "apigateway", "Cognito": "cognito-idp", "Events": "events"}
EVERY_OPTION = {
    "CreateCognitoUserPool": "true",
    "CognitoCallbackUrls": "https://app.example.com/callback",
    "AlarmEmail": "ops@example.com",
    "AllowedOrigins": "https://app.example.com",
    "ReservedConcurrency": "5",
    "EdgeProtection": "waf",
    "EdgeWebAclArn": "arn:aws:wafv2:us-east-1:123456789012:global/webacl/edge/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    "DomainName": "chat-api.example.com",
    "CertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    "NetworkMode": "vpc",
    "DynamoDbPrefixListId": "pl-6da54004",
    "EnableNatGateway": "true",
    "EnableAuditTrail": "true",
    "AuditBreakGlassRoleArn": "arn:aws:iam::123456789012:role/audit-break-glass",
    "ConfigRecorderEnabled": "true",
    "LogDestinationArn": "arn:aws:logs:eu-west-1:123456789012:destination:siem",
}


@pytest.fixture(scope="module")
def policy() -> dict[str, Any]:
    (block,) = re.findall(r"## The deployer's permissions.*?```json\n(.*?)\n```", PAGE.read_text(), re.DOTALL)
    document: dict[str, Any] = json.loads(block)
    return document


def _actions(policy: dict[str, Any]) -> list[str]:
    return [
        action
        for statement in policy["Statement"]
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    ]


def test_the_policy_is_valid_json_with_no_wildcard_action(policy: dict[str, Any]) -> None:
    assert policy["Version"] == "2012-10-17"
    assert all(statement["Effect"] == "Allow" for statement in policy["Statement"])
    assert all(not action.endswith("*") for action in _actions(policy))


def test_the_policy_covers_every_service_the_stack_creates(
    policy: dict[str, Any], translate: Callable[..., dict[str, Any]]
) -> None:
    services = {action.split(":")[0] for action in _actions(policy)}
    for resource in translate(**EVERY_OPTION)["Resources"].values():
        namespace = resource["Type"].split("::")[1]
        prefix = SERVICE_PREFIX.get(namespace, namespace.lower())
        assert prefix in services, resource["Type"]


def test_the_policy_grants_the_key_uses_that_deploys_most_often_miss(policy: dict[str, Any]) -> None:
    by_sid = {statement["Sid"]: statement for statement in policy["Statement"]}
    grants = by_sid["KeyGrantsForLambdaEnvironmentAndTable"]
    assert "kms:CreateGrant" in grants["Action"]
    assert grants["Condition"]["StringLike"]["kms:ViaService"] == ["lambda.*.amazonaws.com", "dynamodb.*.amazonaws.com"]
    data_keys = by_sid["DataKeysForGeneratedSecrets"]
    assert "kms:GenerateDataKey" in data_keys["Action"]
    assert data_keys["Condition"]["StringLike"]["kms:ViaService"] == "secretsmanager.*.amazonaws.com"
    assert by_sid["PassFunctionRolesToLambdaOnly"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}
    }


def test_the_policy_allows_the_vended_access_log_group(policy: dict[str, Any], stack: Any) -> None:
    name = stack.props("ApiAccessLogGroup")["LogGroupName"]["Fn::Sub"].replace("${AWS::StackName}", "chatbot-prod")
    by_sid = {statement["Sid"]: statement for statement in policy["Statement"]}
    patterns = by_sid["LogGroups"]["Resource"]
    arn = f"arn:aws:logs:eu-west-1:123456789012:log-group:{name}"
    assert any(re.fullmatch(pattern.replace("*", ".*"), arn) for pattern in patterns)


def test_the_policy_lets_the_deployer_create_and_version_the_guardrail(policy: dict[str, Any]) -> None:
    # Moderation=guardrail (the default) creates ChatGuardrail, encrypted with the stack key, and publishes
    # ChatGuardrailVersion; Bedrock needs a grant on the key to encrypt it.
    by_sid = {statement["Sid"]: statement for statement in policy["Statement"]}
    guardrail = by_sid["ModerationGuardrail"]
    assert {"bedrock:CreateGuardrail", "bedrock:UpdateGuardrail", "bedrock:DeleteGuardrail"} <= set(guardrail["Action"])
    assert "bedrock:CreateGuardrailVersion" in guardrail["Action"]
    assert guardrail["Resource"] == "arn:aws:bedrock:*:*:guardrail/*"
    key = by_sid["GuardrailEncryptedWithTheStackKey"]
    assert {"kms:CreateGrant", "kms:GenerateDataKey", "kms:Decrypt"} == set(key["Action"])
    assert key["Condition"]["StringLike"]["kms:ViaService"] == "bedrock.*.amazonaws.com"
