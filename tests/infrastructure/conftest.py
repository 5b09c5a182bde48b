"""Shared fixtures for the template assertions (docs/contract.md section 6 rule 11).

The template is read twice:

* raw, with cfn-lint's YAML decoder (it understands ``!Ref``/``!Sub`` and keeps line marks, which
  map the ``# wildcard-allowed: <reason>`` comments to the policy statements they sit in);
* transformed by the SAM translator (what CloudFormation actually deploys: SAM resources become
  ``AWS::Lambda::Function``, ``AWS::ApiGatewayV2::Api`` with an OpenAPI body, permissions, ...),
  then with the template Conditions evaluated for a given set of parameter values, so the tests
  see the stack of one concrete deployment.

``CHATBOT_TEMPLATE_PATH`` may point at another file (used to check that the tests catch a
mutated template); by default the repository's ``template.yaml`` is read.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import boto3
import pytest
from cfnlint.decode import cfn_yaml
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from support.cloudformation import parameter_values as support_parameter_values
from support.stack_variants import AUDIT_VARIANTS, NETWORK_VARIANTS

from chatbot_local.cloudformation import Resolver

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = Path(os.environ.get("CHATBOT_TEMPLATE_PATH", REPO_ROOT / "template.yaml"))
REGION = "eu-west-1"

EDGE_WEB_ACL_ARN = (
    "arn:aws:wafv2:us-east-1:123456789012:global/webacl/chatbot-edge/11111111-2222-3333-4444-555555555555"
)
EDGE_CERTIFICATE_ARN = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
API_CERTIFICATE_ARN = "arn:aws:acm:eu-west-1:123456789012:certificate/66666666-7777-8888-9999-000000000000"

_ALLOW_COMMENT = re.compile(r"#\s*wildcard-allowed:(?P<reason>.*)$")


# --------------------------------------------------------------------------- loading


@cache
def _template_text() -> str:
    return TEMPLATE_PATH.read_text(encoding="utf-8")


@cache
def _raw_nodes() -> Any:
    """The template as cfn-lint decodes it (dict/str nodes that carry line marks)."""
    return cfn_yaml.loads(_template_text(), str(TEMPLATE_PATH))


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value))


class FakeManagedPolicyLoader:
    """The translator asks for AWS managed policies only for SAM-generated roles; there are none."""

    def load(self) -> dict[str, str]:
        return {}


def _sam_transform(raw: dict[str, Any], overrides: dict[str, str]) -> dict[str, Any]:
    template = copy.deepcopy(raw)
    # The translator accepts only S3 locations (sam package puts them there); keep the local path.
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if isinstance(properties.get(key), str):
                properties[key] = f"s3://artifacts/{properties[key].strip('/')}"
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=REGION))
    return translator.translate(
        template,
        parameter_values=dict(overrides),
        get_managed_policy_map=FakeManagedPolicyLoader().load,
    )


def deployment(template: dict[str, Any], overrides: dict[str, str], region: str = REGION) -> Resolver:
    """The template's values for one deployment: parameters at their defaults unless overridden, the
    Region and partition; `partial`, so references to the stack's own resources stay as written."""
    return Resolver(
        template,
        parameters=support_parameter_values(template, overrides, region),
        pseudo={"AWS::Region": region, "AWS::Partition": "aws"},
        partial=True,
    )


def evaluate_conditions(template: dict[str, Any], values: dict[str, str]) -> dict[str, bool]:
    """Every Condition of the template, evaluated for these parameter values."""
    return Resolver(template, parameters=values, partial=True).conditions()


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Statement:
    """One IAM policy statement and the resource (role or policy) that holds it."""

    owner: str
    role: str
    body: dict[str, Any]

    @property
    def sid(self) -> str:
        return str(self.body.get("Sid", ""))

    @property
    def actions(self) -> list[str]:
        action = self.body.get("Action", [])
        return [action] if isinstance(action, str) else list(action)

    @property
    def resources(self) -> list[Any]:
        resource = self.body.get("Resource", [])
        return resource if isinstance(resource, list) else [resource]

    @property
    def resource_patterns(self) -> list[str]:
        """The literal text of each resource ARN (a wildcard can only come from literal text)."""
        return [_literal_text(resource) for resource in self.resources]


def _literal_text(resource: Any) -> str:
    if isinstance(resource, str):
        return resource
    if isinstance(resource, dict) and "Fn::Sub" in resource:
        sub = resource["Fn::Sub"]
        return sub if isinstance(sub, str) else str(sub[0])
    if isinstance(resource, dict) and "Fn::Join" in resource:
        return "".join(_literal_text(part) for part in resource["Fn::Join"][1])
    return ""  # Ref or GetAtt of one resource of this stack


class Stack:
    """The deployed view of the template for one set of parameter values."""

    def __init__(self, raw: dict[str, Any], overrides: dict[str, str]) -> None:
        self.raw = raw
        self.deployment = deployment(raw, overrides)
        self.params: dict[str, str] = dict(self.deployment.parameters)
        self.conditions = self.deployment.conditions()
        transformed = _sam_transform(raw, overrides)
        self.resources: dict[str, dict[str, Any]] = self.deployment.resolve(self._kept(transformed["Resources"]))
        self.outputs: dict[str, Any] = self.deployment.resolve(self._kept(transformed.get("Outputs", {})))

    def _kept(self, section: dict[str, Any]) -> dict[str, Any]:
        return {name: item for name, item in section.items() if self.conditions.get(item.get("Condition", ""), True)}

    def value(self, node: Any) -> Any:
        """What a property built from parameter values (Fn::Join, Fn::Split, Fn::Select, Ref) comes to."""
        return self.deployment.complete().resolve(node)

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {lid: res for lid, res in self.resources.items() if res["Type"] == resource_type}

    def props(self, logical_id: str) -> dict[str, Any]:
        return self.resources[logical_id].get("Properties", {})

    def function_env(self, function_id: str) -> dict[str, Any]:
        return self.props(function_id).get("Environment", {}).get("Variables", {})

    def function_role(self, function_id: str) -> str:
        role = self.props(function_id)["Role"]
        assert isinstance(role, dict), f"{function_id} role is not a role of this stack"
        assert "Fn::GetAtt" in role, f"{function_id} role is not a role of this stack"
        return str(role["Fn::GetAtt"][0])

    def statements(self) -> list[Statement]:
        """Every identity-policy statement attached to a role of this stack."""
        found: list[Statement] = []
        for role_id, role in self.of_type("AWS::IAM::Role").items():
            for policy in role.get("Properties", {}).get("Policies", []):
                for body in policy["PolicyDocument"]["Statement"]:
                    found.append(Statement(role_id, role_id, body))
        for types in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            for policy_id, policy in self.of_type(types).items():
                properties = policy["Properties"]
                for role_ref in properties.get("Roles", []):
                    for body in properties["PolicyDocument"]["Statement"]:
                        found.append(Statement(policy_id, str(role_ref["Ref"]), body))
        return found

    def role_statements(self, role_id: str) -> list[Statement]:
        return [statement for statement in self.statements() if statement.role == role_id]

    def function_statements(self, function_id: str) -> list[Statement]:
        return self.role_statements(self.function_role(function_id))

    def allowed(self, function_id: str, action: str) -> list[Any]:
        """Resources on which the function's role allows the action (unconditionally or not)."""
        return [
            resource
            for statement in self.function_statements(function_id)
            if statement.body.get("Effect") == "Allow" and action in statement.actions
            for resource in statement.resources
        ]

    def api_body(self) -> dict[str, Any]:
        """The HTTP API's OpenAPI body (the WebSocket API has routes of its own: ``websocket_routes``)."""
        (api,) = (api for api in self.of_type("AWS::ApiGatewayV2::Api").values() if "Body" in api["Properties"])
        return dict(api["Properties"]["Body"])

    def routes(self) -> dict[str, dict[str, Any]]:
        return {
            f"{method.upper()} {path}": operation
            for path, operations in self.api_body()["paths"].items()
            for method, operation in operations.items()
        }

    def authorizer(self) -> dict[str, Any]:
        schemes = self.api_body()["components"]["securitySchemes"]
        return dict(schemes["LambdaAuthorizer"]["x-amazon-apigateway-authorizer"])

    def stage(self) -> dict[str, Any]:
        """The HTTP API's stage (the WebSocket API's is ``StreamStage``)."""
        (stage,) = (stage for lid, stage in self.of_type("AWS::ApiGatewayV2::Stage").items() if lid != "StreamStage")
        return dict(stage["Properties"])

    def websocket_routes(self) -> dict[str, dict[str, Any]]:
        """The WebSocket API's routes by route key."""
        return {
            str(route["Properties"]["RouteKey"]): dict(route["Properties"])
            for route in self.of_type("AWS::ApiGatewayV2::Route").values()
            if route["Properties"]["ApiId"] == {"Ref": "StreamApi"}
        }


def _if_true_branch(node: Any) -> Any:
    """A policy written as ``!If [Condition, policy, !Ref AWS::NoValue]`` (a conditional inline policy)."""
    if isinstance(node, dict) and set(node) == {"Fn::If"}:
        return node["Fn::If"][1]
    return node


@dataclass(frozen=True)
class WildcardAllowance:
    owner: str
    sid: str
    reason: str
    line: int


def wildcard_allowances() -> tuple[list[WildcardAllowance], list[int]]:
    """Map each ``# wildcard-allowed: <reason>`` comment to the policy statement it sits in.

    Returns the allowances and the (1-based) lines of comments that sit in no statement.
    """
    comments = {
        number: match.group("reason").strip()
        for number, line in enumerate(_template_text().splitlines())
        if (match := _ALLOW_COMMENT.search(line))
    }
    allowances: list[WildcardAllowance] = []
    placed: set[int] = set()
    for owner, resource in _raw_nodes().get("Resources", {}).items():
        properties = resource.get("Properties", {})
        policies = properties.get("Policies", [])
        # A list of IAM policies; other resource types use "Policies" for other things (Cognito: passwords).
        documents = (
            [policy["PolicyDocument"] for policy in map(_if_true_branch, policies) if isinstance(policy, dict)]
            if isinstance(policies, list)
            else []
        )
        if "PolicyDocument" in properties:
            documents.append(properties["PolicyDocument"])
        for document in documents:
            for statement in document.get("Statement", []):
                start, end = statement.start_mark.line, statement.end_mark.line
                for number, reason in comments.items():
                    if start <= number < end:
                        allowances.append(WildcardAllowance(owner, str(statement.get("Sid", "")), reason, number + 1))
                        placed.add(number)
    return allowances, [number + 1 for number in comments if number not in placed]


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def template_text() -> str:
    return _template_text()


@pytest.fixture(scope="session")
def raw() -> dict[str, Any]:
    """The template as written (plain dicts; intrinsic functions in their long form)."""
    return dict(_plain(_raw_nodes()))


@cache
def _stack(frozen_overrides: tuple[tuple[str, str], ...]) -> Stack:
    return Stack(_plain(_raw_nodes()), dict(frozen_overrides))


@cache
def _translation(frozen_overrides: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    return _sam_transform(_plain(_raw_nodes()), dict(frozen_overrides))


@pytest.fixture(scope="session")
def translate() -> Callable[..., dict[str, Any]]:
    """``translate(ModelProvider="openai")``: the template as the SAM transform turns it into CloudFormation."""

    def build(**overrides: str) -> dict[str, Any]:
        return _translation(tuple(sorted(overrides.items())))

    return build


@pytest.fixture(scope="session")
def conditions_of() -> Callable[[dict[str, Any], dict[str, str]], dict[str, bool]]:
    """``conditions_of(template, parameter_values)``: every Condition of the template, evaluated."""
    return evaluate_conditions


@pytest.fixture(scope="session")
def stack() -> Stack:
    """The stack deployed with every parameter at its default."""
    return _stack(())


@pytest.fixture(scope="session")
def make_stack() -> Callable[..., Stack]:
    """``make_stack(ModelProvider="openai")``: the stack deployed with these parameter values."""

    def build(**overrides: str) -> Stack:
        return _stack(tuple(sorted(overrides.items())))

    return build


@pytest.fixture(scope="session")
def all_stacks(make_stack: Callable[..., Stack]) -> list[Stack]:
    """Deployments that switch every optional part on or off (conditions both ways)."""
    return [
        make_stack(),
        make_stack(
            ModelProvider="openai",
            OpenAiBaseUrl="https://llm.example.com/v1",
            ModelId="gpt-4o-mini",
            AllowedOrigins="https://app.example.com",
            AlarmEmail="ops@example.com",
        ),
        make_stack(ModelProvider="echo", ReservedConcurrency="5", CreateApiGatewayAccountRole="true"),
        make_stack(ModelId="eu.anthropic.claude-haiku-5-5", BedrockGuardrailId="abc123def456"),
        make_stack(
            CreateCognitoUserPool="true",
            CognitoCallbackUrls="https://app.example.com/callback",
            CognitoUserPoolTier="PLUS",
            CognitoAllowSelfSignUp="true",
        ),
        # Edge protection (docs/edge.md): CloudFront and the WAF web ACL, then a custom domain on the API.
        make_stack(
            EdgeProtection="waf",
            EdgeWebAclArn=EDGE_WEB_ACL_ARN,
            DomainName="api.example.com",
            CertificateArn=EDGE_CERTIFICATE_ARN,
            OriginSecretVersion="a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d",
        ),
        make_stack(DomainName="api.example.com", RegionalCertificateArn=API_CERTIFICATE_ARN),
        make_stack(**NETWORK_VARIANTS["vpc"], **AUDIT_VARIANTS["audit"]),
        make_stack(**NETWORK_VARIANTS["vpc-existing"]),
    ]


EDGE_TEMPLATE_PATH = REPO_ROOT / "edge" / "template.yaml"


@cache
def _edge_raw() -> dict[str, Any]:
    return dict(_plain(cfn_yaml.loads(EDGE_TEMPLATE_PATH.read_text(encoding="utf-8"), str(EDGE_TEMPLATE_PATH))))


@dataclass(frozen=True)
class EdgeStack:
    """edge/template.yaml (plain CloudFormation, no transform) deployed with some parameter values."""

    raw: dict[str, Any]
    params: dict[str, str]
    resources: dict[str, dict[str, Any]]

    def props(self, logical_id: str) -> dict[str, Any]:
        return dict(self.resources[logical_id].get("Properties", {}))


@cache
def _edge_stack(frozen_overrides: tuple[tuple[str, str], ...]) -> EdgeStack:
    raw = _edge_raw()
    edge = deployment(raw, dict(frozen_overrides), region="us-east-1")
    conditions = edge.conditions()
    kept = {
        logical_id: resource
        for logical_id, resource in raw["Resources"].items()
        if conditions.get(resource.get("Condition", ""), True)
    }
    return EdgeStack(raw, dict(edge.parameters), edge.resolve(kept))


@pytest.fixture(scope="session")
def edge_raw() -> dict[str, Any]:
    return _edge_raw()


@pytest.fixture(scope="session")
def make_edge_stack() -> Callable[..., EdgeStack]:
    """``make_edge_stack(BlockedCountryCodes="KP")``: the edge stack deployed with these parameter values."""

    def build(**overrides: str) -> EdgeStack:
        return _edge_stack(tuple(sorted(overrides.items())))

    return build


@pytest.fixture(scope="session")
def allowances() -> list[WildcardAllowance]:
    return wildcard_allowances()[0]


@pytest.fixture(scope="session")
def stray_allowance_lines() -> list[int]:
    return wildcard_allowances()[1]
