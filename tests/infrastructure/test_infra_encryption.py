"""One customer-managed key encrypts the table, the secrets, the logs, the topic and the queue."""

from __future__ import annotations

KEY_ARN = {"Fn::GetAtt": ["ChatbotKey", "Arn"]}


def _key_statements(stack) -> list[dict]:
    return list(stack.props("ChatbotKey")["KeyPolicy"]["Statement"])


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


# ------------------------------------------------------------------ the key


def test_key_rotation_is_enabled(stack) -> None:
    assert stack.props("ChatbotKey")["EnableKeyRotation"] is True


def test_key_is_symmetric_and_has_an_alias(stack) -> None:
    assert stack.props("ChatbotKey").get("KeySpec", "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT"
    assert stack.props("ChatbotKeyAlias")["TargetKeyId"] == {"Ref": "ChatbotKey"}


def test_key_policy_has_no_wildcard_principal(stack) -> None:
    for statement in _key_statements(stack):
        principal = statement["Principal"]
        assert principal != "*", statement
        assert isinstance(principal, dict), statement
        assert set(principal) <= {"AWS", "Service"}, statement
        for value in _as_list(principal.get("AWS", [])) + _as_list(principal.get("Service", [])):
            assert value != "*", statement
            assert "*" not in str(value), statement


def test_key_policy_root_statement_delegates_to_this_account_only(stack) -> None:
    (root,) = [s for s in _key_statements(stack) if "AWS" in s["Principal"]]
    assert root["Principal"]["AWS"] == {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}


def test_key_policy_wildcard_action_only_in_the_root_statement(stack) -> None:
    for statement in _key_statements(stack):
        if "AWS" in statement["Principal"]:
            continue
        for action in _as_list(statement["Action"]):
            assert "*" not in action, statement


def test_key_policy_admits_cloudwatch_logs_for_this_stacks_log_groups(stack) -> None:
    # Deploy-time trap: a log group with a KmsKeyId fails to create unless the key policy admits the
    # regional CloudWatch Logs principal, bound to the log group by the encryption context.
    (logs,) = [
        s
        for s in _key_statements(stack)
        if s["Principal"].get("Service") == {"Fn::Sub": "logs.${AWS::Region}.amazonaws.com"}
    ]
    assert {"kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"} <= set(logs["Action"])
    (operator,) = logs["Condition"]
    assert operator in ("ArnEquals", "ArnLike")
    arns = [item["Fn::Sub"] for item in _as_list(logs["Condition"][operator]["kms:EncryptionContext:aws:logs:arn"])]
    for arn in arns:
        assert arn.startswith("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"), arn
    # Then every log group of the stack is admitted by name
    for log_group_id, log_group in stack.of_type("AWS::Logs::LogGroup").items():
        name = log_group["Properties"]["LogGroupName"]["Fn::Sub"]
        assert any(arn.endswith(":log-group:" + name) for arn in arns), log_group_id


def test_key_policy_admits_cloudwatch_alarms_publishing_to_the_encrypted_topic(stack) -> None:
    # Deploy-time trap: alarms silently fail to notify a CMK-encrypted topic without this statement.
    (alarms,) = [s for s in _key_statements(stack) if s["Principal"].get("Service") == "cloudwatch.amazonaws.com"]
    assert alarms["Effect"] == "Allow"
    assert {"kms:Decrypt", "kms:GenerateDataKey"} <= set(_as_list(alarms["Action"]))


# The condition keys that scope each AWS service principal to this account's own requests: what that
# service sends when it calls KMS on our behalf. A service principal that is not listed here has no
# business in the key policy until its scoping key is written down.
SERVICE_SCOPE_KEYS = {
    "logs.${AWS::Region}.amazonaws.com": {"kms:EncryptionContext:aws:logs:arn"},
    "cloudwatch.amazonaws.com": {"aws:SourceArn", "aws:SourceAccount"},
    # CloudFront standard logs (edge on) reach the SSE-KMS bucket through the log delivery service.
    "delivery.logs.amazonaws.com": {"aws:SourceAccount"},
    # The audit trail (EnableAuditTrail): CloudTrail names the trail as aws:SourceArn.
    "cloudtrail.amazonaws.com": {"aws:SourceArn"},
}


def unscoped_service_statements(statements: list[dict]) -> list[str]:
    """Service-principal statements that lack every condition key their service sends (by Sid)."""
    unscoped = []
    for statement in statements:
        for service in _as_list(statement["Principal"].get("Service", [])):
            name = service["Fn::Sub"] if isinstance(service, dict) else service
            required = SERVICE_SCOPE_KEYS.get(name, {"<no known scoping key>"})
            present = {key for operator in statement.get("Condition", {}).values() for key in operator}
            if not required <= present:
                unscoped.append(f"{statement.get('Sid', '?')} ({name})")
    return unscoped


def test_every_service_principal_of_the_key_policy_is_scoped(all_stacks) -> None:
    for stack in all_stacks:
        assert unscoped_service_statements(_key_statements(stack)) == []


def test_an_unscoped_service_principal_statement_is_caught(stack) -> None:
    # Given the key policy with the condition of the alarms statement removed (the state before)
    statements = [dict(s) for s in _key_statements(stack)]
    (alarms,) = [s for s in statements if s["Principal"].get("Service") == "cloudwatch.amazonaws.com"]
    alarms.pop("Condition", None)
    # And a statement for a service with no known scoping key
    statements.append({"Sid": "Other", "Principal": {"Service": "sns.amazonaws.com"}, "Condition": {}})
    # Then the checker names both
    assert unscoped_service_statements(statements) == [
        "AllowCloudWatchAlarmsToPublishToTheEncryptedTopic (cloudwatch.amazonaws.com)",
        "Other (sns.amazonaws.com)",
    ]


def test_cloudwatch_alarms_may_use_the_key_only_for_this_accounts_alarms(stack) -> None:
    (alarms,) = [s for s in _key_statements(stack) if s["Principal"].get("Service") == "cloudwatch.amazonaws.com"]
    this_accounts_alarms = "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*"
    assert alarms["Condition"] == {
        "ArnLike": {"aws:SourceArn": {"Fn::Sub": this_accounts_alarms}},
        "StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
    }


def test_key_and_table_and_pepper_outlive_the_stack(stack) -> None:
    # A retained table is useless if its key (or the pepper behind its owner keys) is deleted.
    for logical_id in ("ChatbotKey", "ChatTable", "UserIdPepperSecret"):
        assert stack.resources[logical_id].get("DeletionPolicy") in ("Retain", "RetainExceptOnCreate"), logical_id
        assert stack.resources[logical_id].get("UpdateReplacePolicy") == "Retain", logical_id


def test_a_failed_first_create_deletes_the_key_and_the_pepper(stack) -> None:
    # Nothing was encrypted or hashed with them yet: kept, they would only be billed (the key for ever).
    for logical_id in ("ChatbotKey", "UserIdPepperSecret"):
        assert stack.resources[logical_id]["DeletionPolicy"] == "RetainExceptOnCreate", logical_id


def test_the_deletion_protected_table_is_retained_even_after_a_failed_create(stack) -> None:
    # A rollback could not delete it (deletion protection): Retain makes the rollback complete, and the
    # runbook (docs/deploy.md) removes the empty table.
    assert stack.props("ChatTable")["DeletionProtectionEnabled"] is True
    assert stack.resources["ChatTable"]["DeletionPolicy"] == "Retain"


# ------------------------------------------------------------------ the table


def test_table_is_encrypted_with_the_cmk(stack) -> None:
    assert stack.props("ChatTable")["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": KEY_ARN,
    }


def test_table_has_point_in_time_recovery(stack) -> None:
    assert stack.props("ChatTable")["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def test_table_has_deletion_protection(stack) -> None:
    assert stack.props("ChatTable")["DeletionProtectionEnabled"] is True


def test_table_ttl_attribute_is_ttl(stack) -> None:
    assert stack.props("ChatTable")["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}


def test_table_is_on_demand(stack) -> None:
    assert stack.props("ChatTable")["BillingMode"] == "PAY_PER_REQUEST"


def test_table_keys_and_indexes_match_the_architecture(stack) -> None:
    table = stack.props("ChatTable")
    attributes = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert attributes == {
        "pk": "S",
        "sk": "S",
        "owner_key": "S",
        "created_at": "S",
        "expiry_bucket": "S",
        "expires_at": "N",
    }
    assert table["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    indexes = {index["IndexName"]: index for index in table["GlobalSecondaryIndexes"]}
    assert set(indexes) == {"by-owner", "by-expiry"}
    assert indexes["by-owner"]["KeySchema"] == [
        {"AttributeName": "owner_key", "KeyType": "HASH"},
        {"AttributeName": "created_at", "KeyType": "RANGE"},
    ]
    assert indexes["by-expiry"]["KeySchema"] == [
        {"AttributeName": "expiry_bucket", "KeyType": "HASH"},
        {"AttributeName": "expires_at", "KeyType": "RANGE"},
    ]
    assert indexes["by-expiry"]["Projection"] == {"ProjectionType": "KEYS_ONLY"}


def test_owner_index_projects_listing_fields_but_never_key_material_or_content(stack) -> None:
    # Session listing reads from the index; the wrapped data key and message content stay out of it.
    (owner,) = [i for i in stack.props("ChatTable")["GlobalSecondaryIndexes"] if i["IndexName"] == "by-owner"]
    projection = owner["Projection"]
    assert projection["ProjectionType"] == "INCLUDE"
    attributes = set(projection["NonKeyAttributes"])
    assert {"expires_at", "last_active_at", "message_count", "status"} <= attributes
    assert not attributes & {"wrapped_key", "content", "role", "message_id"}


# ------------------------------------------------------------------ everything else under the CMK


def test_every_log_group_is_encrypted_with_the_cmk(all_stacks) -> None:
    for stack in all_stacks:
        for log_group_id, log_group in stack.of_type("AWS::Logs::LogGroup").items():
            assert log_group["Properties"].get("KmsKeyId") == KEY_ARN, log_group_id


def test_every_log_group_has_the_retention_parameter(all_stacks) -> None:
    for stack in all_stacks:
        for log_group_id, log_group in stack.of_type("AWS::Logs::LogGroup").items():
            assert log_group["Properties"].get("RetentionInDays") == {"Ref": "LogRetentionDays"}, log_group_id


def test_every_secret_is_generated_and_encrypted_with_the_cmk(all_stacks) -> None:
    for stack in all_stacks:
        for secret_id, secret in stack.of_type("AWS::SecretsManager::Secret").items():
            properties = secret["Properties"]
            assert properties.get("KmsKeyId") == KEY_ARN, secret_id
            # Generated by CloudFormation: no value in the template.
            assert "SecretString" not in properties, secret_id
            assert properties["GenerateSecretString"]["PasswordLength"] >= 64, secret_id
            assert properties["GenerateSecretString"]["ExcludePunctuation"] is True, secret_id


def test_both_application_secrets_exist(stack) -> None:
    assert {"SessionTokenSecret", "UserIdPepperSecret"} <= set(stack.of_type("AWS::SecretsManager::Secret"))


def test_alarm_topic_is_encrypted_with_the_cmk(stack) -> None:
    assert stack.props("AlarmTopic")["KmsMasterKeyId"] == KEY_ARN


def test_dead_letter_queue_is_encrypted_with_the_cmk(stack) -> None:
    assert stack.props("CleanupDeadLetterQueue")["KmsMasterKeyId"] == KEY_ARN


def test_function_environments_are_encrypted_with_the_cmk(stack) -> None:
    for function_id in stack.of_type("AWS::Lambda::Function"):
        assert stack.props(function_id)["KmsKeyArn"] == KEY_ARN, function_id
