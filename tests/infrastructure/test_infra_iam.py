"""IAM: one explicit role per function, exact actions, resource-scoped statements (rule 11)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from support.stack_resources import FUNCTIONS, KEY_ARN, TABLE_ARN
from support.stack_variants import NETWORK_VARIANTS


def _kms_actions(stack, function_id: str) -> set[str]:
    return {
        action
        for statement in stack.function_statements(function_id)
        for action in statement.actions
        if action.startswith("kms:")
    }


# ------------------------------------------------------------------ roles


def test_each_function_has_its_own_explicit_role(stack) -> None:
    # Given the deployed stack
    # When each function's execution role is looked up
    roles = {function_id: stack.function_role(function_id) for function_id in FUNCTIONS}
    # Then every role is an AWS::IAM::Role written in the template and no two functions share one
    assert set(stack.of_type("AWS::Lambda::Function")) == set(FUNCTIONS)
    for role_id in roles.values():
        assert stack.resources[role_id]["Type"] == "AWS::IAM::Role"
    assert len(set(roles.values())) == len(FUNCTIONS), roles


def test_no_role_is_generated_by_sam_or_uses_managed_policies(stack, raw) -> None:
    # SAM generates "<Function>Role" with AWS managed policies when a function has no Role.
    written_roles = {
        lid
        for lid, res in raw["Resources"].items()
        if res["Type"] == "AWS::IAM::Role" and stack.conditions.get(res.get("Condition", ""), True)
    }
    deployed_roles = set(stack.of_type("AWS::IAM::Role"))
    assert deployed_roles == written_roles
    for role in stack.of_type("AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]


def test_roles_can_be_assumed_only_by_lambda(stack) -> None:
    # (NetworkMode vpc adds the flow-log delivery role: tests/infrastructure/test_infra_network.py)
    for role in stack.of_type("AWS::IAM::Role").values():
        statements = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert statements == [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ]


def test_every_policy_statement_has_a_sid_and_allows(all_stacks) -> None:
    # The Sid ties a "# wildcard-allowed" comment to its statement; no Deny/NotAction tricks.
    for stack in all_stacks:
        for statement in stack.statements():
            assert statement.sid, statement
            assert statement.body["Effect"] == "Allow", statement
            assert "NotAction" not in statement.body, statement
            assert "NotResource" not in statement.body, statement


# ------------------------------------------------------------------ wildcards


def test_no_wildcard_action(all_stacks) -> None:
    # Given every deployment variant (all optional grants switched on somewhere)
    for stack in all_stacks:
        for statement in stack.statements():
            # Then no action is "*", "service:*" or a partial wildcard such as "kms:Generate*"
            for action in statement.actions:
                assert "*" not in action, (statement.owner, statement.sid, action)
                assert "?" not in action, (statement.owner, statement.sid, action)


def test_wildcard_resources_only_in_commented_allowlist(all_stacks, allowances) -> None:
    allowed = {(allowance.owner, allowance.sid) for allowance in allowances}
    for stack in all_stacks:
        for statement in stack.statements():
            if any("*" in pattern for pattern in statement.resource_patterns):
                assert (statement.owner, statement.sid) in allowed, (
                    f"{statement.owner}/{statement.sid} has a wildcard resource without a "
                    "'# wildcard-allowed: <reason>' comment"
                )


def test_every_wildcard_allowance_gives_a_reason(allowances) -> None:
    assert allowances, "expected at least the X-Ray allowances"
    for allowance in allowances:
        assert len(allowance.reason) >= 20, allowance


def test_no_stray_wildcard_allowance_comment(stray_allowance_lines) -> None:
    # A comment outside every policy statement allows nothing: it is a mistake.
    assert stray_allowance_lines == []


def test_wildcard_allowances_are_not_stale(all_stacks, allowances) -> None:
    # Each allowance comment sits in a statement that really has a wildcard resource.
    wildcard_statements = {
        (statement.owner, statement.sid)
        for stack in all_stacks
        for statement in stack.statements()
        if any("*" in pattern for pattern in statement.resource_patterns)
    }
    for allowance in allowances:
        assert (allowance.owner, allowance.sid) in wildcard_statements, allowance


# The two named exceptions: X-Ray has no resource-level permissions, and Lambda manages a VPC function's
# network interfaces (NetworkMode vpc) with EC2 actions it checks on every resource (Describe* take no ARN).
XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
VPC_NETWORK_INTERFACE_ACTIONS = {
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
}


def test_full_wildcard_resource_only_for_xray_and_vpc_network_interfaces(all_stacks) -> None:
    # Every other statement names its resources.
    for stack in all_stacks:
        for statement in stack.statements():
            if "*" in statement.resources:
                vpc_exception = statement.sid == "ManageVpcNetworkInterfaces"
                allowed = VPC_NETWORK_INTERFACE_ACTIONS if vpc_exception else XRAY_ACTIONS
                assert set(statement.actions) <= allowed, statement


def test_vpc_network_interface_exception_exists_only_in_vpc_mode(make_stack) -> None:
    def ec2_statements(stack) -> list:
        return [s for s in stack.statements() if any(action.startswith("ec2:") for action in s.actions)]

    assert ec2_statements(make_stack()) == []
    vpc = make_stack(**NETWORK_VARIANTS["vpc"])
    roles = {statement.role for statement in ec2_statements(vpc)}
    assert roles == {vpc.function_role(function_id) for function_id in FUNCTIONS}
    for statement in ec2_statements(vpc):
        assert set(statement.actions) == VPC_NETWORK_INTERFACE_ACTIONS, statement


# ------------------------------------------------------------------ logs and traces


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_function_writes_only_to_its_own_log_group(stack, function_id: str) -> None:
    log_group = stack.props(function_id)["LoggingConfig"]["LogGroup"]["Ref"]
    assert stack.allowed(function_id, "logs:PutLogEvents") == [{"Fn::GetAtt": [log_group, "Arn"]}]
    assert stack.allowed(function_id, "logs:CreateLogStream") == [{"Fn::GetAtt": [log_group, "Arn"]}]
    assert stack.allowed(function_id, "logs:CreateLogGroup") == []


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_function_can_send_traces(stack, function_id: str) -> None:
    assert stack.allowed(function_id, "xray:PutTraceSegments") == ["*"]
    assert stack.allowed(function_id, "xray:PutTelemetryRecords") == ["*"]


# ------------------------------------------------------------------ KMS


def test_kms_permissions_only_on_the_stack_key(all_stacks) -> None:
    for stack in all_stacks:
        for statement in stack.statements():
            if any(action.startswith("kms:") for action in statement.actions):
                assert statement.resources == [KEY_ARN], statement


def test_authorizer_may_only_decrypt(stack) -> None:
    assert _kms_actions(stack, "AuthorizerFunction") == {"kms:Decrypt"}


def test_chat_may_generate_and_unwrap_data_keys(stack) -> None:
    assert _kms_actions(stack, "ChatFunction") == {"kms:GenerateDataKey", "kms:Decrypt", "kms:DescribeKey"}


def test_chat_data_keys_are_bound_to_the_content_encryption_context(stack) -> None:
    # The chat role can use the key directly only under the encryption context the code sets on
    # message data keys; everything else goes through DynamoDB, Secrets Manager or its environment.
    from chatbot_security.privacy.crypto import encryption_context

    purpose = encryption_context("00000000-0000-4000-8000-000000000000")["purpose"]
    for statement in stack.function_statements("ChatFunction"):
        if {"kms:GenerateDataKey", "kms:Decrypt"} & set(statement.actions):
            conditions = statement.body["Condition"]["StringEquals"]
            assert (
                conditions.get("kms:EncryptionContext:purpose") == purpose
                or "kms:ViaService" in conditions
                or "kms:EncryptionContext:aws:lambda:FunctionArn" in conditions
            ), statement
    assert any(
        "kms:GenerateDataKey" in statement.actions
        and statement.body["Condition"]["StringEquals"].get("kms:EncryptionContext:purpose") == purpose
        for statement in stack.function_statements("ChatFunction")
    )


def test_cleanup_kms_use_is_bound_to_dynamodb_sqs_and_its_environment(stack) -> None:
    # The cleanup function never encrypts anything itself: every KMS grant it has is conditional.
    for statement in stack.function_statements("SessionCleanupFunction"):
        if any(action.startswith("kms:") for action in statement.actions):
            conditions = statement.body.get("Condition", {}).get("StringEquals", {})
            assert "kms:ViaService" in conditions or "kms:EncryptionContext:aws:lambda:FunctionArn" in conditions


def test_authorizer_decrypts_secrets_only_through_secrets_manager(stack) -> None:
    for statement in stack.function_statements("AuthorizerFunction"):
        if "kms:Decrypt" in statement.actions:
            conditions = statement.body["Condition"]["StringEquals"]
            assert conditions.get("kms:ViaService") == {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"} or (
                "kms:EncryptionContext:aws:lambda:FunctionArn" in conditions
            ), statement


@pytest.mark.parametrize(
    ("function_id", "suffix"),
    [("AuthorizerFunction", "authorizer"), ("ChatFunction", "chat"), ("SessionCleanupFunction", "cleanup")],
)
def test_function_can_decrypt_its_cmk_encrypted_environment(stack, function_id: str, suffix: str) -> None:
    # Given environment variables encrypted with the CMK (KmsKeyArn), the role must decrypt them:
    # either unconditionally, or bound to the encryption context Lambda uses (its own function ARN).
    assert stack.props(function_id)["KmsKeyArn"] == KEY_ARN
    function_name = stack.props(function_id)["FunctionName"]
    assert function_name == {"Fn::Sub": "${AWS::StackName}-" + suffix}
    own_arn = {
        "Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-" + suffix
    }
    grants = [
        statement.body.get("Condition")
        for statement in stack.function_statements(function_id)
        if "kms:Decrypt" in statement.actions
    ]
    assert None in grants or {"StringEquals": {"kms:EncryptionContext:aws:lambda:FunctionArn": own_arn}} in grants


# ------------------------------------------------------------------ secrets


def test_authorizer_reads_only_the_session_token_secret(stack) -> None:
    assert stack.allowed("AuthorizerFunction", "secretsmanager:GetSecretValue") == [{"Ref": "SessionTokenSecret"}]


def test_chat_reads_the_signing_key_and_the_pepper(stack) -> None:
    assert sorted(map(str, stack.allowed("ChatFunction", "secretsmanager:GetSecretValue"))) == sorted(
        map(str, [{"Ref": "SessionTokenSecret"}, {"Ref": "UserIdPepperSecret"}])
    )


def test_cleanup_reads_no_secret(stack) -> None:
    assert stack.allowed("SessionCleanupFunction", "secretsmanager:GetSecretValue") == []


def test_model_api_key_secret_exists_and_is_readable_only_with_openai(make_stack: Callable) -> None:
    bedrock, openai = make_stack(), make_stack(ModelProvider="openai")
    assert "ModelApiKeySecret" not in bedrock.resources
    assert "ModelApiKeySecret" in openai.resources
    assert {"Ref": "ModelApiKeySecret"} in openai.allowed("ChatFunction", "secretsmanager:GetSecretValue")
    for function_id in ("AuthorizerFunction", "SessionCleanupFunction"):
        assert {"Ref": "ModelApiKeySecret"} not in openai.allowed(function_id, "secretsmanager:GetSecretValue")
    assert openai.function_env("ChatFunction")["MODEL_API_KEY_SECRET_ARN"] == {"Ref": "ModelApiKeySecret"}
    assert bedrock.function_env("ChatFunction")["MODEL_API_KEY_SECRET_ARN"] == ""


# ------------------------------------------------------------------ DynamoDB


def test_only_chat_and_cleanup_touch_the_table(stack) -> None:
    for statement in stack.function_statements("AuthorizerFunction"):
        assert not any(action.startswith("dynamodb:") for action in statement.actions), statement


def test_chat_table_actions_are_exact(stack) -> None:
    table_actions = {
        action
        for statement in stack.function_statements("ChatFunction")
        if statement.resources == [TABLE_ARN]
        for action in statement.actions
    }
    assert table_actions == {
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
        "dynamodb:Query",
        "dynamodb:BatchWriteItem",
        "dynamodb:ConditionCheckItem",
    }


@pytest.mark.parametrize(
    ("function_id", "index"), [("ChatFunction", "by-owner"), ("SessionCleanupFunction", "by-expiry")]
)
def test_index_access_is_query_only_on_the_index_it_needs(stack, function_id: str, index: str) -> None:
    for statement in stack.function_statements(function_id):
        for pattern in statement.resource_patterns:
            if "/index/" in pattern:
                assert statement.actions == ["dynamodb:Query"], statement
                assert pattern == "${ChatTable.Arn}/index/" + index, statement


def test_cleanup_cannot_create_items(stack) -> None:
    # It claims (UpdateItem) and deletes ended sessions; it never writes a new item.
    for action in ("dynamodb:PutItem", "dynamodb:TransactWriteItems", "dynamodb:Scan"):
        assert stack.allowed("SessionCleanupFunction", action) == []
    assert stack.allowed("SessionCleanupFunction", "dynamodb:UpdateItem") == [TABLE_ARN]


def test_nobody_may_scan_the_table(all_stacks) -> None:
    for stack in all_stacks:
        for statement in stack.statements():
            assert "dynamodb:Scan" not in statement.actions, statement


# ------------------------------------------------------------------ dead-letter queue


def test_cleanup_failures_go_to_the_dead_letter_queue(stack) -> None:
    dlq_arn = {"Fn::GetAtt": ["CleanupDeadLetterQueue", "Arn"]}
    assert stack.props("SessionCleanupFunction")["DeadLetterConfig"]["TargetArn"] == dlq_arn
    assert stack.allowed("SessionCleanupFunction", "sqs:SendMessage") == [dlq_arn]


def test_dlq_send_permission_only_on_the_cleanup_role(all_stacks) -> None:
    for stack in all_stacks:
        for statement in stack.statements():
            if any(action.startswith("sqs:") for action in statement.actions):
                assert statement.role == stack.function_role("SessionCleanupFunction"), statement
                assert statement.actions == ["sqs:SendMessage"], statement


def test_cleanup_can_use_the_key_of_its_encrypted_dlq(stack) -> None:
    # SendMessage to a KMS-encrypted queue needs GenerateDataKey and Decrypt on its key.
    via_sqs = [
        statement
        for statement in stack.function_statements("SessionCleanupFunction")
        if statement.body.get("Condition", {}).get("StringEquals", {}).get("kms:ViaService")
        == {"Fn::Sub": "sqs.${AWS::Region}.amazonaws.com"}
    ]
    assert via_sqs
    assert {"kms:GenerateDataKey", "kms:Decrypt"} <= set(via_sqs[0].actions)


# ------------------------------------------------------------------ Bedrock


def _profile_arn(profile: Any) -> dict[str, Any]:
    return {
        "Fn::Sub": [
            "arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:inference-profile/${Profile}",
            {"Profile": profile},
        ]
    }


DEFAULT_PROFILE = {"Fn::FindInMap": ["DefaultBedrockModel", {"Ref": "AWS::Region"}, "InferenceProfileId"]}


def test_bedrock_invoke_of_a_bare_model_id_is_scoped_to_that_model(make_stack: Callable) -> None:
    stack = make_stack(ModelId="amazon.nova-lite-v1:0")
    assert stack.allowed("ChatFunction", "bedrock:InvokeModel") == [
        {"Fn::Sub": "arn:${AWS::Partition}:bedrock:${AWS::Region}::foundation-model/${ModelId}"}
    ]


def test_no_bedrock_permission_without_the_bedrock_provider_and_without_moderation(make_stack: Callable) -> None:
    for provider in ("echo", "openai"):
        stack = make_stack(ModelProvider=provider, Moderation="off")
        for statement in stack.statements():
            assert not any(action.startswith("bedrock:") for action in statement.actions), (provider, statement)


def test_another_provider_with_moderation_may_only_apply_the_guardrail(make_stack: Callable) -> None:
    for provider in ("echo", "openai"):
        stack = make_stack(ModelProvider=provider)
        actions = {a for s in stack.statements() for a in s.actions if a.startswith("bedrock:")}
        assert actions == {"bedrock:ApplyGuardrail"}, provider


def test_default_model_is_invoked_through_this_regions_inference_profile_only(stack) -> None:
    profile_arn = _profile_arn(DEFAULT_PROFILE)
    assert profile_arn in stack.allowed("ChatFunction", "bedrock:InvokeModel")
    assert stack.function_env("ChatFunction")["MODEL_ID"] == DEFAULT_PROFILE
    assert not any("::foundation-model/${ModelId}" in p for s in stack.statements() for p in s.resource_patterns)
    routed = [
        s for s in stack.function_statements("ChatFunction") if "foundation-model/*" in "".join(s.resource_patterns)
    ]
    assert len(routed) == 1
    # Geography profiles (bedrock:<region>::) and the global profile (bedrock:::) alike, bound to the one profile.
    assert routed[0].resource_patterns == [
        "arn:${AWS::Partition}:bedrock:*::foundation-model/*",
        "arn:${AWS::Partition}:bedrock:::foundation-model/*",
    ]
    assert routed[0].body["Condition"] == {"StringEquals": {"bedrock:InferenceProfileArn": profile_arn}}


def test_inference_profile_grants_only_for_a_profile_id(make_stack: Callable) -> None:
    plain = make_stack(ModelId="amazon.nova-lite-v1:0")
    profile = make_stack(ModelId="eu.anthropic.claude-haiku-5-5")
    assert not any("inference-profile" in p for s in plain.statements() for p in s.resource_patterns)
    profile_arn = _profile_arn({"Ref": "ModelId"})
    assert profile_arn in profile.allowed("ChatFunction", "bedrock:InvokeModel")
    assert profile.function_env("ChatFunction")["MODEL_ID"] == {"Ref": "ModelId"}
    # The cross-region foundation-model grant is bound to that one profile.
    (routed,) = [
        s for s in profile.function_statements("ChatFunction") if "bedrock:*::" in "".join(s.resource_patterns)
    ]
    assert routed.body["Condition"] == {"StringEquals": {"bedrock:InferenceProfileArn": profile_arn}}


def test_guardrail_permission_only_when_moderation_is_on(make_stack: Callable) -> None:
    assert make_stack(Moderation="off").allowed("ChatFunction", "bedrock:ApplyGuardrail") == []
    guarded = make_stack(BedrockGuardrailId="abc123def456", BedrockGuardrailVersion="1")
    assert guarded.allowed("ChatFunction", "bedrock:ApplyGuardrail") == [
        {"Fn::Sub": "arn:${AWS::Partition}:bedrock:${AWS::Region}:${AWS::AccountId}:guardrail/${BedrockGuardrailId}"}
    ]
