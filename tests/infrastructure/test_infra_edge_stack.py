"""The edge stack (edge/template.yaml, us-east-1; docs/edge.md): the CLOUDFRONT web ACL, its rules and
their order, the per-IP rate limit, the body-size rule, and logging with the authorization header redacted."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from deploy import command_parameters, parse_overrides

LISTS = {
    "EnableAnonymousIpList": "true",
    "BlockedCountryCodes": "KP,IR",
    "AllowedIpv4Cidrs": "203.0.113.0/24",
    "BlockedIpv4Cidrs": "198.51.100.0/24,192.0.2.0/24",
}
DEFAULT_ORDER = [
    "RateLimitPerIp",
    "BodySizeLimit",
    "AWS-AWSManagedRulesAmazonIpReputationList",
    "AWS-AWSManagedRulesKnownBadInputsRuleSet",
    "AWS-AWSManagedRulesCommonRuleSet",
    "CoreBodyRulesOutsideTheMessageRoute",
]
REPO_ROOT = Path(__file__).resolve().parents[2]
# The EdgeStack of conftest.py: resources, props(), params.
EdgeStack = Any
CORE_BODY_RULES = {"CrossSiteScripting_BODY", "GenericLFI_BODY", "GenericRFI_BODY", "EC2MetaDataSSRF_BODY"}


@pytest.fixture(scope="module")
def edge(make_edge_stack: Callable[..., EdgeStack]) -> EdgeStack:
    return make_edge_stack()


def web_acl(stack: EdgeStack) -> dict[str, Any]:
    return stack.props("WebAcl")


def rules(stack: EdgeStack) -> list[dict[str, Any]]:
    return sorted(web_acl(stack)["Rules"], key=lambda rule: int(rule["Priority"]))


def rule(stack: EdgeStack, name: str) -> dict[str, Any]:
    (found,) = [item for item in rules(stack) if item["Name"] == name]
    return found


def test_the_web_acl_is_cloudfront_scoped_and_allows_by_default(edge: EdgeStack) -> None:
    acl = web_acl(edge)
    assert acl["Scope"] == "CLOUDFRONT"
    assert acl["DefaultAction"] == {"Allow": {}}


def test_the_edge_stack_deploys_only_to_us_east_1(edge_raw: dict[str, Any]) -> None:
    (assertion,) = edge_raw["Rules"]["UsEast1Only"]["Assertions"]
    assert assertion["Assert"] == {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}


def test_rules_run_cheapest_first_then_the_managed_groups(edge: EdgeStack) -> None:
    assert [item["Name"] for item in rules(edge)] == DEFAULT_ORDER


def test_the_optional_lists_come_first_and_the_anonymous_list_before_the_core_rules(
    make_edge_stack: Callable[..., EdgeStack],
) -> None:
    names = [item["Name"] for item in rules(make_edge_stack(**LISTS))]
    assert names[:3] == ["OnlyAllowedIps", "BlockedIps", "BlockedCountries"]
    assert names.index("AWS-AWSManagedRulesAnonymousIpList") < names.index("AWS-AWSManagedRulesCommonRuleSet")
    assert len({item["Priority"] for item in rules(make_edge_stack(**LISTS))}) == len(names)


def test_ip_lists_and_countries_exist_only_when_set(edge: EdgeStack, make_edge_stack: Callable[..., EdgeStack]) -> None:
    assert "AllowedIpSet" not in edge.resources
    assert "BlockedIpSet" not in edge.resources
    listed = make_edge_stack(**LISTS)
    assert listed.props("BlockedIpSet")["Addresses"] == ["198.51.100.0/24", "192.0.2.0/24"]
    assert listed.props("AllowedIpSet")["Scope"] == "CLOUDFRONT"
    assert rule(listed, "BlockedCountries")["Statement"]["GeoMatchStatement"]["CountryCodes"] == ["KP", "IR"]
    only_allowed = rule(listed, "OnlyAllowedIps")["Statement"]
    assert only_allowed["NotStatement"]["Statement"]["IPSetReferenceStatement"]["Arn"] == {
        "Fn::GetAtt": ["AllowedIpSet", "Arn"]
    }


def test_the_rate_limit_counts_each_client_ip(edge: EdgeStack) -> None:
    limit = rule(edge, "RateLimitPerIp")
    assert limit["Statement"]["RateBasedStatement"] == {
        "AggregateKeyType": "IP",
        "Limit": {"Ref": "RateLimitPerIp"},
        "EvaluationWindowSec": {"Ref": "RateLimitWindowSeconds"},
    }
    assert limit["Action"]["Block"]["CustomResponse"]["ResponseCode"] == 429


def test_the_body_size_rule_matches_max_body_bytes_and_blocks_what_it_cannot_inspect(edge: EdgeStack) -> None:
    size = rule(edge, "BodySizeLimit")["Statement"]["SizeConstraintStatement"]
    assert size["FieldToMatch"] == {"Body": {"OversizeHandling": "MATCH"}}
    assert size["ComparisonOperator"] == "GT"
    assert size["Size"] == {"Ref": "MaxBodyBytes"}
    assert web_acl(edge)["AssociationConfig"]["RequestBody"]["CLOUDFRONT"]["DefaultSizeInspectionLimit"] == "KB_16"


def test_max_body_bytes_stays_within_the_inspection_limit_and_matches_the_main_stack(
    edge_raw: dict[str, Any], raw: dict[str, Any]
) -> None:
    parameter = edge_raw["Parameters"]["MaxBodyBytes"]
    assert parameter["MaxValue"] == 16384
    assert parameter["Default"] == raw["Parameters"]["MaxBodyBytes"]["Default"]


def test_the_managed_groups_an_api_needs_are_on(edge: EdgeStack) -> None:
    groups = {
        item["Statement"]["ManagedRuleGroupStatement"]["Name"]
        for item in rules(edge)
        if "ManagedRuleGroupStatement" in item["Statement"]
    }
    assert groups == {
        "AWSManagedRulesAmazonIpReputationList",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesCommonRuleSet",
    }


def test_the_core_body_rules_only_count_and_size_is_left_to_our_rule(edge: EdgeStack) -> None:
    core = rule(edge, "AWS-AWSManagedRulesCommonRuleSet")["Statement"]["ManagedRuleGroupStatement"]
    overrides = {item["Name"]: item["ActionToUse"] for item in core["RuleActionOverrides"]}
    assert overrides == {name: {"Count": {}} for name in {*CORE_BODY_RULES, "SizeRestrictions_BODY"}}


def test_the_core_body_rules_still_block_outside_the_message_route(edge: EdgeStack) -> None:
    block = rule(edge, "CoreBodyRulesOutsideTheMessageRoute")
    labels, outside = block["Statement"]["AndStatement"]["Statements"]
    keys = {item["LabelMatchStatement"]["Key"] for item in labels["OrStatement"]["Statements"]}
    assert keys == {f"awswaf:managed:aws:core-rule-set:{name.removesuffix('_BODY')}_Body" for name in CORE_BODY_RULES}
    method, path = outside["NotStatement"]["Statement"]["AndStatement"]["Statements"]
    assert method["ByteMatchStatement"]["SearchString"] == "POST"
    assert method["ByteMatchStatement"]["PositionalConstraint"] == "EXACTLY"
    assert path["RegexMatchStatement"]["RegexString"] == "^/v1/sessions/[0-9a-fA-F-]{36}/messages$"
    assert "Block" in block["Action"]


def test_waf_logs_redact_the_authorization_header(edge: EdgeStack) -> None:
    logging = edge.props("WebAclLogging")
    assert {"SingleHeader": {"Name": "authorization"}} in logging["RedactedFields"]
    assert logging["ResourceArn"] == {"Fn::GetAtt": ["WebAcl", "Arn"]}


def test_waf_logs_keep_blocked_and_counted_requests_unless_every_request_is_asked_for(
    edge: EdgeStack, make_edge_stack: Callable[..., EdgeStack]
) -> None:
    (kept,) = edge.props("WebAclLogging")["LoggingFilter"]["Filters"]
    assert edge.props("WebAclLogging")["LoggingFilter"]["DefaultBehavior"] == "DROP"
    assert {c["ActionCondition"]["Action"] for c in kept["Conditions"]} == {"BLOCK", "COUNT"}
    assert "LoggingFilter" not in make_edge_stack(LogAllowedRequests="true").props("WebAclLogging")


def test_waf_logs_go_to_an_encrypted_aws_waf_logs_group_with_retention(edge: EdgeStack) -> None:
    group = edge.props("WafLogGroup")
    assert group["LogGroupName"] == {"Fn::Sub": "aws-waf-logs-${AWS::StackName}"}
    assert group["KmsKeyId"] == {"Fn::GetAtt": ["EdgeKey", "Arn"]}
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    (destination,) = edge.props("WebAclLogging")["LogDestinationConfigs"]
    assert destination["Fn::Sub"].endswith(":log-group:${WafLogGroup}")


def test_the_edge_key_rotates_and_admits_logs_for_the_waf_log_group_only(edge: EdgeStack) -> None:
    key = edge.props("EdgeKey")
    assert key["EnableKeyRotation"] is True
    statements = key["KeyPolicy"]["Statement"]
    for statement in statements:
        assert statement["Principal"] != "*"
        assert statement["Principal"].get("AWS") != "*"
    (logs,) = [s for s in statements if s["Sid"] == "AllowCloudWatchLogsForTheWafLogGroup"]
    arn = logs["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]["Fn::Sub"]
    assert arn.endswith(":log-group:aws-waf-logs-${AWS::StackName}")


def test_the_edge_stack_creates_no_iam(edge: EdgeStack) -> None:
    assert not [lid for lid, res in edge.resources.items() if res["Type"].startswith("AWS::IAM::")]


def test_prod_turns_the_edge_on_and_the_edge_environment_targets_us_east_1() -> None:
    config = tomllib.loads((REPO_ROOT / "samconfig.toml").read_text())
    assert (
        parse_overrides(command_parameters(config, "prod", "deploy")["parameter_overrides"])["EdgeProtection"] == "waf"
    )
    assert config["edge"]["deploy"]["parameters"]["region"] == "us-east-1"
    assert (
        parse_overrides(command_parameters(config, "default", "deploy")["parameter_overrides"])["EdgeProtection"]
        == "none"
    )
