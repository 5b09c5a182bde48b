"""Functions: configuration from parameters, own log groups, concurrency, runtime settings."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from deploy import command_parameters, parse_overrides
from support.stack_resources import FUNCTIONS

from chatbot_security.storage.records import EXPIRY_SHARDS
from tools.config_names import CONFIGURATION_NAMES

REPO_ROOT = Path(__file__).resolve().parents[2]

# The binding configuration names
DESIGN_ENV_VARS = CONFIGURATION_NAMES

# docs/architecture.md: names the template sets beyond section 4
ARCHITECTURE_ENV_VARS = {
    "TABLE_NAME": {"Ref": "ChatTable"},
    "KMS_KEY_ID": {"Fn::GetAtt": ["ChatbotKey", "Arn"]},
    "SESSION_TOKEN_SECRET_ARN": {"Ref": "SessionTokenSecret"},
    "USER_ID_PEPPER_SECRET_ARN": {"Ref": "UserIdPepperSecret"},
    "POWERTOOLS_SERVICE_NAME": {"Ref": "AWS::StackName"},
    "POWERTOOLS_METRICS_NAMESPACE": "Chatbot",
    "POWERTOOLS_LOG_LEVEL": {"Ref": "LogLevel"},
}

# Section 4 defaults the template must keep (the template may differ where docs/contract.md says so:
# ALLOW_ANONYMOUS and MODEL_PROVIDER have their own template defaults, and MODEL_TIMEOUT_SECONDS
# must stay below the 29 s function timeout, see docs/infrastructure.md).
DESIGN_DEFAULTS = {
    "OidcIssuer": "",
    "OidcAudience": "",
    "OidcJwksUrl": "",
    "OidcRolesClaim": "cognito:groups",
    "AdminRole": "admin",
    "AdminRequireMfa": "true",
    "AllowAnonymous": "false",
    "AllowedOrigins": "",
    "SessionTtlSeconds": "86400",
    "SessionIdleSeconds": "1800",
    "MaxMessageChars": "4000",
    "MaxBodyBytes": "16384",
    "MaxMessagesPerSession": "200",
    "RateLimitPerMinute": "20",
    "AnonSessionsPerHour": "10",
    "SessionsPerHour": "30",
    "MaxLiveSessions": "100",
    "TokensPerDay": "200000",
    "AnonTokensPerDay": "20000",
    "DailyTokenBudget": "0",
    "ModelProvider": "bedrock",
    "ModelMaxTokens": "1024",
    "BedrockGuardrailId": "",
    "BedrockGuardrailVersion": "",
    "PiiMasking": "true",
}

HANDLERS = {
    "AuthorizerFunction": ("functions/authorizer", "authorizer.handler.lambda_handler"),
    "ChatFunction": ("functions/chat", "chat.handler.lambda_handler"),
    "SessionCleanupFunction": ("functions/session_cleanup", "session_cleanup.handler.lambda_handler"),
    "StreamAuthorizerFunction": ("functions/stream_authorizer", "stream_authorizer.handler.handler"),
    "StreamFunction": ("functions/stream", "stream.handler.handler"),
    "StreamWorkerFunction": ("functions/stream", "stream.worker.handler"),
}


# ------------------------------------------------------------------ configuration


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_every_design_variable_reaches_the_function_from_a_parameter(stack, function_id: str) -> None:
    # Given the deployed function's environment
    environment = stack.function_env(function_id)
    for name in DESIGN_ENV_VARS:
        # Then each section 4 variable is set from a template parameter
        assert name in environment, name
        value = environment[name]
        assert isinstance(value, dict), (name, value)
        if name == "MODEL_ID" and "Fn::FindInMap" in value:
            # An empty ModelId selects the default model of this Region (test_infra_default_model.py).
            assert value["Fn::FindInMap"][0] == "DefaultBedrockModel", value
            continue
        if name.startswith("BEDROCK_GUARDRAIL_") and "Fn::GetAtt" in value:
            # Without BedrockGuardrailId, the guardrail the stack creates (test_infra_guardrail.py).
            assert value["Fn::GetAtt"][0] in ("ChatGuardrail", "ChatGuardrailVersion"), value
            continue
        assert set(value) == {"Ref"}, (name, value)
        assert value["Ref"] in stack.raw["Parameters"], (name, value)


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_architecture_variables_are_set(stack, function_id: str) -> None:
    environment = stack.function_env(function_id)
    for name, value in ARCHITECTURE_ENV_VARS.items():
        assert environment.get(name) == value, name
    assert "MODEL_API_KEY_SECRET_ARN" in environment


def test_each_design_variable_has_its_own_parameter(make_stack) -> None:
    # With an explicit ModelId and an existing guardrail, every variable (MODEL_ID included) is a plain
    # parameter reference.
    environment = make_stack(
        ModelId="amazon.nova-lite-v1:0", BedrockGuardrailId="abc123def456", BedrockGuardrailVersion="1"
    ).function_env("ChatFunction")
    parameters = [environment[name]["Ref"] for name in DESIGN_ENV_VARS]
    assert len(set(parameters)) == len(parameters)


def test_openai_base_url_comes_from_its_parameter(stack) -> None:
    assert stack.function_env("ChatFunction")["OPENAI_BASE_URL"] == {"Ref": "OpenAiBaseUrl"}


def test_required_scopes_reach_the_authorizer_from_their_parameter(stack, raw) -> None:
    assert stack.function_env("AuthorizerFunction")["OIDC_REQUIRED_SCOPES"] == {"Ref": "OidcRequiredScopes"}
    assert raw["Parameters"]["OidcRequiredScopes"]["Default"] == ""


@pytest.mark.parametrize("value", ["", "chat:write", "openid chat:read chat:write", "https://api.example.com/chat"])
def test_required_scopes_parameter_accepts_space_separated_scopes(raw, value: str) -> None:
    assert re.fullmatch(raw["Parameters"]["OidcRequiredScopes"]["AllowedPattern"], value) is not None


@pytest.mark.parametrize("value", ["chat:read,chat:write", "chat:read  chat:write", " chat:write", 'chat"', "a\\b"])
def test_required_scopes_parameter_refuses_what_no_scope_can_be(raw, value: str) -> None:
    assert re.fullmatch(raw["Parameters"]["OidcRequiredScopes"]["AllowedPattern"], value) is None


def test_parameter_defaults_match_the_design_defaults(raw) -> None:
    for parameter, default in DESIGN_DEFAULTS.items():
        assert str(raw["Parameters"][parameter].get("Default", "")) == default, parameter


def test_model_provider_is_one_of_the_design_values(raw) -> None:
    assert sorted(raw["Parameters"]["ModelProvider"]["AllowedValues"]) == ["bedrock", "echo", "openai"]


def test_environment_carries_no_literal_secret(stack) -> None:
    # Only references and parameter values: no literal longer than a flag.
    for function_id in FUNCTIONS:
        for name, value in stack.function_env(function_id).items():
            assert not isinstance(value, str) or len(value) <= 16, (function_id, name)


@pytest.mark.parametrize("value", ["*", "anthropic.*", "arn:aws:bedrock:*::foundation-model/*", "a b"])
def test_model_id_parameter_cannot_widen_the_bedrock_grant(raw, value: str) -> None:
    assert re.fullmatch(raw["Parameters"]["ModelId"]["AllowedPattern"], value) is None


def test_the_contract_page_names_exactly_the_configuration_variables() -> None:
    # docs/contract.md section 4 is the binding list: every name there reaches the functions, and every
    # configuration variable the functions read is documented there.
    root = Path(__file__).resolve().parents[2]
    text = (root / "docs" / "contract.md").read_text(encoding="utf-8")
    section = text.split("## 4.", 1)[1].split("\n## ", 1)[0]
    names = set(re.findall(r"`([A-Z][A-Z0-9_]{2,})`", section))
    assert names == set(DESIGN_ENV_VARS), (names - set(DESIGN_ENV_VARS), set(DESIGN_ENV_VARS) - names)


# ------------------------------------------------------------------ code, runtime, tracing


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_function_code_and_handler(raw, function_id: str) -> None:
    properties = raw["Resources"][function_id]["Properties"]
    code_uri, handler = HANDLERS[function_id]
    assert properties["CodeUri"].rstrip("/") == code_uri
    assert properties["Handler"] == handler


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_function_runtime_tracing_and_layer(stack, function_id: str) -> None:
    properties = stack.props(function_id)
    assert properties["Runtime"] == "python3.13"
    assert properties["TracingConfig"] == {"Mode": "Active"}
    (layer,) = properties["Layers"]
    assert stack.resources[layer["Ref"]]["Type"] == "AWS::Lambda::LayerVersion"


def test_functions_and_layer_follow_the_architecture_parameter(stack, raw) -> None:
    for function_id in FUNCTIONS:
        assert stack.props(function_id)["Architectures"] == [{"Ref": "Architecture"}]
    layer = raw["Resources"]["SecurityLayer"]
    assert layer["Properties"]["CompatibleArchitectures"] == [{"Ref": "Architecture"}]
    assert layer["Properties"]["ContentUri"].rstrip("/") == "layers/security"
    assert layer["Metadata"]["BuildArchitecture"] == {"Ref": "Architecture"}
    assert raw["Parameters"]["Architecture"]["Default"] == "arm64"


def test_the_layer_is_built_by_its_makefile_for_the_default_architecture_and_trimmed(raw) -> None:
    # sam build runs layers/security/Makefile's build-SecurityLayer target; it does not pass the architecture
    # on, so the Makefile defaults to the parameter's default and make build passes samconfig's.
    assert raw["Resources"]["SecurityLayer"]["Metadata"]["BuildMethod"] == "makefile"
    makefile = (REPO_ROOT / "layers" / "security" / "Makefile").read_text(encoding="utf-8")
    assert "build-SecurityLayer:" in makefile
    assert f"LAYER_ARCHITECTURE ?= {raw['Parameters']['Architecture']['Default']}" in makefile
    assert "--require-hashes" in makefile
    assert "--no-compile" in makefile
    assert "trim_layer.py" in makefile


def test_chat_timeout_fits_the_http_api_limit_and_the_model_timeout_fits_the_chat_timeout(stack, raw) -> None:
    chat_timeout = stack.props("ChatFunction")["Timeout"]
    assert chat_timeout < 30  # HTTP API integrations time out after 30 s
    model_timeout = raw["Parameters"]["ModelTimeoutSeconds"]
    assert model_timeout["MaxValue"] < chat_timeout
    assert model_timeout["Default"] < chat_timeout


# ------------------------------------------------------------------ log groups


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_function_has_its_own_explicit_log_group(stack, function_id: str) -> None:
    # Given the function's logging configuration
    log_group_id = stack.props(function_id)["LoggingConfig"]["LogGroup"]["Ref"]
    # Then it names a log group of this stack, called after the function, used by no other function
    assert stack.resources[log_group_id]["Type"] == "AWS::Logs::LogGroup"
    function_name = stack.props(function_id)["FunctionName"]["Fn::Sub"]
    assert stack.props(log_group_id)["LogGroupName"] == {"Fn::Sub": "/aws/lambda/" + function_name}
    others = [stack.props(other)["LoggingConfig"]["LogGroup"]["Ref"] for other in FUNCTIONS if other != function_id]
    assert log_group_id not in others


# ------------------------------------------------------------------ concurrency


def test_no_reserved_concurrency_when_the_parameter_is_zero(make_stack: Callable) -> None:
    # Given ReservedConcurrency=0 (new accounts reject any reservation)
    stack = make_stack(ReservedConcurrency="0")
    # Then no function of the deployed template reserves concurrency
    for function_id in FUNCTIONS:
        assert "ReservedConcurrentExecutions" not in stack.props(function_id), function_id


def test_reserved_concurrency_caps_chat_and_holds_the_cleanups_shard_runs_when_set(make_stack: Callable) -> None:
    stack = make_stack(ReservedConcurrency="20")
    assert stack.props("ChatFunction")["ReservedConcurrentExecutions"] == {"Ref": "ReservedConcurrency"}
    # the 16 shard runs side by side and the scheduled run that starts them: no shard run is throttled
    assert stack.props("SessionCleanupFunction")["ReservedConcurrentExecutions"] == EXPIRY_SHARDS + 1
    assert "ReservedConcurrentExecutions" not in stack.props("AuthorizerFunction")


def test_reserved_concurrency_defaults_to_off(raw) -> None:
    assert raw["Parameters"]["ReservedConcurrency"]["Default"] == 0


def samconfig_overrides(environment: str) -> dict[str, str]:
    """The parameter overrides ``sam deploy --config-env <environment>`` passes to the template."""
    config = tomllib.loads((REPO_ROOT / "samconfig.toml").read_text(encoding="utf-8"))
    return parse_overrides(command_parameters(config, environment, "deploy")["parameter_overrides"])


def test_the_prod_environment_caps_the_chat_function(raw, make_stack: Callable) -> None:
    # Given `sam deploy --config-env prod`
    cap = int(samconfig_overrides("prod")["ReservedConcurrency"])
    # Then the chat function gets a reservation the parameter accepts, which is also its ceiling
    spec = raw["Parameters"]["ReservedConcurrency"]
    assert 0 < cap <= spec["MaxValue"]
    stack = make_stack(ReservedConcurrency=str(cap))
    assert stack.props("ChatFunction")["ReservedConcurrentExecutions"] == {"Ref": "ReservedConcurrency"}
    assert stack.params["ReservedConcurrency"] == str(cap)


def test_the_default_environment_stays_deployable_in_a_new_account() -> None:
    # A new account's quota (10) refuses any reservation: the development environment reserves none
    assert samconfig_overrides("default")["ReservedConcurrency"] == "0"


# ------------------------------------------------------------------ cleanup schedule


def test_cleanup_runs_on_the_schedule_parameter(stack) -> None:
    (rule,) = stack.of_type("AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == {"Ref": "CleanupScheduleExpression"}
    assert rule["Properties"]["State"] == "ENABLED"
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["SessionCleanupFunction", "Arn"]}


def test_cleanup_async_retries_are_bounded(stack) -> None:
    (config,) = (
        config
        for config in stack.of_type("AWS::Lambda::EventInvokeConfig").values()
        if config["Properties"]["FunctionName"] == {"Ref": "SessionCleanupFunction"}
    )
    assert config["Properties"]["MaximumRetryAttempts"] <= 2


def test_a_failed_stream_worker_invocation_is_never_retried(stack) -> None:
    # A retried turn would call the model twice; the client retries with its client_message_id instead.
    (config,) = (
        config
        for config in stack.of_type("AWS::Lambda::EventInvokeConfig").values()
        if config["Properties"]["FunctionName"] == {"Ref": "StreamWorkerFunction"}
    )
    assert config["Properties"]["MaximumRetryAttempts"] == 0
    assert config["Properties"]["MaximumEventAgeInSeconds"] <= 60


# ------------------------------------------------------------------ outputs


def test_outputs(stack) -> None:
    assert {"ApiUrl", "TableName", "KeyArn", "AlarmTopicArn"} <= set(stack.outputs)
    assert stack.outputs["KeyArn"]["Value"] == {"Fn::GetAtt": ["ChatbotKey", "Arn"]}
    assert stack.outputs["TableName"]["Value"] == {"Ref": "ChatTable"}
    assert stack.outputs["AlarmTopicArn"]["Value"] == {"Ref": "AlarmTopic"}
    assert "${ChatApi}" in stack.outputs["ApiUrl"]["Value"]["Fn::Sub"]


def _cleanup_name(stack) -> Any:
    name = stack.props("SessionCleanupFunction")["FunctionName"]
    return name["Fn::Sub"] if isinstance(name, dict) else name


def test_the_cleanup_may_invoke_exactly_itself_and_nothing_else(stack) -> None:
    own_arn = "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:" + _cleanup_name(stack)
    grants = stack.allowed("SessionCleanupFunction", "lambda:InvokeFunction")
    assert [grant["Fn::Sub"] if isinstance(grant, dict) else grant for grant in grants] == [own_arn]
    invoking = [statement for statement in stack.function_statements("SessionCleanupFunction")
                if any(action.startswith("lambda:") for action in statement.actions)]  # fmt: skip
    assert [statement.actions for statement in invoking] == [["lambda:InvokeFunction"]]


def test_the_cleanup_fans_out_to_its_own_function_name(stack) -> None:
    assert stack.function_env("SessionCleanupFunction")["CLEANUP_FUNCTION"] == {"Fn::Sub": _cleanup_name(stack)}


def test_a_cleanup_run_ends_before_the_next_scheduled_one_starts(raw, stack) -> None:
    # Each run stops claiming with a tenth of its time left, within the schedule's period (default rate)
    match = re.fullmatch(r"rate\((\d+) minutes?\)", raw["Parameters"]["CleanupScheduleExpression"]["Default"])
    assert match is not None
    assert stack.props("SessionCleanupFunction")["Timeout"] <= int(match.group(1)) * 60
    for environment in ("default", "prod"):
        assert samconfig_overrides(environment).get("CleanupScheduleExpression", "rate(5 minutes)") == "rate(5 minutes)"


def test_shard_runs_are_covered_by_the_cleanups_retries_and_dead_letter_queue(stack) -> None:
    # Lambda applies the function's asynchronous settings to every asynchronous invocation: the
    # schedule's and each shard run's
    props = stack.props("SessionCleanupFunction")
    assert props["DeadLetterConfig"]["TargetArn"] == {"Fn::GetAtt": ["CleanupDeadLetterQueue", "Arn"]}
    (config,) = (
        config
        for config in stack.of_type("AWS::Lambda::EventInvokeConfig").values()
        if config["Properties"]["FunctionName"] == {"Ref": "SessionCleanupFunction"}
    )
    assert config["Properties"]["Qualifier"] == "$LATEST"
    assert config["Properties"]["MaximumRetryAttempts"] == 2
