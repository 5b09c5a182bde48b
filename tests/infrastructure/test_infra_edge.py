"""Edge protection (docs/edge.md): CloudFront, the WAF web ACL parameter, the origin secret, custom
domains and per-route throttles, for both values of EdgeProtection, with and without a custom domain."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

WEB_ACL = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/chatbot-edge/11111111-2222-3333-4444-555555555555"
EDGE_CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
API_CERTIFICATE = "arn:aws:acm:eu-west-1:123456789012:certificate/66666666-7777-8888-9999-000000000000"
DOMAIN = "api.example.com"
EDGE = {"EdgeProtection": "waf", "EdgeWebAclArn": WEB_ACL, "DomainName": DOMAIN, "CertificateArn": EDGE_CERTIFICATE}
API_DOMAIN = {"DomainName": DOMAIN, "RegionalCertificateArn": API_CERTIFICATE}
MESSAGE_ROUTE = "POST /v1/sessions/{session_id}/messages"
SESSION_ROUTE = "POST /v1/sessions"
EDGE_TYPES = {
    "AWS::CloudFront::Distribution",
    "AWS::CloudFront::ResponseHeadersPolicy",
    "AWS::S3::Bucket",
    "AWS::S3::BucketPolicy",
}
# The managed policies the issue names (IDs are the same in every account).
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_EXCEPT_HOST_HEADER = "b689b0a8-53d0-40ab-baf2-68738e2966ac"


@pytest.fixture(scope="module")
def edge(make_stack: Callable[..., Any]) -> Any:
    return make_stack(**EDGE)


@pytest.fixture(scope="module")
def api_domain(make_stack: Callable[..., Any]) -> Any:
    return make_stack(**API_DOMAIN)


def distribution(stack: Any) -> dict[str, Any]:
    (found,) = stack.of_type("AWS::CloudFront::Distribution").values()
    config: dict[str, Any] = found["Properties"]["DistributionConfig"]
    return config


def text(value: Any) -> str:
    """The literal text of a !Sub (or a plain string)."""
    if isinstance(value, dict) and "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return str(sub if isinstance(sub, str) else sub[0])
    return str(value)


# ------------------------------------------------------------------ on and off


@pytest.mark.parametrize("overrides", [{}, API_DOMAIN], ids=["no-domain", "api-domain"])
def test_no_edge_resource_exists_with_the_edge_off(make_stack: Callable[..., Any], overrides: dict[str, str]) -> None:
    stack = make_stack(**overrides)
    assert not {resource["Type"] for resource in stack.resources.values()} & EDGE_TYPES
    assert "EdgeOriginSecret" not in stack.resources
    assert not [s for s in stack.statements() if "Origin" in s.sid]
    assert stack.params["EdgeProtection"] == "none"
    assert stack.function_env("ChatFunction")["EDGE_ORIGIN_SECRET_ARN"] == ""


def test_the_edge_adds_a_distribution_its_policies_its_log_bucket_and_the_origin_secret(edge: Any) -> None:
    assert {resource["Type"] for resource in edge.resources.values()} >= EDGE_TYPES
    assert edge.resources["EdgeOriginSecret"]["Type"] == "AWS::SecretsManager::Secret"


@pytest.mark.parametrize("function_id", ["AuthorizerFunction", "ChatFunction"])
def test_the_functions_check_the_origin_header_with_the_edge_on(edge: Any, function_id: str) -> None:
    environment = edge.function_env(function_id)
    assert environment["EDGE_PROTECTION"] == {"Ref": "EdgeProtection"}
    assert environment["EDGE_ORIGIN_SECRET_ARN"] == {"Ref": "EdgeOriginSecret"}


# ------------------------------------------------------------------ distribution


def test_the_distribution_refuses_plain_http(edge: Any) -> None:
    assert distribution(edge)["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "https-only"


def test_the_distribution_requires_tls_1_2_on_the_custom_domain(edge: Any) -> None:
    config = distribution(edge)
    assert config["ViewerCertificate"] == {
        "AcmCertificateArn": {"Ref": "CertificateArn"},
        "SslSupportMethod": "sni-only",
        "MinimumProtocolVersion": "TLSv1.2_2021",
    }
    assert config["Aliases"] == [{"Ref": "DomainName"}]


def test_the_distribution_caches_nothing_and_forwards_everything_but_host(edge: Any) -> None:
    behavior = distribution(edge)["DefaultCacheBehavior"]
    assert behavior["CachePolicyId"] == CACHING_DISABLED
    assert behavior["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST_HEADER
    assert behavior["Compress"] is False
    assert set(behavior["AllowedMethods"]) >= {"GET", "POST", "DELETE", "OPTIONS"}
    assert "ForwardedValues" not in behavior


def test_the_distribution_is_protected_by_the_edge_stacks_web_acl(edge: Any) -> None:
    assert distribution(edge)["WebACLId"] == {"Ref": "EdgeWebAclArn"}


def test_the_origin_is_this_http_api_over_tls_1_2(edge: Any) -> None:
    (origin,) = distribution(edge)["Origins"]
    assert text(origin["DomainName"]) == "${ChatApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"
    assert origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert origin["CustomOriginConfig"]["OriginSSLProtocols"] == ["TLSv1.2"]


def test_the_origin_header_comes_from_the_origin_secret_by_dynamic_reference(edge: Any) -> None:
    (origin,) = distribution(edge)["Origins"]
    (custom,) = origin["OriginCustomHeaders"]
    assert custom["HeaderName"] == "X-Origin-Verify"
    assert text(custom["HeaderValue"]).startswith("{{resolve:secretsmanager:${EdgeOriginSecret}:SecretString")


def test_the_origin_secret_version_parameter_pins_the_reference(make_stack: Callable[..., Any]) -> None:
    version = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
    (origin,) = distribution(make_stack(**EDGE, OriginSecretVersion=version))["Origins"]
    value = text(origin["OriginCustomHeaders"][0]["HeaderValue"])
    assert value == "{{resolve:secretsmanager:${EdgeOriginSecret}:SecretString:::${OriginSecretVersion}}}"


def test_responses_get_hsts_nosniff_no_framing_and_no_referrer(edge: Any) -> None:
    (policy,) = edge.of_type("AWS::CloudFront::ResponseHeadersPolicy").values()
    headers = policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert headers["StrictTransportSecurity"]["Override"] is True
    assert headers["ContentTypeOptions"] == {"Override": True}
    assert headers["FrameOptions"] == {"FrameOption": "DENY", "Override": True}
    assert headers["ReferrerPolicy"]["ReferrerPolicy"] == "no-referrer"
    assert distribution(edge)["DefaultCacheBehavior"]["ResponseHeadersPolicyId"] == {"Ref": "EdgeResponseHeadersPolicy"}


# ------------------------------------------------------------------ logging


def test_standard_logs_go_to_the_log_bucket_without_cookies(edge: Any) -> None:
    logging = distribution(edge)["Logging"]
    assert logging["Bucket"] == {"Fn::GetAtt": ["EdgeLogBucket", "DomainName"]}
    assert logging["IncludeCookies"] is False


def test_the_log_bucket_is_encrypted_with_the_cmk_private_and_expires_logs(edge: Any) -> None:
    bucket = edge.props("EdgeLogBucket")
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": {"Fn::GetAtt": ["ChatbotKey", "Arn"]},
    }
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    (lifecycle,) = bucket["LifecycleConfiguration"]["Rules"]
    assert lifecycle["ExpirationInDays"] == {"Ref": "LogRetentionDays"}


def test_the_log_bucket_refuses_plain_http(edge: Any) -> None:
    (statement,) = edge.props("EdgeLogBucketPolicy")["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_key_admits_log_delivery_only_with_the_edge(stack: Any, edge: Any) -> None:
    def sids(deployed: Any) -> set[str]:
        return {s.get("Sid") for s in deployed.props("ChatbotKey")["KeyPolicy"]["Statement"]}

    assert "AllowCloudFrontLogDeliveryToTheEncryptedLogBucket" in sids(edge)
    assert "AllowCloudFrontLogDeliveryToTheEncryptedLogBucket" not in sids(stack)
    (statement,) = [
        s
        for s in edge.props("ChatbotKey")["KeyPolicy"]["Statement"]
        if s.get("Sid") == "AllowCloudFrontLogDeliveryToTheEncryptedLogBucket"
    ]
    assert statement["Principal"] == {"Service": "delivery.logs.amazonaws.com"}
    assert statement["Action"] == "kms:GenerateDataKey"


# ------------------------------------------------------------------ origin secret and roles


def test_the_origin_secret_is_generated_and_encrypted_with_the_cmk(edge: Any) -> None:
    secret = edge.props("EdgeOriginSecret")
    assert "SecretString" not in secret
    assert secret["GenerateSecretString"]["PasswordLength"] >= 32
    assert secret["KmsKeyId"] == {"Fn::GetAtt": ["ChatbotKey", "Arn"]}


@pytest.mark.parametrize("function_id", ["AuthorizerFunction", "ChatFunction"])
def test_the_checking_functions_read_the_origin_secret(edge: Any, function_id: str) -> None:
    assert {"Ref": "EdgeOriginSecret"} in edge.allowed(function_id, "secretsmanager:GetSecretValue")


def test_the_cleanup_function_never_reads_the_origin_secret(edge: Any) -> None:
    assert {"Ref": "EdgeOriginSecret"} not in edge.allowed("SessionCleanupFunction", "secretsmanager:GetSecretValue")


def test_the_authorizer_decrypts_the_origin_secret_only_through_secrets_manager(edge: Any) -> None:
    (statement,) = [
        s for s in edge.function_statements("AuthorizerFunction") if s.sid == "DecryptOriginSecretViaSecretsManager"
    ]
    conditions = statement.body["Condition"]["StringEquals"]
    assert conditions["kms:EncryptionContext:SecretARN"] == {"Ref": "EdgeOriginSecret"}
    assert "secretsmanager" in text(conditions["kms:ViaService"])


# ------------------------------------------------------------------ authorizer cache


def test_the_authorizer_result_cache_is_off_with_the_edge(stack: Any, edge: Any) -> None:
    # SAM takes the identity sources as a fixed list, so the origin header cannot join the cache key:
    # a cached allow would serve a direct call. With the edge, every request reaches the authorizer.
    assert edge.authorizer()["authorizerResultTtlInSeconds"] == 0
    assert stack.authorizer()["authorizerResultTtlInSeconds"] == {"Ref": "AuthorizerCacheTtlSeconds"}


# ------------------------------------------------------------------ custom domains


def test_a_custom_domain_without_the_edge_sits_on_the_http_api_with_tls_1_2(api_domain: Any) -> None:
    (configuration,) = api_domain.props("ApiDomainName")["DomainNameConfigurations"]
    assert configuration == {
        "CertificateArn": {"Ref": "RegionalCertificateArn"},
        "EndpointType": "REGIONAL",
        "SecurityPolicy": "TLS_1_2",
    }
    assert api_domain.props("ApiDomainMapping")["ApiId"] == {"Ref": "ChatApi"}


def execute_api_disabled(stack: Any) -> Any:
    (server,) = stack.api_body()["servers"]
    return server["x-amazon-apigateway-endpoint-configuration"]["disableExecuteApiEndpoint"]


def test_the_execute_api_endpoint_is_disabled_behind_the_api_domain(api_domain: Any) -> None:
    assert execute_api_disabled(api_domain) is True


@pytest.mark.parametrize("variant", ["default", "edge"])
def test_the_execute_api_endpoint_stays_where_it_is_the_only_way_in(stack: Any, edge: Any, variant: str) -> None:
    # Without a domain it is the API's address; with the edge it is CloudFront's origin.
    assert execute_api_disabled(edge if variant == "edge" else stack) is False


def test_the_edge_puts_no_custom_domain_on_the_http_api(edge: Any) -> None:
    assert not edge.of_type("AWS::ApiGatewayV2::DomainName")


def test_the_client_url_is_the_custom_domain_when_there_is_one(stack: Any, edge: Any, api_domain: Any) -> None:
    assert text(edge.outputs["ClientUrl"]["Value"]) == "https://${DomainName}/"
    assert text(api_domain.outputs["ClientUrl"]["Value"]) == "https://${DomainName}/"
    assert "execute-api" in text(stack.outputs["ClientUrl"]["Value"])
    assert "EdgeDistributionDomainName" in edge.outputs
    assert "ApiCustomDomainTarget" in api_domain.outputs


# ------------------------------------------------------------------ per-route throttles


def test_route_throttles_default_to_the_stage_values(stack: Any) -> None:
    settings = stack.stage()["RouteSettings"]
    for route in (MESSAGE_ROUTE, SESSION_ROUTE):
        assert settings[route] == {
            "ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"},
            "ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"},
        }


def test_route_throttles_take_their_parameters_when_set(make_stack: Callable[..., Any]) -> None:
    settings = make_stack(
        MessagePostThrottlingBurstLimit="5",
        MessagePostThrottlingRateLimit="2",
        SessionCreateThrottlingBurstLimit="3",
        SessionCreateThrottlingRateLimit="1",
    ).stage()["RouteSettings"]
    assert settings[MESSAGE_ROUTE] == {
        "ThrottlingBurstLimit": {"Ref": "MessagePostThrottlingBurstLimit"},
        "ThrottlingRateLimit": {"Ref": "MessagePostThrottlingRateLimit"},
    }
    assert settings[SESSION_ROUTE]["ThrottlingBurstLimit"] == {"Ref": "SessionCreateThrottlingBurstLimit"}


def test_route_throttles_name_real_routes(stack: Any) -> None:
    assert set(stack.stage()["RouteSettings"]) <= set(stack.routes())


# ------------------------------------------------------------------ rules


def _value(node: Any, params: dict[str, str]) -> Any:
    if isinstance(node, dict) and set(node) == {"Ref"}:
        return params[node["Ref"]]
    if isinstance(node, list):
        return [_value(item, params) for item in node]
    return node


def _holds(node: Any, params: dict[str, str]) -> bool:
    ((name, args),) = node.items()
    if name == "Fn::Equals":
        return bool(_value(args[0], params) == _value(args[1], params))
    if name == "Fn::Not":
        return not _holds(args[0], params)
    if name == "Fn::And":
        return all(_holds(item, params) for item in args)
    if name == "Fn::Or":
        return any(_holds(item, params) for item in args)
    if name == "Fn::Contains":
        return _value(args[1], params) in _value(args[0], params)
    raise ValueError(name)


def refused_by_rules(raw: dict[str, Any], **overrides: str) -> list[str]:
    """The AssertDescriptions CloudFormation would answer a deployment with these parameters."""
    # A stack someone can sign in to (rule SomeoneCanSignIn), so that only the edge rules are in question.
    params = {name: str(spec.get("Default", "")) for name, spec in raw["Parameters"].items()}
    params |= {"AllowAnonymous": "true"} | overrides
    params |= {"AWS::Region": "eu-west-1", "AWS::Partition": "aws"}
    failures = []
    for rule in raw["Rules"].values():
        if "RuleCondition" in rule and not _holds(rule["RuleCondition"], params):
            continue
        failures += [item["AssertDescription"] for item in rule["Assertions"] if not _holds(item["Assert"], params)]
    return failures


def test_the_edge_with_its_web_acl_and_domain_is_accepted(raw: dict[str, Any]) -> None:
    assert refused_by_rules(raw, **EDGE) == []


@pytest.mark.parametrize("missing", ["EdgeWebAclArn", "DomainName", "CertificateArn"])
def test_the_edge_is_refused_without_its_web_acl_domain_or_certificate(raw: dict[str, Any], missing: str) -> None:
    failures = refused_by_rules(raw, **{**EDGE, missing: ""})
    assert len(failures) == 1
    assert missing in failures[0]


def test_the_edge_is_refused_with_bodies_larger_than_waf_inspects(raw: dict[str, Any]) -> None:
    assert refused_by_rules(raw, **EDGE, MaxBodyBytes="32768")
    assert refused_by_rules(raw, MaxBodyBytes="32768") == []


def test_an_api_domain_is_refused_without_its_regional_certificate(raw: dict[str, Any]) -> None:
    assert refused_by_rules(raw, DomainName=DOMAIN)
    assert refused_by_rules(raw, **API_DOMAIN) == []
