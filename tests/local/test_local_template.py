"""Reading template.yaml: CloudFormation tags, intrinsic functions, and what the local API takes from it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from local_kit import REGION, WEB_ORIGIN

from chatbot_local.cloudformation import NO_VALUE, CfnLoader, Resolver, TemplateError, load_template
from chatbot_local.routing import RouteMatch, RouteTable
from chatbot_local.template import RouteSpec, Template, screaming_snake

# --- the YAML loader -----------------------------------------------------------------------------


def test_short_form_tags_become_long_form_intrinsics() -> None:
    text = """
    a: !Ref Thing
    b: !GetAtt Table.Arn
    c: !Sub "${AWS::StackName}-x"
    d: !If [Cond, 1, 2]
    e: !Equals [!Ref P, ""]
    f: !Condition Other
    g: !GetAtt [Role, Arn]
    """
    document = yaml.load(text, Loader=CfnLoader)  # noqa: S506 - CfnLoader is a SafeLoader

    assert document == {
        "a": {"Ref": "Thing"},
        "b": {"Fn::GetAtt": ["Table", "Arn"]},
        "c": {"Fn::Sub": "${AWS::StackName}-x"},
        "d": {"Fn::If": ["Cond", 1, 2]},
        "e": {"Fn::Equals": [{"Ref": "P"}, ""]},
        "f": {"Condition": "Other"},
        "g": {"Fn::GetAtt": ["Role", "Arn"]},
    }


def test_loader_refuses_python_objects() -> None:
    with pytest.raises(yaml.YAMLError):
        yaml.load("a: !!python/object/apply:os.system ['true']", Loader=CfnLoader)  # noqa: S506


def test_missing_template_is_a_template_error(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="template not found"):
        load_template(tmp_path / "template.yaml")


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text("Resources:\n  A: [\n")

    with pytest.raises(TemplateError, match=r"not valid YAML \(line"):
        load_template(path)


def test_template_without_resources_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text("Parameters: {}\n")

    with pytest.raises(TemplateError, match="no Resources"):
        load_template(path)


# --- the resolver --------------------------------------------------------------------------------


def resolver(**parameters: object) -> Resolver:
    template = {
        "Conditions": {
            "HasName": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Name"}, ""]}]},
            "Both": {"Fn::And": [{"Condition": "HasName"}, {"Fn::Equals": ["a", "a"]}]},
            "Either": {"Fn::Or": [{"Fn::Equals": ["a", "b"]}, {"Condition": "HasName"}]},
        },
        "Mappings": {"Sizes": {"small": {"mb": 128}}},
    }
    return Resolver(
        template,
        parameters={"Name": "", **parameters},
        refs={"Table": "local-table"},
        attributes={("Key", "Arn"): "arn:aws:kms:eu-west-1:123456789012:key/k"},
        pseudo={"AWS::StackName": "chatbot-local", "AWS::Region": REGION},
    )


def test_ref_resolves_parameters_resources_and_pseudo_parameters() -> None:
    r = resolver(Name="x")

    assert r.resolve({"Ref": "Name"}) == "x"
    assert r.resolve({"Ref": "Table"}) == "local-table"
    assert r.resolve({"Ref": "AWS::Region"}) == REGION
    assert r.resolve({"Ref": "NotCreatedLocally"}) == "local-NotCreatedLocally"


def test_sub_replaces_refs_attributes_and_keeps_escaped_literals() -> None:
    text = "${AWS::StackName}/${Table}/${Key.Arn}/${!Literal}/${Own}"

    assert resolver().resolve({"Fn::Sub": [text, {"Own": "o"}]}) == (
        "chatbot-local/local-table/arn:aws:kms:eu-west-1:123456789012:key/k/${Literal}/o"
    )


def test_conditions_and_if() -> None:
    value = {"Fn::If": ["HasName", "yes", "no"]}

    assert resolver().resolve(value) == "no"
    assert resolver(Name="x").resolve(value) == "yes"
    assert resolver(Name="x").condition("Both") is True
    assert resolver().condition("Either") is False


def test_no_value_removes_the_property_or_list_item() -> None:
    value = {
        "keep": 1,
        "drop": {"Ref": "AWS::NoValue"},
        "list": [1, {"Fn::If": ["HasName", 2, {"Ref": "AWS::NoValue"}]}],
    }

    assert resolver().resolve(value) == {"keep": 1, "list": [1]}
    assert repr(NO_VALUE) == "AWS::NoValue"


def test_split_select_join_findinmap_base64_tojsonstring() -> None:
    r = resolver(Name="a,b,c")

    assert r.resolve({"Fn::Split": [",", {"Ref": "Name"}]}) == ["a", "b", "c"]
    assert r.resolve({"Fn::Select": [1, {"Fn::Split": [",", {"Ref": "Name"}]}]}) == "b"
    assert r.resolve({"Fn::Join": ["-", ["x", {"Ref": "Table"}]]}) == "x-local-table"
    assert r.resolve({"Fn::FindInMap": ["Sizes", "small", "mb"]}) == 128
    assert r.resolve({"Fn::Base64": "hi"}) == "aGk="
    assert r.resolve({"Fn::ToJsonString": {"a": [1]}}) == '{"a":[1]}'


def test_booleans_compare_as_cloudformation_writes_them() -> None:
    assert resolver(Name="true").resolve({"Fn::Equals": [{"Ref": "Name"}, True]}) is True
    assert resolver(Name="false").resolve({"Fn::Equals": [False, {"Ref": "Name"}]}) is True


def test_the_functions_of_template_rules() -> None:
    r = resolver(Name="b")

    assert r.resolve({"Fn::Contains": [["a", "b"], {"Ref": "Name"}]}) is True
    assert r.resolve({"Fn::Contains": [["a", "c"], {"Ref": "Name"}]}) is False
    assert r.resolve({"Fn::EachMemberEquals": [["b", "b"], {"Ref": "Name"}]}) is True
    assert r.resolve({"Fn::EachMemberIn": [["b", "a"], ["a", "b", "c"]]}) is True
    assert r.resolve({"Fn::EachMemberIn": [["b", "d"], ["a", "b", "c"]]}) is False


def test_a_partial_resolver_evaluates_only_what_the_parameters_decide() -> None:
    r = dataclasses.replace(resolver(Name="a,b"), partial=True)
    value = {
        "chosen": {"Fn::If": ["HasName", {"Ref": "Table"}, "none"]},
        "dropped": {"Fn::If": ["HasName", {"Ref": "AWS::NoValue"}, 1]},
        "split": {"Fn::Split": [",", {"Ref": "Name"}]},
        "kept": {"Fn::Sub": ["${Table}-${Own}", {"Own": {"Fn::If": ["Both", "o", "p"]}}]},
        "attribute": {"Fn::GetAtt": ["Key", "Arn"]},
        "split_of_a_resource": {"Fn::Split": ["/", {"Ref": "Table"}]},
    }

    assert r.resolve(value) == {
        "chosen": {"Ref": "Table"},
        "split": ["a", "b"],
        "kept": {"Fn::Sub": ["${Table}-${Own}", {"Own": "o"}]},
        "attribute": {"Fn::GetAtt": ["Key", "Arn"]},
        "split_of_a_resource": {"Fn::Split": ["/", {"Ref": "Table"}]},
    }
    assert r.conditions() == {"HasName": True, "Both": True, "Either": True}
    assert r.complete().resolve(value["chosen"]) == "local-table"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"Fn::Cidr": ["10.0.0.0/16", 2, 8]}, "not supported"),
        ({"Fn::If": ["HasName", 1]}, "unexpected arguments"),
        ({"Fn::If": ["Unknown", 1, 2]}, "unknown condition"),
        ({"Fn::FindInMap": ["Sizes", "huge", "mb"]}, "no Sizes.huge.mb"),
        ({"Ref": ["not", "a", "name"]}, "Ref takes a name"),
    ],
)
def test_unusable_intrinsics_are_template_errors(value: object, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        resolver().resolve(value)


# --- the project's template ----------------------------------------------------------------------


def test_screaming_snake_names() -> None:
    assert screaming_snake("AllowedOrigins") == "ALLOWED_ORIGINS"
    assert screaming_snake("OidcJwksUrl") == "OIDC_JWKS_URL"
    assert screaming_snake("ApiThrottlingBurstLimit") == "API_THROTTLING_BURST_LIMIT"


def test_parameters_map_to_the_environment_variables_the_functions_read(project_template: Template) -> None:
    names = project_template.parameter_environment_names()

    assert names["AllowedOrigins"] == "ALLOWED_ORIGINS"
    assert names["OidcIssuer"] == "OIDC_ISSUER"
    assert names["LogLevel"] == "POWERTOOLS_LOG_LEVEL"
    assert names["AuthorizerCacheTtlSeconds"] == "AUTHORIZER_CACHE_TTL_SECONDS"


def test_every_design_route_comes_from_the_template(project_template: Template) -> None:
    api = project_template.http_api(project_template.resolver({}, REGION), ())

    assert {route.route_key: route.authorizer for route in api.routes} == {
        "POST /v1/anonymous-sessions": None,
        "POST /v1/sessions": "LambdaAuthorizer",
        "GET /v1/sessions": "LambdaAuthorizer",
        "GET /v1/sessions/{session_id}": "LambdaAuthorizer",
        "DELETE /v1/sessions/{session_id}": "LambdaAuthorizer",
        "POST /v1/sessions/{session_id}/messages": "LambdaAuthorizer",
        "GET /v1/sessions/{session_id}/messages": "LambdaAuthorizer",
        "POST /v1/sessions/{session_id}/stream-tickets": "LambdaAuthorizer",
        "DELETE /v1/admin/users/{subject}": "LambdaAuthorizer",
        "GET /v1/me/export": "LambdaAuthorizer",
        "GET /v1/usage": "LambdaAuthorizer",
        "DELETE /v1/me": "LambdaAuthorizer",
    }
    assert {route.function_id for route in api.routes} == {"ChatFunction"}


def test_the_authorizer_comes_from_the_template(project_template: Template) -> None:
    api = project_template.http_api(project_template.resolver({}, REGION), ())

    authorizer = api.authorizers["LambdaAuthorizer"]
    assert authorizer.function_id == "AuthorizerFunction"
    assert authorizer.identity_sources == ("$request.header.Authorization", "$context.routeKey")
    assert authorizer.ttl_seconds == 300
    assert authorizer.simple_responses is True
    assert authorizer.payload_version == "2.0"


def test_cache_ttl_follows_its_parameter(project_template: Template) -> None:
    environ = {"AUTHORIZER_CACHE_TTL_SECONDS": "0"}

    api = project_template.http_api(project_template.resolver(environ, REGION), ())

    assert api.authorizers["LambdaAuthorizer"].ttl_seconds == 0


def test_cors_comes_from_allowed_origins_and_the_templates_configuration(project_template: Template) -> None:
    environ = {"ALLOWED_ORIGINS": WEB_ORIGIN}

    cors = project_template.http_api(project_template.resolver(environ, REGION), (WEB_ORIGIN,)).cors

    assert cors is not None
    assert cors.allow_origins == (WEB_ORIGIN,)
    assert set(cors.allow_methods) >= {"GET", "POST", "DELETE"}
    assert set(cors.allow_headers) >= {"authorization", "content-type"}
    assert cors.allow_credentials is False


def test_no_allowed_origins_means_no_cors(project_template: Template) -> None:
    assert project_template.http_api(project_template.resolver({}, REGION), ()).cors is None


def test_stage_throttling_comes_from_the_template(project_template: Template) -> None:
    environ = {"API_THROTTLING_BURST_LIMIT": "7", "API_THROTTLING_RATE_LIMIT": "3"}

    throttle = project_template.http_api(project_template.resolver(environ, REGION), ()).default_throttle

    assert throttle is not None
    assert (throttle.burst_limit, throttle.rate_limit) == (7, 3.0)


def test_functions_and_layer_folders_come_from_the_template(project_template: Template) -> None:
    r = project_template.resolver({}, REGION)

    chat = project_template.function("ChatFunction", r)

    assert chat.code_dir == project_template.root / "functions" / "chat"
    assert (chat.module_name, chat.attribute_name) == ("chat.handler", "lambda_handler")
    assert chat.function_name == "chatbot-local-chat"
    assert chat.timeout_seconds > 0
    assert chat.memory_mb >= 128
    assert project_template.layer_dirs(r) == [project_template.root / "layers" / "security"]
    assert project_template.schedule_targets() == ["SessionCleanupFunction"]


def test_unknown_resource_is_a_template_error(project_template: Template) -> None:
    with pytest.raises(TemplateError, match="no AWS::DynamoDB::Table named Missing"):
        project_template.properties("Missing", "AWS::DynamoDB::Table")


def test_jwt_authorizers_are_not_supported_locally(fixture_template: Template) -> None:
    api = fixture_template.properties("ChatApi", "AWS::Serverless::HttpApi")
    api["Auth"]["Authorizers"]["LambdaAuthorizer"] = {"JwtConfiguration": {"issuer": "https://x"}}

    with pytest.raises(TemplateError, match="only Lambda authorizers"):
        fixture_template.http_api(fixture_template.resolver({}, REGION), ())


# --- routing -------------------------------------------------------------------------------------


def route(method: str, path: str) -> RouteSpec:
    return RouteSpec(method, path, "F", None)


def matched(table: RouteTable, method: str, path: str) -> RouteMatch:
    match = table.match(method, path)
    assert match is not None, f"{method} {path} matched no route"
    return match


def test_literal_segments_beat_parameters_and_greedy_paths() -> None:
    table = RouteTable(
        [route("GET", "/v1/{proxy+}"), route("GET", "/v1/sessions/{id}"), route("GET", "/v1/sessions/mine")]
    )

    assert matched(table, "GET", "/v1/sessions/mine").route.path == "/v1/sessions/mine"
    assert matched(table, "GET", "/v1/sessions/abc").path_parameters == {"id": "abc"}
    assert matched(table, "GET", "/v1/a/b/c").path_parameters == {"proxy": "a/b/c"}


def test_exact_method_beats_any() -> None:
    table = RouteTable([route("ANY", "/v1/x"), route("POST", "/v1/x")])

    assert matched(table, "POST", "/v1/x").route.method == "POST"
    assert matched(table, "GET", "/v1/x").route.method == "ANY"


def test_path_parameters_are_percent_decoded_and_never_empty() -> None:
    table = RouteTable([route("GET", "/v1/users/{subject}")])

    assert matched(table, "GET", "/v1/users/auth0%7C123").path_parameters == {"subject": "auth0|123"}
    assert table.match("GET", "/v1/users/") is None
    assert table.match("GET", "/v1/users/a/b") is None


def test_default_route_catches_the_rest() -> None:
    table = RouteTable([route("GET", "/v1/x"), route("ANY", "$default")])

    assert matched(table, "DELETE", "/anything").route.path == "$default"
