"""samconfig.toml and `make deploy`: every setting of an environment reaches the stack, or nothing is deployed.

On a stack update SAM CLI sends UsePreviousValue for every parameter it is not given, and
--parameter-overrides on the command line replaces the file's list: so each environment lists every
parameter, in one place that `sam build` and `sam deploy` both read, and the deploy script refuses a list
that is incomplete, still holds placeholders, or gives the build and the deploy different Architectures.
"""

from __future__ import annotations

import re
import shutil
import sys
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from deploy import (
    ConfigError,
    check_built_architecture,
    check_environment,
    check_model,
    command_parameters,
    default_model_profiles,
    deploy,
    deployed_model,
    parse_overrides,
    run,
    smoke_arguments,
    template_parameters,
)
from support.cloudformation import dangling_references, parameter_values, parameter_violations, refusing_rules

ROOT = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
ENVIRONMENTS = ("default", "prod")
# What a deployer puts in place of prod's placeholders.
FILLED = {
    "OidcIssuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123",
    "OidcAudience": "4example0client0id",
    "AllowedOrigins": "https://chat.example.com",
    "AlarmEmail": "ops@example.com",
    "EdgeWebAclArn": "arn:aws:wafv2:us-east-1:123456789012:global/webacl/edge/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    "DomainName": "chat-api.example.com",
    "CertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
    "AuditBreakGlassRoleArn": "arn:aws:iam::123456789012:role/audit-break-glass",
}


def _config() -> dict[str, Any]:
    return tomllib.loads((ROOT / "samconfig.toml").read_text(encoding="utf-8"))


def _values(env: str) -> dict[str, str]:
    return parse_overrides(command_parameters(_config(), env, "deploy")["parameter_overrides"])


@pytest.fixture(scope="module")
def parameters() -> list[str]:
    return template_parameters(ROOT / "template.yaml")


def recorded_in(commands: list[Sequence[str]]) -> Callable[[Sequence[str]], str]:
    """A deploy runner that records each command instead of running it, and prints nothing."""

    def run(command: Sequence[str]) -> str:
        commands.append(command)
        return ""

    return run


def test_the_template_parameters_are_read_from_the_template(raw: dict[str, Any], parameters: list[str]) -> None:
    assert parameters == list(raw["Parameters"])


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_environment_lists_every_template_parameter_once(env: str, parameters: list[str]) -> None:
    assert sorted(_values(env)) == sorted(parameters)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_build_and_deploy_read_the_same_parameter_list(env: str) -> None:
    config = _config()
    build = command_parameters(config, env, "build")["parameter_overrides"]
    assert build == command_parameters(config, env, "deploy")["parameter_overrides"]
    for command in ("build", "deploy"):
        assert "parameter_overrides" not in config[env].get(command, {}).get("parameters", {}), command


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_environment_names_its_region_and_profile(env: str) -> None:
    deploy_settings = command_parameters(_config(), env, "deploy")
    assert deploy_settings["region"]
    assert deploy_settings["profile"]
    # Not global: `sam build` and `sam validate` fail on a profile that the machine does not have.
    assert "profile" not in _config()[env]["global"]["parameters"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_by_hand_deploys_confirm_the_change_set(env: str) -> None:
    # The scripted deploy passes --no-confirm-changeset (test_the_deploy_runs_..._in_order).
    assert command_parameters(_config(), env, "deploy")["confirm_changeset"] is True


def test_the_development_environment_deploys_as_committed(
    raw: dict[str, Any], translate: Callable[..., dict[str, Any]], conditions_of: Callable[..., Any], parameters
) -> None:
    values = _values("default")
    assert check_environment(_config(), "default", parameters) == values
    resolved = parameter_values(raw, values, REGION)
    assert parameter_violations(raw, resolved) == {}
    assert refusing_rules(raw, resolved) == {}
    translated = translate(**values)
    assert dangling_references(translated, conditions_of(translated, resolved), resolved) == []


def test_every_production_placeholder_is_refused_by_its_parameter_constraint(raw: dict[str, Any]) -> None:
    values = _values("prod")
    placeholders = {name for name, value in values.items() if "REPLACE_ME" in value}
    assert placeholders == set(FILLED)
    violations = parameter_violations(raw, parameter_values(raw, values, REGION))
    assert set(violations) == placeholders


def test_the_production_environment_is_refused_by_the_deploy_script_until_filled(parameters) -> None:
    with pytest.raises(ConfigError, match="placeholders") as refused:
        check_environment(_config(), "prod", parameters)
    for name in FILLED:
        assert name in str(refused.value)


def test_the_production_environment_deploys_once_filled(
    raw: dict[str, Any], translate: Callable[..., dict[str, Any]], conditions_of: Callable[..., Any]
) -> None:
    values = {**_values("prod"), **FILLED}
    resolved = parameter_values(raw, values, REGION)
    assert parameter_violations(raw, resolved) == {}
    assert refusing_rules(raw, resolved) == {}
    translated = translate(**values)
    assert dangling_references(translated, conditions_of(translated, resolved), resolved) == []


def test_production_keeps_its_hardening_settings() -> None:
    values = _values("prod")
    assert values["AllowAnonymous"] == "false"
    assert values["AdminRequireMfa"] == "true"
    assert values["PiiMasking"] == "true"
    assert int(values["LogRetentionDays"]) >= 90
    assert int(values["ReservedConcurrency"]) > 0
    assert int(values["DailyTokenBudget"]) > 0  # a cap on the whole deployment's model tokens


# ------------------------------------------------------------------ the deploy script's refusals


def _with_prod(**changes: Any) -> dict[str, Any]:
    config = _config()
    overrides = dict(config["prod"]["global"]["parameters"]["parameter_overrides"])
    overrides.update(FILLED)
    config["prod"]["global"]["parameters"]["parameter_overrides"] = overrides
    for section, values in changes.items():
        config["prod"].setdefault(section, {}).setdefault("parameters", {}).update(values)
    return config


def test_a_filled_environment_passes_the_deploy_script(parameters) -> None:
    assert check_environment(_with_prod(), "prod", parameters)["OidcAudience"] == FILLED["OidcAudience"]


def test_a_missing_parameter_is_refused_because_the_stack_would_keep_its_previous_value(parameters) -> None:
    config = _with_prod()
    del config["prod"]["global"]["parameters"]["parameter_overrides"]["ReservedConcurrency"]
    with pytest.raises(ConfigError, match=r"missing .*previous values.*ReservedConcurrency"):
        check_environment(config, "prod", parameters)


def test_a_command_line_style_list_for_deploy_only_is_refused(parameters) -> None:
    # What --parameter-overrides on the command line amounts to: the deploy gets a short list of its own.
    config = _with_prod(deploy={"parameter_overrides": 'OidcIssuer="https://issuer.example.com" OidcAudience="x"'})
    with pytest.raises(ConfigError, match="missing"):
        check_environment(config, "prod", parameters)


def test_two_architectures_for_build_and_deploy_are_refused(parameters) -> None:
    values = dict(_with_prod()["prod"]["global"]["parameters"]["parameter_overrides"])
    config = _with_prod(deploy={"parameter_overrides": {**values, "Architecture": "x86_64"}})
    with pytest.raises(ConfigError, match="Architecture=arm64 and sam deploy Architecture=x86_64"):
        check_environment(config, "prod", parameters)


def test_an_unknown_parameter_is_refused(parameters) -> None:
    config = _with_prod()
    config["prod"]["global"]["parameters"]["parameter_overrides"]["AllowedOrigin"] = "https://typo.example.com"
    with pytest.raises(ConfigError, match="does not have: AllowedOrigin"):
        check_environment(config, "prod", parameters)


def test_an_environment_without_region_or_profile_is_refused(parameters) -> None:
    config = _with_prod()
    del config["prod"]["deploy"]["parameters"]["profile"]
    with pytest.raises(ConfigError, match="names no profile"):
        check_environment(config, "prod", parameters)


def test_parameter_overrides_are_read_in_every_form_sam_cli_accepts() -> None:
    expected = {"A": "rate(15 minutes)", "B": "", "C": 'say "hi"', "D": "x"}
    assert parse_overrides({"A": "rate(15 minutes)", "B": "", "C": 'say "hi"', "D": "x"}) == expected
    assert parse_overrides('A="rate(15 minutes)" B="" C="say \\"hi\\"" D=x') == expected
    assert parse_overrides(['A="rate(15 minutes)"', 'B=""', "C='say \"hi\"'", "D=x"]) == expected


# ------------------------------------------------------------------ the built layer


def _layer(build_dir: Path, *tags: str) -> Path:
    for number, tag in enumerate(tags):
        wheel = build_dir / "SecurityLayer" / "python" / f"package{number}-1.0.dist-info" / "WHEEL"
        wheel.parent.mkdir(parents=True)
        wheel.write_text(f"Wheel-Version: 1.0\nRoot-Is-Purelib: false\nTag: {tag}\n")
    return build_dir


def test_a_layer_built_for_the_deployed_architecture_passes(tmp_path: Path) -> None:
    build = _layer(tmp_path, "cp313-cp313-manylinux_2_17_aarch64", "cp39-abi3-manylinux_2_28_aarch64", "py3-none-any")
    check_built_architecture(build, "arm64")


def test_a_layer_built_for_another_architecture_is_refused(tmp_path: Path) -> None:
    build = _layer(tmp_path, "cp313-cp313-manylinux_2_17_aarch64", "cp39-abi3-manylinux_2_28_aarch64")
    with pytest.raises(ConfigError, match=r"aarch64.*x86_64"):
        check_built_architecture(build, "x86_64")


def test_a_layer_with_wheels_of_both_architectures_is_refused(tmp_path: Path) -> None:
    build = _layer(tmp_path, "cp313-cp313-manylinux_2_17_aarch64", "cp313-cp313-manylinux_2_17_x86_64")
    with pytest.raises(ConfigError):
        check_built_architecture(build, "arm64")


# ------------------------------------------------------------------ the smoke test after the deploy


def test_the_post_deploy_smoke_needs_a_token_unless_anonymous_access_is_on() -> None:
    with pytest.raises(ConfigError, match="SMOKE_TOKEN"):
        smoke_arguments({"AllowAnonymous": "false"}, {})
    assert smoke_arguments({"AllowAnonymous": "true"}, {}) == ["--create", "--anonymous"]
    assert smoke_arguments({"AllowAnonymous": "false", "AllowedOrigins": "https://a.example,https://b.example"},
                           {"SMOKE_TOKEN": "t"}) == ["--create", "--origin", "https://a.example"]  # fmt: skip
    assert smoke_arguments({"AllowAnonymous": "false"}, {"SMOKE": "unauthenticated"}) == []


def test_the_deploy_runs_the_gates_builds_deploys_without_a_prompt_and_smoke_tests_in_order(tmp_path: Path) -> None:
    shutil.copy(ROOT / "template.yaml", tmp_path / "template.yaml")
    shutil.copy(ROOT / "samconfig.toml", tmp_path / "samconfig.toml")
    _layer(tmp_path / ".aws-sam" / "build", "cp313-cp313-manylinux_2_17_aarch64")
    commands: list[list[str]] = []

    def runner(command: Sequence[str]) -> str:
        commands.append(list(command))
        if "stack-outputs" in command:
            return '[{"OutputKey": "ApiUrl", "OutputValue": "https://abc.execute-api.eu-west-1.amazonaws.com/"}]'
        return ""

    deploy("default", "sam", runner=runner, root=tmp_path, environ={}, bedrock=lambda settings: ActiveBedrock())
    assert commands[0] == ["make", "check", "ENV=default"]
    assert commands[1] == ["sam", "deploy", "--config-env", "default", "--no-confirm-changeset"]
    assert commands[2][:3] == ["sam", "list", "stack-outputs"]
    assert commands[2][-4:] == ["--region", "eu-west-1", "--profile", "chatbot-dev"]
    assert commands[3][1:] == [
        str(tmp_path / "scripts" / "smoke.py"),
        "--url",
        "https://abc.execute-api.eu-west-1.amazonaws.com/",
        "--create",
        "--anonymous",
    ]


def test_the_deploy_stops_before_any_command_when_placeholders_remain(tmp_path: Path) -> None:
    shutil.copy(ROOT / "template.yaml", tmp_path / "template.yaml")
    shutil.copy(ROOT / "samconfig.toml", tmp_path / "samconfig.toml")
    commands: list[Sequence[str]] = []
    with pytest.raises(ConfigError, match="REPLACE_ME"):
        deploy("prod", "sam", runner=recorded_in(commands), root=tmp_path, environ={},
               bedrock=lambda settings: ActiveBedrock())  # fmt: skip
    assert commands == []


def test_the_deploy_stops_before_deploying_a_layer_of_the_wrong_architecture(tmp_path: Path) -> None:
    shutil.copy(ROOT / "template.yaml", tmp_path / "template.yaml")
    shutil.copy(ROOT / "samconfig.toml", tmp_path / "samconfig.toml")
    _layer(tmp_path / ".aws-sam" / "build", "cp313-cp313-manylinux_2_17_x86_64")
    commands: list[Sequence[str]] = []
    with pytest.raises(ConfigError, match="rebuild"):
        deploy("default", "sam", runner=recorded_in(commands), root=tmp_path, environ={},
               bedrock=lambda settings: ActiveBedrock())  # fmt: skip
    assert commands == [["make", "check", "ENV=default"]]


# ------------------------------------------------------------------ the model, asked before deploying


class ActiveBedrock:
    """Bedrock's control plane answering that every profile is active."""

    def get_inference_profile(self, inferenceProfileIdentifier: str) -> dict[str, Any]:  # noqa: N803
        return {"inferenceProfileId": inferenceProfileIdentifier, "status": "ACTIVE"}


@pytest.fixture
def bedrock() -> Any:
    return boto3.client("bedrock", region_name=REGION)


def test_the_model_checked_is_the_regions_default_profile_or_the_model_id() -> None:
    profiles = default_model_profiles(ROOT / "template.yaml")
    assert deployed_model({"ModelProvider": "bedrock", "ModelId": ""}, "eu-west-1", profiles) == profiles["eu-west-1"]
    assert deployed_model({"ModelProvider": "bedrock", "ModelId": "anthropic.x-v1:0"}, "eu-west-1", profiles) == (
        "anthropic.x-v1:0"
    )
    assert deployed_model({"ModelProvider": "openai", "ModelId": "gpt-4o-mini"}, "eu-west-1", profiles) == ""
    with pytest.raises(ConfigError, match="me-central-1"):
        deployed_model({"ModelProvider": "bedrock", "ModelId": ""}, "me-central-1", profiles)


def test_the_profiles_read_by_the_deploy_script_are_the_templates_mapping(raw: dict[str, Any]) -> None:
    mapping = raw["Mappings"]["DefaultBedrockModel"]
    expected = {region: entry["InferenceProfileId"] for region, entry in mapping.items()}
    assert default_model_profiles(ROOT / "template.yaml") == expected


def test_an_active_inference_profile_passes(bedrock: Any) -> None:
    with Stubber(bedrock) as stub:
        stub.add_response(
            "get_inference_profile",
            {"inferenceProfileName": "p", "inferenceProfileArn": "arn:aws:bedrock:eu-west-1:1:inference-profile/p",
             "models": [{"modelArn": "arn:aws:bedrock:eu-west-1::foundation-model/anthropic.claude-haiku-5-5"}],
             "inferenceProfileId": "eu.anthropic.claude-haiku-5-5", "status": "ACTIVE",
             "type": "SYSTEM_DEFINED"},
            {"inferenceProfileIdentifier": "eu.anthropic.claude-haiku-5-5"},
        )  # fmt: skip
        assert check_model(bedrock, "eu.anthropic.claude-haiku-5-5", REGION).endswith("ACTIVE")


def test_a_retired_or_unknown_model_refuses_the_deploy(bedrock: Any) -> None:
    with Stubber(bedrock) as stub:
        stub.add_client_error("get_foundation_model", "ResourceNotFoundException", "Model not found", 404)
        with pytest.raises(ConfigError, match=r"ResourceNotFoundException.*active model"):
            check_model(bedrock, "anthropic.claude-3-haiku-20240307-v1:0", REGION)


def test_a_model_the_deployer_may_not_see_refuses_the_deploy(bedrock: Any) -> None:
    with Stubber(bedrock) as stub:
        stub.add_client_error("get_inference_profile", "AccessDeniedException", "not authorized", 403)
        with pytest.raises(ConfigError, match="AccessDeniedException"):
            check_model(bedrock, "us.anthropic.claude-haiku-5-5", "us-east-1")


def test_a_legacy_model_is_deployed_with_a_warning(bedrock: Any) -> None:
    details = {"modelArn": "arn:aws:bedrock:eu-west-1::foundation-model/m", "modelId": "m",
               "modelLifecycle": {"status": "LEGACY"}}  # fmt: skip
    with Stubber(bedrock) as stub:
        stub.add_response("get_foundation_model", {"modelDetails": details}, {"modelIdentifier": "m"})
        assert check_model(bedrock, "m", REGION).startswith("warning: model m in eu-west-1 is LEGACY")


def test_the_deploy_asks_bedrock_before_any_gate_and_stops_on_a_refusal(tmp_path: Path) -> None:
    shutil.copy(ROOT / "template.yaml", tmp_path / "template.yaml")
    shutil.copy(ROOT / "samconfig.toml", tmp_path / "samconfig.toml")
    client = boto3.client("bedrock", region_name=REGION)
    commands: list[Sequence[str]] = []
    with Stubber(client) as stub:
        stub.add_client_error("get_inference_profile", "ResourceNotFoundException", "no such profile", 404)
        with pytest.raises(ConfigError, match=r"eu\.anthropic\.claude-haiku-5-5 in eu-west-1"):
            deploy("default", "sam", runner=recorded_in(commands), root=tmp_path,
                   environ={}, bedrock=lambda settings: client)  # fmt: skip
    assert commands == []


# ------------------------------------------------------------------ the make targets


def _recipe(target: str) -> str:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    match = re.search(rf"^{target}:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert match is not None, target
    return match.group(1)


def test_make_build_reads_the_environment_that_make_deploy_deploys() -> None:
    assert "build --config-env $(ENV)" in _recipe("build")
    assert "scripts/deploy.py --env $(ENV)" in _recipe("deploy")


def test_make_smoke_passes_tokens_through_the_environment_only() -> None:
    recipe = _recipe("smoke")
    assert 'SMOKE_TOKEN="$$TOKEN"' in recipe
    assert "$(TOKEN)" not in recipe  # make would write the token into the command line
    assert all(line.startswith("\t@") or line.startswith("\t\t") for line in recipe.splitlines())  # never echoed


def test_a_deploy_step_shows_its_output_as_it_comes_and_a_failed_step_stops_the_deploy(capsys) -> None:
    assert run([sys.executable, "-c", "print('stack events')"]) == "stack events\n"
    assert "stack events" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="exited with status 3"):
        run([sys.executable, "-c", "raise SystemExit(3)"])
