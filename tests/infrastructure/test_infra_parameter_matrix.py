"""Every parameter combination either deploys a complete stack or is refused before anything is created.

A line of ``VALID`` is a combination that must be accepted (each parameter's constraints, every Rule) and
translate into a stack with no dangling reference. A line of ``BROKEN`` is a combination that would deploy a
stack that fails its users, and names what refuses it: a Rule (``rule:<name>``) or a parameter's own
constraint (``parameter:<name>``). A parameter added later (another option, another mode) is covered by
adding lines here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from support.cloudformation import dangling_references, parameter_values, parameter_violations, refusing_rules

REGION = "eu-west-1"  # the Region the translation runs for (conftest)


@dataclass(frozen=True)
class Combination:
    name: str
    values: dict[str, str]
    refused_by: str = ""
    region: str = REGION
    marks: tuple[Any, ...] = field(default=())

    def param(self) -> Any:
        return pytest.param(self, id=self.name, marks=self.marks)


def valid(name: str, region: str = REGION, **values: str) -> Combination:
    return Combination(name, values, region=region)


def broken(name: str, refused_by: str, region: str = REGION, **values: str) -> Combination:
    return Combination(name, values, refused_by=refused_by, region=region)


ISSUER = {"OidcIssuer": "https://issuer.example.com/tenant", "OidcAudience": "app-client-1"}
POOL = {"CreateCognitoUserPool": "true", "CognitoCallbackUrls": "https://app.example.com/callback"}
OPENAI = {"ModelProvider": "openai", "OpenAiBaseUrl": "https://llm.example.com/v1", "ModelId": "gpt-4o-mini"}
EDGE = {
    "EdgeProtection": "waf",
    "EdgeWebAclArn": "arn:aws:wafv2:us-east-1:123456789012:global/webacl/edge/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    "DomainName": "chat-api.example.com",
    "CertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
}
VPC = {"NetworkMode": "vpc", "DynamoDbPrefixListId": "pl-6da54004"}
API_DOMAIN = {
    "DomainName": "chat-api.example.com",
    "RegionalCertificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
}

VALID = [
    valid("anonymous-only", AllowAnonymous="true"),
    valid("own-issuer", **ISSUER),
    valid("own-issuer-several-audiences-jwks-and-anonymous", **{**ISSUER, "OidcAudience": "a,b"},
          OidcJwksUrl="https://issuer.example.com/keys", AllowAnonymous="true",
          AllowedOrigins="https://app.example.com"),
    valid("cognito-pool", **POOL),
    valid("cognito-pool-plus-named-self-sign-up", **POOL, CognitoLogoutUrls="https://app.example.com/bye",
          CognitoDomainPrefix="my-chatbot", CognitoUserPoolTier="PLUS", CognitoAllowSelfSignUp="true"),
    valid("openai-provider", **ISSUER, **OPENAI),
    valid("echo-provider-reserved-concurrency", **ISSUER, ModelProvider="echo", ReservedConcurrency="5"),
    valid("bedrock-foundation-model", **ISSUER, ModelId="anthropic.claude-sonnet-4-5-20250929-v1:0"),
    valid("bedrock-inference-profile-and-guardrail", **ISSUER, ModelId="eu.anthropic.claude-haiku-5-5",
          BedrockGuardrailId="abc123def456", BedrockGuardrailVersion="3"),
    valid("openai-with-an-existing-guardrail", **ISSUER, **OPENAI, BedrockGuardrailId="abc123def456",
          BedrockGuardrailVersion="3"),
    valid("openai-with-the-created-guardrail", **ISSUER, **OPENAI),
    valid("moderation-off", **ISSUER, Moderation="off"),
    valid("echo-without-moderation", **ISSUER, ModelProvider="echo", Moderation="off"),
    valid("created-guardrail-with-topics-and-words", **ISSUER,
          GuardrailDeniedTopics="investment advice,medical diagnosis,legal advice,politics,crypto",
          GuardrailBlockedWords="foo,bar baz,qux,a,b,c,d,e,f,g"),
    valid("vpc-openai-with-the-created-guardrail", **ISSUER, **VPC, **OPENAI, EnableNatGateway="true"),
    valid("x86-alarms-cron-schedule", **ISSUER, Architecture="x86_64", AlarmEmail="ops@example.com",
          CleanupScheduleExpression="cron(0/15 * * * ? *)", LogRetentionDays="90"),
    valid("token-quotas-budget-and-prices", **ISSUER, TokensPerDay="500000", AnonTokensPerDay="1000",
          DailyTokenBudget="80000000", ModelInputPricePerMillionTokens="0.25",
          ModelOutputPricePerMillionTokens="1.25", DailySpendAlarmUsd="12.5"),
    valid("production-like", **ISSUER, AdminRequireMfa="true", ReservedConcurrency="20", LogRetentionDays="90",
          ApiThrottlingBurstLimit="40", ApiThrottlingRateLimit="20", CleanupScheduleExpression="rate(1 hour)"),
    valid("edge-with-route-throttles", **ISSUER, **EDGE, MessagePostThrottlingBurstLimit="10",
          MessagePostThrottlingRateLimit="5", SessionCreateThrottlingBurstLimit="5",
          SessionCreateThrottlingRateLimit="2"),
    valid("api-custom-domain", **ISSUER, **API_DOMAIN),
    valid("vpc-anonymous-only", AllowAnonymous="true", **VPC),
    valid("vpc-with-nat-and-oidc", **ISSUER, **VPC, EnableNatGateway="true"),
    valid("audit-trail-and-config", **ISSUER, EnableAuditTrail="true", ConfigRecorderEnabled="true",
          AuditBreakGlassRoleArn="arn:aws:iam::123456789012:role/audit-break-glass"),
]  # fmt: skip

BROKEN = [
    # Rules: combinations that deploy, then fail every request
    broken("nobody-can-sign-in", "rule:SomeoneCanSignIn"),
    broken("audience-without-issuer", "rule:SomeoneCanSignIn", AllowAnonymous="true", OidcAudience="client"),
    broken("jwks-without-issuer", "rule:SomeoneCanSignIn", AllowAnonymous="true",
           OidcJwksUrl="https://issuer.example.com/keys"),
    broken("issuer-without-audience", "rule:OidcIssuerNeedsAnAudience", OidcIssuer="https://issuer.example.com"),
    broken("openai-without-base-url", "rule:OpenAiProviderSettings", **ISSUER, ModelProvider="openai",
           ModelId="gpt-4o-mini"),
    broken("openai-without-model", "rule:OpenAiProviderSettings", **ISSUER, ModelProvider="openai",
           OpenAiBaseUrl="https://llm.example.com/v1"),
    broken("base-url-without-openai", "rule:OpenAiBaseUrlNeedsTheOpenAiProvider", **ISSUER,
           OpenAiBaseUrl="https://llm.example.com/v1"),
    broken("moderation-off-with-a-guardrail", "rule:ModerationOffUsesNoGuardrail", **ISSUER, Moderation="off",
           BedrockGuardrailId="abc123def456", BedrockGuardrailVersion="3"),
    broken("moderation-off-with-denied-topics", "rule:ModerationOffUsesNoGuardrail", **ISSUER, Moderation="off",
           GuardrailDeniedTopics="politics"),
    broken("moderation-off-with-blocked-words", "rule:ModerationOffUsesNoGuardrail", **ISSUER, Moderation="off",
           GuardrailBlockedWords="foo"),
    broken("existing-guardrail-without-version", "rule:ExistingGuardrailSettings", **ISSUER,
           BedrockGuardrailId="abc123def456"),
    broken("existing-guardrail-with-topics", "rule:ExistingGuardrailSettings", **ISSUER,
           BedrockGuardrailId="abc123def456", BedrockGuardrailVersion="3", GuardrailDeniedTopics="politics"),
    broken("guardrail-version-without-guardrail", "rule:GuardrailVersionNeedsAGuardrail", **ISSUER,
           BedrockGuardrailVersion="3"),
    broken("cognito-pool-and-own-issuer", "rule:CognitoUserPoolSettings", **POOL, **ISSUER),
    broken("cognito-pool-without-callback", "rule:CognitoUserPoolSettings", CreateCognitoUserPool="true"),
    broken("cognito-settings-without-pool", "rule:CognitoSettingsNeedThePool", **ISSUER,
           CognitoCallbackUrls="https://app.example.com/callback"),
    broken("default-model-in-unmapped-region", "rule:DefaultModelRegion", region="me-central-1", **ISSUER),
    broken("edge-without-web-acl", "rule:EdgeProtectionSettings", **ISSUER, **{**EDGE, "EdgeWebAclArn": ""}),
    broken("edge-without-domain", "rule:EdgeProtectionSettings", **ISSUER, **{**EDGE, "DomainName": ""}),
    broken("edge-with-bodies-waf-cannot-inspect", "rule:EdgeProtectionSettings", **ISSUER, **EDGE,
           MaxBodyBytes="32768"),
    broken("vpc-without-dynamodb-prefix-list", "rule:VpcNetworkSettings", AllowAnonymous="true", NetworkMode="vpc"),
    broken("created-vpc-with-subnet-ids", "rule:CreatedVpcSettings", AllowAnonymous="true", **VPC,
           PrivateSubnetIds="subnet-0123456789abcdef0,subnet-0123456789abcdef1"),
    broken("existing-vpc-without-subnets", "rule:ExistingVpcSettings", AllowAnonymous="true", **VPC,
           VpcId="vpc-0123456789abcdef0"),
    broken("vpc-with-oidc-and-no-nat", "rule:VpcWithoutInternetEgress", **ISSUER, **VPC),
    broken("audit-trail-without-break-glass-role", "rule:AuditTrailSettings", **ISSUER, EnableAuditTrail="true"),
    broken("api-domain-without-certificate", "rule:ApiCustomDomainSettings", **ISSUER,
           DomainName="chat-api.example.com"),
    # Parameter constraints: values CloudFormation or the service would refuse halfway, or that are not filled in
    broken("issuer-placeholder", "parameter:OidcIssuer", OidcIssuer="REPLACE_ME_ISSUER_URL",
           OidcAudience="client"),
    broken("audience-placeholder", "parameter:OidcAudience", OidcIssuer="https://issuer.example.com",
           OidcAudience="REPLACE_ME_APP_CLIENT_ID"),
    broken("issuer-with-query", "parameter:OidcIssuer", **{**ISSUER, "OidcIssuer": "https://i.example.com/?x=1"}),
    broken("issuer-too-long", "parameter:OidcIssuer",
           **{**ISSUER, "OidcIssuer": "https://issuer.example.com/" + "a" * 600}),
    broken("audience-with-empty-item", "parameter:OidcAudience", **{**ISSUER, "OidcAudience": "a,"}),
    broken("audience-with-space", "parameter:OidcAudience", **{**ISSUER, "OidcAudience": "a b"}),
    broken("domain-prefix-with-aws", "parameter:CognitoDomainPrefix", **POOL, CognitoDomainPrefix="my-aws-chat"),
    broken("domain-prefix-with-amazon", "parameter:CognitoDomainPrefix", **POOL, CognitoDomainPrefix="amazonbot"),
    broken("domain-prefix-with-cognito", "parameter:CognitoDomainPrefix", **POOL,
           CognitoDomainPrefix="login-cognito"),
    broken("schedule-free-text", "parameter:CleanupScheduleExpression", **ISSUER,
           CleanupScheduleExpression="every 15 minutes"),
    broken("schedule-plural-for-one", "parameter:CleanupScheduleExpression", **ISSUER,
           CleanupScheduleExpression="rate(1 minutes)"),
    broken("schedule-with-trailing-text", "parameter:CleanupScheduleExpression", **ISSUER,
           CleanupScheduleExpression="rate(5 minutes) rate(1 day)"),
    broken("schedule-cron-five-fields", "parameter:CleanupScheduleExpression", **ISSUER,
           CleanupScheduleExpression="cron(0/15 * * * *)"),
    broken("no-tokens-per-day", "parameter:TokensPerDay", **ISSUER, TokensPerDay="0"),
    broken("no-anonymous-tokens-per-day", "parameter:AnonTokensPerDay", AllowAnonymous="true", AnonTokensPerDay="0"),
    broken("negative-token-budget", "parameter:DailyTokenBudget", **ISSUER, DailyTokenBudget="-1"),
    broken("negative-input-price", "parameter:ModelInputPricePerMillionTokens", **ISSUER,
           ModelInputPricePerMillionTokens="-1"),
    broken("spend-alarm-at-zero", "parameter:DailySpendAlarmUsd", **ISSUER, DailySpendAlarmUsd="0"),
    broken("alarm-email-too-long", "parameter:AlarmEmail", **ISSUER, AlarmEmail="a" * 250 + "@example.com"),
    broken("moderation-unknown-mode", "parameter:Moderation", **ISSUER, Moderation="fake"),
    broken("existing-guardrail-draft", "parameter:BedrockGuardrailVersion", **ISSUER,
           BedrockGuardrailId="abc123def456", BedrockGuardrailVersion="DRAFT"),
    broken("guardrail-arn-instead-of-id", "parameter:BedrockGuardrailId", **ISSUER,
           BedrockGuardrailId="arn:aws:bedrock:eu-west-1:123456789012:guardrail/abc123def456",
           BedrockGuardrailVersion="3"),
    broken("six-denied-topics", "parameter:GuardrailDeniedTopics", **ISSUER, GuardrailDeniedTopics="a,b,c,d,e,f"),
    broken("denied-topic-with-a-forbidden-character", "parameter:GuardrailDeniedTopics", **ISSUER,
           GuardrailDeniedTopics="stocks & bonds"),
    broken("empty-denied-topic", "parameter:GuardrailDeniedTopics", **ISSUER, GuardrailDeniedTopics="a,,b"),
    broken("eleven-blocked-words", "parameter:GuardrailBlockedWords", **ISSUER,
           GuardrailBlockedWords="a,b,c,d,e,f,g,h,i,j,k"),
    broken("blocked-word-after-a-space", "parameter:GuardrailBlockedWords", **ISSUER,
           GuardrailBlockedWords="foo, bar"),
]  # fmt: skip


def _refusals(raw: dict[str, Any], combination: Combination) -> dict[str, Any]:
    values = parameter_values(raw, combination.values, combination.region)
    violations = parameter_violations(raw, values)
    refusals: dict[str, Any] = {f"parameter:{name}": why for name, why in violations.items()}
    if not violations:  # CloudFormation checks the parameters first, the Rules only when they pass
        refusals.update({f"rule:{name}": why for name, why in refusing_rules(raw, values).items()})
    return refusals


@pytest.mark.parametrize("combination", [c.param() for c in VALID])
def test_a_valid_combination_is_accepted_by_every_constraint_and_rule(raw: dict[str, Any], combination) -> None:
    assert _refusals(raw, combination) == {}


@pytest.mark.parametrize("combination", [c.param() for c in VALID])
def test_a_valid_combination_translates_with_no_dangling_reference(
    raw: dict[str, Any], translate: Callable[..., dict[str, Any]], conditions_of: Callable[..., Any], combination
) -> None:
    translated = translate(**combination.values)
    values = parameter_values(raw, combination.values, combination.region)
    conditions = conditions_of(translated, values)
    assert dangling_references(translated, conditions, values) == []


@pytest.mark.parametrize("combination", [c.param() for c in BROKEN])
def test_a_broken_combination_is_refused_before_deploy(raw: dict[str, Any], combination) -> None:
    refusals = _refusals(raw, combination)
    assert combination.refused_by in refusals, refusals


def test_every_rule_is_exercised_by_a_broken_combination(raw: dict[str, Any]) -> None:
    exercised = {c.refused_by.removeprefix("rule:") for c in BROKEN if c.refused_by.startswith("rule:")}
    assert set(raw["Rules"]) <= exercised


def test_the_parameter_defaults_alone_are_refused_because_nobody_could_sign_in(raw: dict[str, Any]) -> None:
    values = parameter_values(raw, {}, REGION)
    assert parameter_violations(raw, values) == {}
    assert list(refusing_rules(raw, values)) == ["SomeoneCanSignIn"]


def test_the_dangling_reference_check_sees_a_reference_to_a_resource_left_out() -> None:
    # The check itself: a kept resource naming one whose condition is false.
    translated = {
        "Conditions": {"On": {"Fn::Equals": ["a", "b"]}},
        "Resources": {
            "Kept": {"Type": "X", "Properties": {"A": {"Ref": "Gone"}, "B": {"Fn::Sub": "${Gone.Arn}"}}},
            "Gone": {"Type": "X", "Condition": "On"},
        },
    }
    problems = dangling_references(translated, {"On": False}, {"AWS::Region": REGION})
    assert problems == ["Kept: Ref Gone", "Kept: Sub ${Gone.Arn}"]
