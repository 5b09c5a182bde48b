"""Optional private network and audit trail (NetworkMode, EnableAuditTrail, ConfigRecorderEnabled,
LogDestinationArn): docs/network.md. Every variant is checked; the default adds none of it."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from deploy import command_parameters, parse_overrides
from support.stack_resources import FUNCTIONS, KEY_ARN, TABLE_ARN
from support.stack_variants import AUDIT_VARIANTS, BREAK_GLASS_ROLE, DYNAMODB_PREFIX_LIST, NETWORK_VARIANTS

if TYPE_CHECKING:
    from conftest import Stack

REPO_ROOT = Path(__file__).resolve().parents[2]

FUNCTION_ROLES_PATTERN = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/chatbot/${AWS::StackName}/*"}
SOURCE_KEYS = ("aws:SourceVpc", "aws:SourceVpce")
# Types that cost money by the hour or by the month whether or not the chatbot is used.
FIXED_COST_TYPES = {
    "AWS::EC2::VPCEndpoint",
    "AWS::EC2::NatGateway",
    "AWS::EC2::EIP",
    "AWS::CloudTrail::Trail",
    "AWS::Config::ConfigRule",
}
CONFIG_RULES = {
    "DYNAMODB_TABLE_ENCRYPTED_KMS",
    "DYNAMODB_PITR_ENABLED",
    "CLOUDWATCH_LOG_GROUP_ENCRYPTED",
    "CW_LOGGROUP_RETENTION_PERIOD_CHECK",
    "LAMBDA_FUNCTION_PUBLIC_ACCESS_PROHIBITED",
    "SECRETSMANAGER_USING_CMK",
    "CLOUD_TRAIL_ENABLED",
    "CMK_BACKING_KEY_ROTATION_ENABLED",
}
VPC_VARIANTS = sorted(NETWORK_VARIANTS)


@pytest.fixture(params=VPC_VARIANTS)
def vpc_stack(request: pytest.FixtureRequest, make_stack: Callable[..., Stack]) -> Stack:
    return make_stack(**NETWORK_VARIANTS[request.param])


@pytest.fixture
def audit_stack(make_stack: Callable[..., Stack]) -> Stack:
    return make_stack(**AUDIT_VARIANTS["audit"])


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _documents(stack: Stack) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every resource policy of the stack: key, secrets, table, buckets, endpoints."""
    for logical_id, resource in stack.resources.items():
        properties = resource.get("Properties", {})
        for key in ("KeyPolicy", "PolicyDocument", "ResourcePolicy"):
            document = properties.get(key)
            if isinstance(document, dict) and "PolicyDocument" in document:
                document = document["PolicyDocument"]
            if isinstance(document, dict) and "Statement" in document:
                yield logical_id, document


def _statements(stack: Stack) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, document in _documents(stack):
        for statement in document["Statement"]:
            yield logical_id, statement


# ------------------------------------------------------------------ the default costs nothing when idle


def test_default_deployment_adds_no_fixed_cost_resource(stack) -> None:
    assert not [lid for lid, res in stack.resources.items() if res["Type"] in FIXED_COST_TYPES]
    assert not [lid for lid, res in stack.resources.items() if res["Type"].startswith("AWS::EC2::")]
    assert not stack.of_type("AWS::S3::Bucket")
    assert not stack.of_type("AWS::Logs::SubscriptionFilter")


def test_default_functions_run_outside_any_vpc(stack) -> None:
    for function_id in FUNCTIONS:
        assert "VpcConfig" not in stack.props(function_id), function_id


def test_no_checkov_skip_that_vpc_mode_answers(raw) -> None:
    # CKV_AWS_117 (function in a VPC) is answered by the VpcConfig !If, which checkov evaluates.
    for logical_id, resource in raw["Resources"].items():
        skips = resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
        assert "CKV_AWS_117" not in {skip["id"] for skip in skips}, logical_id


# ------------------------------------------------------------------ subnets and functions


def test_every_function_runs_in_the_private_subnets_in_vpc_mode(vpc_stack) -> None:
    for function_id in FUNCTIONS:
        config = vpc_stack.props(function_id)["VpcConfig"]
        assert config["SecurityGroupIds"] == [{"Ref": "FunctionSecurityGroup"}], function_id
        assert len(config["SubnetIds"]) >= 2, function_id


def test_created_private_subnets_span_two_availability_zones(make_stack) -> None:
    stack = make_stack(**NETWORK_VARIANTS["vpc"])
    zones = [stack.props(subnet)["AvailabilityZone"] for subnet in ("PrivateSubnetA", "PrivateSubnetB")]
    assert zones == [{"Fn::Select": [0, {"Fn::GetAZs": ""}]}, {"Fn::Select": [1, {"Fn::GetAZs": ""}]}]
    for subnet in ("PrivateSubnetA", "PrivateSubnetB"):
        assert stack.props(subnet)["MapPublicIpOnLaunch"] is False
    assert stack.props("ChatFunction")["VpcConfig"]["SubnetIds"] == [
        {"Ref": "PrivateSubnetA"},
        {"Ref": "PrivateSubnetB"},
    ]
    # No route leaves the VPC without EnableNatGateway.
    assert not stack.of_type("AWS::EC2::Route")
    assert not stack.of_type("AWS::EC2::InternetGateway")


def test_existing_network_is_used_as_given(make_stack) -> None:
    stack = make_stack(**NETWORK_VARIANTS["vpc-existing"])
    assert not stack.of_type("AWS::EC2::VPC")
    assert not stack.of_type("AWS::EC2::Subnet")
    subnets = stack.props("ChatFunction")["VpcConfig"]["SubnetIds"]
    assert subnets == ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
    assert stack.props("FunctionSecurityGroup")["VpcId"] == {"Ref": "VpcId"}
    assert stack.props("DynamoDbGatewayEndpoint")["RouteTableIds"] == ["rtb-0123456789abcdef0"]


def test_existing_endpoint_ids_replace_the_created_endpoints(make_stack) -> None:
    stack = make_stack(
        **NETWORK_VARIANTS["vpc-existing"],
        ExistingDynamoDbEndpointId="vpce-0123456789abcdef2",
        ExistingSecretsManagerEndpointId="vpce-0123456789abcdef3",
        ExistingBedrockRuntimeEndpointId="vpce-0123456789abcdef4",
    )
    assert not stack.of_type("AWS::EC2::VPCEndpoint")
    assert "EndpointSecurityGroup" not in stack.resources
    # Without them the same network gets the endpoints the stack creates.
    created = make_stack(**NETWORK_VARIANTS["vpc-existing"]).of_type("AWS::EC2::VPCEndpoint")
    assert set(created) == {
        "DynamoDbGatewayEndpoint",
        "SecretsManagerInterfaceEndpoint",
        "BedrockRuntimeInterfaceEndpoint",
    }


# ------------------------------------------------------------------ security groups


def test_function_security_group_has_no_inbound_and_only_https_out(vpc_stack) -> None:
    group = vpc_stack.props("FunctionSecurityGroup")
    assert "SecurityGroupIngress" not in group
    assert not vpc_stack.of_type("AWS::EC2::SecurityGroupIngress")
    rules = list(group["SecurityGroupEgress"]) + [
        res["Properties"] for res in vpc_stack.of_type("AWS::EC2::SecurityGroupEgress").values()
    ]
    for rule in rules:
        assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 443, 443), rule
        assert rule.get("Description"), rule
    destinations = {str(rule.get("CidrIp") or rule.get("DestinationPrefixListId")) for rule in rules}
    assert {"{'Ref': 'VpcCidrBlock'}", "{'Ref': 'DynamoDbPrefixListId'}"} <= destinations
    internet = "0.0.0.0/0" in destinations
    assert internet == (vpc_stack.params["EnableNatGateway"] == "true")


def test_nat_gateway_only_when_asked(make_stack) -> None:
    assert not make_stack(**NETWORK_VARIANTS["vpc"]).of_type("AWS::EC2::NatGateway")
    stack = make_stack(**NETWORK_VARIANTS["vpc-nat"])
    assert set(stack.of_type("AWS::EC2::NatGateway")) == {"NatGateway"}
    route = stack.props("PrivateDefaultRouteThroughNat")
    assert route == {
        "RouteTableId": {"Ref": "PrivateRouteTable"},
        "DestinationCidrBlock": "0.0.0.0/0",
        "NatGatewayId": {"Ref": "NatGateway"},
    }


def test_endpoint_security_group_admits_only_the_functions_and_sends_nothing(make_stack) -> None:
    stack = make_stack(**NETWORK_VARIANTS["vpc"])
    group = stack.props("EndpointSecurityGroup")
    (ingress,) = group["SecurityGroupIngress"]
    assert ingress["SourceSecurityGroupId"] == {"Ref": "FunctionSecurityGroup"}
    assert (ingress["IpProtocol"], ingress["FromPort"], ingress["ToPort"]) == ("tcp", 443, 443)
    (egress,) = group["SecurityGroupEgress"]
    assert egress["CidrIp"] == "127.0.0.1/32"


def test_vpc_without_internet_egress_refuses_oidc_and_the_openai_provider(raw) -> None:
    rule = raw["Rules"]["VpcWithoutInternetEgress"]
    assert rule["RuleCondition"] == {
        "Fn::And": [
            {"Fn::Equals": [{"Ref": "NetworkMode"}, "vpc"]},
            {"Fn::Equals": [{"Ref": "EnableNatGateway"}, "false"]},
        ]
    }
    openai, oidc = (assertion["Assert"] for assertion in rule["Assertions"])
    assert openai == {"Fn::Not": [{"Fn::Equals": [{"Ref": "ModelProvider"}, "openai"]}]}
    assert {"Fn::Not": [{"Fn::Equals": [{"Ref": "OidcJwksUrl"}, ""]}]} in oidc["Fn::Or"]
    assert "CreateCognitoUserPool" in str(oidc)
    assert "OidcIssuer" in str(oidc)


def test_prefix_list_and_break_glass_role_are_required_by_rules(raw) -> None:
    rules = raw["Rules"]
    assert "DynamoDbPrefixListId" in str(rules["VpcNetworkSettings"])
    assert "AuditBreakGlassRoleArn" in str(rules["AuditTrailSettings"])
    assert DYNAMODB_PREFIX_LIST.startswith("pl-")


# ------------------------------------------------------------------ endpoints


def test_interface_endpoints_have_private_dns_and_the_endpoint_group(vpc_stack) -> None:
    assert vpc_stack.of_type("AWS::EC2::VPCEndpoint")
    for logical_id, endpoint in vpc_stack.of_type("AWS::EC2::VPCEndpoint").items():
        properties = endpoint["Properties"]
        if properties["VpcEndpointType"] == "Interface":
            assert properties["PrivateDnsEnabled"] is True, logical_id
            assert properties["SecurityGroupIds"] == [{"Ref": "EndpointSecurityGroup"}], logical_id


def test_created_endpoints_cover_every_service_the_functions_call(make_stack) -> None:
    stack = make_stack(**NETWORK_VARIANTS["vpc"])
    services = {
        endpoint["Properties"]["ServiceName"]["Fn::Sub"].rsplit(".", 1)[1]
        for endpoint in stack.of_type("AWS::EC2::VPCEndpoint").values()
    }
    # The code's boto3 clients: dynamodb, kms, secretsmanager, bedrock-runtime (docs/network.md).
    assert services == {"dynamodb", "kms", "secretsmanager", "bedrock-runtime"}


def test_with_internet_egress_the_stream_function_reaches_its_worker_through_a_lambda_endpoint(make_stack) -> None:
    stack = make_stack(**NETWORK_VARIANTS["vpc-nat"])
    endpoint = stack.props("LambdaInterfaceEndpoint")
    assert endpoint["ServiceName"] == {"Fn::Sub": "com.amazonaws.${AWS::Region}.lambda"}
    (statement,) = endpoint["PolicyDocument"]["Statement"]
    assert statement["Action"] == "lambda:InvokeFunction"
    worker = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${AWS::StackName}-stream-worker"
    assert statement["Resource"] == {"Fn::Sub": worker}
    assert stack.function_env("ChatFunction")["STREAM_URL"] != ""


def test_without_internet_egress_streaming_is_off_and_clients_use_the_http_post(make_stack) -> None:
    # PostToConnection has no VPC endpoint: no stream tickets are issued (the route answers 404).
    stack = make_stack(**NETWORK_VARIANTS["vpc"])
    assert stack.function_env("ChatFunction")["STREAM_URL"] == ""
    assert "LambdaInterfaceEndpoint" not in stack.resources


def test_dynamodb_gateway_endpoint_allows_only_the_table_and_its_indexes(vpc_stack) -> None:
    endpoint = vpc_stack.props("DynamoDbGatewayEndpoint")
    assert endpoint["VpcEndpointType"] == "Gateway"
    (statement,) = endpoint["PolicyDocument"]["Statement"]
    assert statement["Resource"] == [
        TABLE_ARN,
        {"Fn::Sub": "${ChatTable.Arn}/index/by-owner"},
        {"Fn::Sub": "${ChatTable.Arn}/index/by-expiry"},
    ]
    assert all("*" not in action for action in statement["Action"])


def _stack_resource(value: Any) -> bool:
    """A Ref/GetAtt of a resource of this stack, or an ARN text made of this stack's names."""
    if isinstance(value, dict) and ("Ref" in value or "Fn::GetAtt" in value):
        return True
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        text = sub if isinstance(sub, str) else sub[0]
        return "${ChatTable.Arn}" in text or "${AWS::AccountId}" in text or "${ModelId}" in text
    return False


@pytest.mark.parametrize("overrides", [{}, {"BedrockGuardrailId": "abc123def456"}, {"ModelId": "anthropic.m-v1"}])
def test_endpoint_policies_name_only_stack_resources_and_the_function_roles(make_stack, overrides) -> None:
    for variant in VPC_VARIANTS:
        stack = make_stack(**NETWORK_VARIANTS[variant], **overrides, CreateXRayEndpoint="true")
        assert "XRayInterfaceEndpoint" in stack.resources
        for logical_id, endpoint in stack.of_type("AWS::EC2::VPCEndpoint").items():
            for statement in endpoint["Properties"]["PolicyDocument"]["Statement"]:
                assert statement["Effect"] == "Allow", logical_id
                assert statement["Condition"]["ArnLike"]["aws:PrincipalArn"] == FUNCTION_ROLES_PATTERN
                resources = _as_list(statement["Resource"])
                if statement["Sid"] == "OnlyTheFunctionRolesTraces":
                    assert resources == ["*"]  # X-Ray has no resource-level permissions
                elif statement["Sid"] == "OnlyTheModelsBehindTheInferenceProfile":
                    assert "bedrock:InferenceProfileArn" in statement["Condition"]["StringEquals"]
                else:
                    assert all(_stack_resource(resource) for resource in resources), (logical_id, resources)


# ------------------------------------------------------------------ refusal outside the VPC


def test_source_conditions_only_on_deny_statements_for_the_function_roles(all_stacks, make_stack) -> None:
    stacks = [*all_stacks, *(make_stack(**overrides) for overrides in NETWORK_VARIANTS.values())]
    seen = 0
    for stack in stacks:
        for logical_id, statement in _statements(stack):
            condition = statement.get("Condition", {})
            if not any(key in operator_keys for operator_keys in condition.values() for key in SOURCE_KEYS):
                continue
            seen += 1
            assert statement["Effect"] == "Deny", (logical_id, statement)
            assert "Service" not in statement["Principal"], (logical_id, statement)
            assert condition["ArnLike"]["aws:PrincipalArn"] == FUNCTION_ROLES_PATTERN, logical_id
            assert condition["Bool"]["aws:ViaAWSService"] == "false", logical_id
    assert seen


def test_key_secrets_and_table_refuse_the_function_roles_outside_the_vpc(vpc_stack) -> None:
    denied = {
        logical_id
        for logical_id, statement in _statements(vpc_stack)
        if statement.get("Sid") == "DenyFunctionRolesOutsideTheVpc"
    }
    assert denied == {"ChatbotKey", "ChatTable", "SessionTokenSecretPolicy", "UserIdPepperSecretPolicy"}
    for secret_policy in ("SessionTokenSecretPolicy", "UserIdPepperSecretPolicy"):
        assert vpc_stack.props(secret_policy)["BlockPublicPolicy"] is True


def test_key_deny_spares_lambda_decrypting_the_function_environment(vpc_stack) -> None:
    (deny,) = [s for s in vpc_stack.props("ChatbotKey")["KeyPolicy"]["Statement"] if s["Effect"] == "Deny"]
    assert deny["Condition"]["Null"] == {"kms:EncryptionContext:aws:lambda:FunctionArn": "true"}
    assert all("*" not in action for action in deny["Action"])


def test_the_open_ai_key_secret_is_guarded_too(make_stack) -> None:
    stack = make_stack(
        **NETWORK_VARIANTS["vpc-nat"],
        ModelProvider="openai",
        OpenAiBaseUrl="https://llm.example.com/v1",
        ModelId="gpt-4o-mini",
        Moderation="off",
    )
    assert stack.props("ModelApiKeySecretPolicy")["SecretId"] == {"Ref": "ModelApiKeySecret"}
    assert "BedrockRuntimeInterfaceEndpoint" not in stack.resources


def test_the_openai_provider_with_moderation_reaches_only_the_guardrail_through_the_endpoint(make_stack) -> None:
    stack = make_stack(
        **NETWORK_VARIANTS["vpc-nat"],
        ModelProvider="openai",
        OpenAiBaseUrl="https://llm.example.com/v1",
        ModelId="gpt-4o-mini",
    )
    statements = stack.props("BedrockRuntimeInterfaceEndpoint")["PolicyDocument"]["Statement"]
    assert [(s["Sid"], s["Action"]) for s in statements] == [("OnlyTheConfiguredGuardrail", "bedrock:ApplyGuardrail")]
    assert statements[0]["Resource"] == {"Fn::GetAtt": ["ChatGuardrail", "GuardrailArn"]}


def test_function_roles_carry_the_path_the_deny_statements_name(stack) -> None:
    for function_id in FUNCTIONS:
        role = stack.props(stack.function_role(function_id))
        assert role["Path"] == {"Fn::Sub": "/chatbot/${AWS::StackName}/"}, function_id
    assert FUNCTION_ROLES_PATTERN["Fn::Sub"].endswith(":role/chatbot/${AWS::StackName}/*")


def test_no_deny_statement_in_public_mode(stack) -> None:
    assert not [lid for lid, statement in _statements(stack) if statement["Effect"] == "Deny"]
    assert not stack.of_type("AWS::SecretsManager::ResourcePolicy")


# ------------------------------------------------------------------ flow logs


def test_flow_logs_go_to_a_log_group_encrypted_with_the_stack_key(vpc_stack) -> None:
    flow_log = vpc_stack.props("VpcFlowLog")
    assert flow_log["TrafficType"] == "ALL"
    assert flow_log["LogDestinationType"] == "cloud-watch-logs"
    assert flow_log["LogGroupName"] == {"Ref": "FlowLogGroup"}
    group = vpc_stack.props("FlowLogGroup")
    assert group["KmsKeyId"] == KEY_ARN
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    (admit,) = [
        s
        for s in vpc_stack.props("ChatbotKey")["KeyPolicy"]["Statement"]
        if s.get("Sid") == "AllowCloudWatchLogsForTheFlowLogGroup"
    ]
    arn = admit["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]["Fn::Sub"]
    assert arn.endswith(":log-group:" + group["LogGroupName"]["Fn::Sub"])


def test_flow_log_role_is_assumed_only_by_flow_logs_of_this_account(vpc_stack) -> None:
    role = vpc_stack.props("FlowLogDeliveryRole")
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    (policy,) = role["Policies"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Resource"] == {"Fn::GetAtt": ["FlowLogGroup", "Arn"]}


# ------------------------------------------------------------------ audit trail


def test_no_trail_bucket_or_config_rule_unless_asked(stack) -> None:
    assert not stack.of_type("AWS::CloudTrail::Trail")
    assert not stack.of_type("AWS::Config::ConfigRule")


def test_trail_is_multi_region_validated_encrypted_and_records_the_table(audit_stack) -> None:
    trail = audit_stack.props("AuditTrail")
    assert trail["IsMultiRegionTrail"] is True
    assert trail["IncludeGlobalServiceEvents"] is True
    assert trail["EnableLogFileValidation"] is True
    assert trail["IsLogging"] is True
    assert trail["KMSKeyId"] == KEY_ARN
    assert trail["S3BucketName"] == {"Ref": "AuditTrailBucket"}
    selectors = {s["Name"]: s["FieldSelectors"] for s in trail["AdvancedEventSelectors"]}
    assert {"Field": "eventCategory", "Equals": ["Management"]} in selectors["Management events"]
    assert {"Field": "resources.ARN", "Equals": [TABLE_ARN]} in selectors["Data events of the chat table"]


def test_key_policy_admits_only_this_stacks_trail(audit_stack) -> None:
    statements = [
        s
        for s in audit_stack.props("ChatbotKey")["KeyPolicy"]["Statement"]
        if s["Principal"].get("Service") == "cloudtrail.amazonaws.com"
    ]
    assert len(statements) == 2
    for statement in statements:
        source = statement["Condition"]["StringEquals"]["aws:SourceArn"]["Fn::Sub"]
        assert source.endswith(":trail/${AWS::StackName}-audit")


def test_audit_bucket_is_encrypted_private_versioned_retained_and_logged(audit_stack) -> None:
    bucket = audit_stack.props("AuditTrailBucket")
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY_ARN}
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    (lifecycle,) = bucket["LifecycleConfiguration"]["Rules"]
    assert lifecycle["ExpirationInDays"] == {"Ref": "AuditRetentionDays"}
    assert bucket["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": "AuditAccessLogBucket"}
    for retained in (
        "AuditTrailBucket",
        "AuditTrailBucketPolicy",
        "AuditAccessLogBucket",
        "AuditAccessLogBucketPolicy",
    ):
        assert audit_stack.resources[retained]["DeletionPolicy"] == "Retain", retained
    assert "ObjectLockConfiguration" not in bucket


def _bucket_statements(stack: Stack, policy_id: str) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in stack.props(policy_id)["PolicyDocument"]["Statement"]}


@pytest.mark.parametrize("policy_id", ["AuditTrailBucketPolicy", "AuditAccessLogBucketPolicy"])
def test_audit_buckets_refuse_requests_without_tls(audit_stack, policy_id: str) -> None:
    deny = _bucket_statements(audit_stack, policy_id)["DenyInsecureTransport"]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "s3:*")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.parametrize("policy_id", ["AuditTrailBucketPolicy", "AuditAccessLogBucketPolicy"])
def test_only_the_break_glass_role_deletes_audit_records_or_weakens_the_bucket(audit_stack, policy_id) -> None:
    deny = _bucket_statements(audit_stack, policy_id)["DenyDeletionAndPolicyChangesButToTheBreakGlassRole"]
    assert deny["Effect"] == "Deny"
    assert deny["Principal"] == "*"
    assert {"s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutBucketPolicy", "s3:PutLifecycleConfiguration"} <= set(
        deny["Action"]
    )
    assert deny["Condition"]["ArnNotEquals"] == {"aws:PrincipalArn": {"Ref": "AuditBreakGlassRoleArn"}}
    assert audit_stack.params["AuditBreakGlassRoleArn"] == BREAK_GLASS_ROLE


def test_audit_access_log_bucket_is_private_and_versioned(audit_stack) -> None:
    bucket = audit_stack.props("AuditAccessLogBucket")
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    allow = _bucket_statements(audit_stack, "AuditAccessLogBucketPolicy")["AllowS3ServerAccessLogsOfTheAuditBucket"]
    assert allow["Condition"]["ArnEquals"] == {"aws:SourceArn": {"Fn::GetAtt": ["AuditTrailBucket", "Arn"]}}


def test_object_lock_only_when_asked(make_stack) -> None:
    stack = make_stack(**AUDIT_VARIANTS["audit-config"])
    lock = stack.props("AuditTrailBucket")["ObjectLockConfiguration"]
    assert lock["Rule"]["DefaultRetention"] == {"Mode": "GOVERNANCE", "Days": {"Ref": "AuditObjectLockDays"}}


def _config_rules(stack: Stack) -> set[str]:
    return {
        rule["Properties"]["Source"]["SourceIdentifier"] for rule in stack.of_type("AWS::Config::ConfigRule").values()
    }


def test_config_rules_only_when_the_recorder_is_declared_on(make_stack, audit_stack) -> None:
    assert _config_rules(audit_stack) == set()
    assert _config_rules(make_stack(ConfigRecorderEnabled="true")) == CONFIG_RULES
    in_vpc = make_stack(ConfigRecorderEnabled="true", **NETWORK_VARIANTS["vpc"])
    assert _config_rules(in_vpc) == CONFIG_RULES | {"LAMBDA_INSIDE_VPC"}


def test_prod_configuration_turns_the_audit_trail_on() -> None:
    config = tomllib.loads((REPO_ROOT / "samconfig.toml").read_text(encoding="utf-8"))

    def values(env: str) -> dict[str, str]:
        return parse_overrides(command_parameters(config, env, "deploy")["parameter_overrides"])

    assert values("prod")["EnableAuditTrail"] == "true"
    assert values("default")["EnableAuditTrail"] == "false"


# ------------------------------------------------------------------ SIEM feed


def test_log_subscriptions_cover_application_audit_and_access_logs_only_when_asked(make_stack) -> None:
    assert not make_stack().of_type("AWS::Logs::SubscriptionFilter")
    destination = "arn:aws:logs:eu-west-1:123456789012:destination:siem"
    stack = make_stack(LogDestinationArn=destination)
    filters = stack.of_type("AWS::Logs::SubscriptionFilter").values()
    groups = {f["Properties"]["LogGroupName"]["Ref"] for f in filters}
    assert groups == {"AuthorizerLogGroup", "ChatLogGroup", "SessionCleanupLogGroup", "ApiAccessLogGroup"}
    for subscription in filters:
        assert subscription["Properties"]["DestinationArn"] == {"Ref": "LogDestinationArn"}
        assert "RoleArn" not in subscription["Properties"]


# ------------------------------------------------------------------ the incident-response plan


COMMAND_NAMES = (
    r"--logical-resource-id \"?(\w+)",
    r"\bphys (\w+)",
    r"\bupdate ([A-Z][a-z]\w*)=",
    r"OutputKey=='(\w+)'",
)


def _named_in(path: Path) -> set[str]:
    """Template names a document uses: CamelCase inline code outside fenced blocks, and in the commands
    the logical ids (``--logical-resource-id X``, ``phys X``), ``update X=value`` and ``OutputKey=='X'``."""
    text = path.read_text(encoding="utf-8")
    prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    names = {name for name in re.findall(r"`([A-Z][A-Za-z0-9]+)`", prose) if re.search(r"[a-z][A-Z]", name)}
    for pattern in COMMAND_NAMES:
        names |= set(re.findall(pattern, text))
    return names


@pytest.mark.parametrize("document", ["incident-response.md", "network.md"])
def test_every_resource_and_parameter_the_docs_name_exists_in_the_template(raw, template_text, document) -> None:
    known = set(raw["Parameters"]) | set(raw["Resources"]) | set(raw["Outputs"]) | set(raw["Conditions"])
    known |= set(raw["Rules"]) | set(re.findall(r"Sid: (\w+)", template_text))
    names = _named_in(REPO_ROOT / "docs" / document)
    assert len(names) > 10, document
    assert names <= known, sorted(names - known)


def test_incident_response_commands_name_real_resources_and_parameters(raw) -> None:
    text = (REPO_ROOT / "docs" / "incident-response.md").read_text(encoding="utf-8")
    resources = set(re.findall(r"\bphys (\w+)", text))
    parameters = set(re.findall(r"\bupdate ([A-Z][a-z]\w*)=", text))
    assert {"SessionTokenSecret", "ChatTable", "ChatFunction", "ChatFunctionRole", "ChatbotKey"} <= resources
    assert {"AllowAnonymous", "OidcIssuer", "LogRetentionDays", "AuthorizerCacheTtlSeconds"} <= parameters
    assert resources <= set(raw["Resources"])
    assert parameters <= set(raw["Parameters"])


def test_incident_response_plan_covers_every_scenario() -> None:
    text = (REPO_ROOT / "docs" / "incident-response.md").read_text(encoding="utf-8")
    for heading in (
        "Leaked session-token key",
        "Compromised or misconfigured identity provider",
        "Stolen function role credential",
        "Data exposure from the table or the logs",
        "Model abuse or runaway cost",
        "Vulnerable dependency",
        "Evidence preservation",
        "Notification duties",
        "Before you deploy",
    ):
        assert re.search(rf"^#+ .*{heading}", text, flags=re.MULTILINE | re.IGNORECASE), heading
    assert "72 hours" in text
