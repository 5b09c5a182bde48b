"""moto resources created from the template's own definitions, and the environment pointing at them."""

from __future__ import annotations

import os
import string
import urllib.request
from typing import Any

import pytest
from local_kit import REGION

from chatbot_local import environment
from chatbot_local.aws import LocalResources, MotoService, client, generate_secret_string, provision
from chatbot_local.cloudformation import TemplateError
from chatbot_local.environment import ConfigError
from chatbot_local.template import Template
from tools.local_api import free_port


@pytest.fixture
def clean_moto(moto_endpoint: str) -> str:
    reset = urllib.request.Request(moto_endpoint + "/moto-api/reset", method="POST")
    urllib.request.urlopen(reset, timeout=5).close()
    return moto_endpoint


@pytest.fixture
def resources(project_template: Template, clean_moto: str) -> LocalResources:
    return provision(project_template, {}, clean_moto, REGION)


def test_table_follows_the_templates_definition(project_template: Template, resources: LocalResources) -> None:
    definition = project_template.properties("ChatTable", "AWS::DynamoDB::Table")
    dynamodb = client("dynamodb", resources.endpoint_url, REGION)

    table = dynamodb.describe_table(TableName=resources.table_name)["Table"]
    ttl = dynamodb.describe_time_to_live(TableName=resources.table_name)["TimeToLiveDescription"]

    assert table["KeySchema"] == definition["KeySchema"]
    assert sorted(table["AttributeDefinitions"], key=str) == sorted(definition["AttributeDefinitions"], key=str)
    assert table["BillingModeSummary"]["BillingMode"] == definition["BillingMode"]
    indexes = {index["IndexName"]: index for index in table["GlobalSecondaryIndexes"]}
    for expected in definition["GlobalSecondaryIndexes"]:
        assert indexes[expected["IndexName"]]["KeySchema"] == expected["KeySchema"]
        assert indexes[expected["IndexName"]]["Projection"] == expected["Projection"]
    assert ttl == {
        "AttributeName": definition["TimeToLiveSpecification"]["AttributeName"],
        "TimeToLiveStatus": "ENABLED",
    }
    assert table["SSEDescription"]["KMSMasterKeyArn"] == resources.key_arn


def test_key_has_rotation_on(resources: LocalResources) -> None:
    kms = client("kms", resources.endpoint_url, REGION)

    assert kms.get_key_rotation_status(KeyId=resources.key_id)["KeyRotationEnabled"] is True
    aliases = [alias["AliasName"] for alias in kms.list_aliases(KeyId=resources.key_id)["Aliases"]]
    assert aliases == ["alias/chatbot-local-chatbot"]


def test_secrets_are_generated_by_the_templates_rules(resources: LocalResources) -> None:
    secretsmanager = client("secretsmanager", resources.endpoint_url, REGION)

    assert set(resources.secret_arns) == {"SessionTokenSecret", "UserIdPepperSecret"}
    values = [secretsmanager.get_secret_value(SecretId=arn)["SecretString"] for arn in resources.secret_arns.values()]
    for value in values:
        assert len(value) == 64
        assert set(value) <= set(string.ascii_letters + string.digits)
    assert values[0] != values[1]


def test_model_api_key_secret_exists_only_for_openai(project_template: Template, clean_moto: str) -> None:
    environ = {"MODEL_PROVIDER": "openai", "MODEL_API_KEY": "sk-local"}

    resources = provision(project_template, environ, clean_moto, REGION)

    secretsmanager = client("secretsmanager", resources.endpoint_url, REGION)
    arn = resources.secret_arns["ModelApiKeySecret"]
    assert secretsmanager.get_secret_value(SecretId=arn)["SecretString"] == "sk-local"


@pytest.mark.parametrize(
    ("rules", "alphabet"),
    [
        ({"PasswordLength": 40, "ExcludePunctuation": True}, string.ascii_letters + string.digits),
        ({"ExcludeUppercase": True, "ExcludeNumbers": True, "ExcludePunctuation": "true"}, string.ascii_lowercase),
        ({"PasswordLength": 20, "ExcludeCharacters": "abcdef"}, None),
    ],
)
def test_generated_values_follow_generate_secret_string(rules: dict[str, Any], alphabet: str | None) -> None:
    value = generate_secret_string(rules)

    assert len(value) == rules.get("PasswordLength", 32)
    if alphabet is not None:
        assert set(value) <= set(alphabet)
    assert not set(value) & set(rules.get("ExcludeCharacters", ""))
    assert " " not in value


def test_generated_value_can_fill_a_json_template() -> None:
    value = generate_secret_string({"SecretStringTemplate": '{"user": "app"}', "GenerateStringKey": "password"})

    assert value.startswith('{"user": "app", "password": "')


def test_rules_that_leave_no_characters_are_refused() -> None:
    rules = {"ExcludeUppercase": True, "ExcludeLowercase": True, "ExcludeNumbers": True, "ExcludePunctuation": True}

    with pytest.raises(TemplateError, match="no characters"):
        generate_secret_string(rules)


def test_secret_values_written_in_the_template_are_refused(fixture_template: Template, clean_moto: str) -> None:
    fixture_template.properties("UserIdPepperSecret", "AWS::SecretsManager::Secret")["SecretString"] = "hardcoded"

    with pytest.raises(TemplateError, match="must be generated"):
        provision(fixture_template, {}, clean_moto, REGION)


# --- the environment -----------------------------------------------------------------------------


def test_resource_names_and_template_defaults_reach_the_environment(
    project_template: Template, resources: LocalResources
) -> None:
    environ: dict[str, str] = {"MODEL_PROVIDER": "echo", "SESSION_TTL_SECONDS": "120", "TABLE_NAME": "elsewhere"}

    environment.apply_resources(environ, project_template, resources)

    assert environ["TABLE_NAME"] == resources.table_name
    assert environ["KMS_KEY_ID"] == resources.key_arn
    assert environ["SESSION_TOKEN_SECRET_ARN"] == resources.secret_arns["SessionTokenSecret"]
    assert environ["USER_ID_PEPPER_SECRET_ARN"] == resources.secret_arns["UserIdPepperSecret"]
    assert environ["SESSION_TTL_SECONDS"] == "120"  # the user's value wins
    assert environ["MODEL_PROVIDER"] == "echo"
    assert environ["MAX_BODY_BYTES"] == "16384"  # the template's default
    assert environ["POWERTOOLS_SERVICE_NAME"] == "chatbot-local"
    assert "OIDC_ISSUER" not in environ  # empty defaults stay unset
    assert "MODEL_API_KEY_SECRET_ARN" not in environ


def test_the_local_anonymous_session_limit_is_sized_for_a_developer() -> None:
    environ: dict[str, str] = {}

    environment.apply_local_defaults(environ, 8123)

    assert int(environ["ANON_SESSIONS_PER_HOUR"]) >= 100  # the deployed default, 10, is one reload away


def test_local_defaults_never_override_the_user() -> None:
    environ = {"ALLOW_ANONYMOUS": "false", "AUTHORIZER_CACHE_TTL": "5", "ANON_SESSIONS_PER_HOUR": "3"}

    environment.apply_local_defaults(environ, 8123)

    assert environ["ALLOW_ANONYMOUS"] == "false"
    assert environ["ANON_SESSIONS_PER_HOUR"] == "3"
    assert environ["MODEL_PROVIDER"] == "echo"
    assert environ["ALLOWED_ORIGINS"] == "http://127.0.0.1:8123,http://localhost:8123"
    assert environ["ALLOW_LOOPBACK_ISSUER"] == "true"
    assert environ["AUTHORIZER_CACHE_TTL_SECONDS"] == "5"


def test_the_sdk_can_only_reach_moto() -> None:
    environ = {
        "AWS_PROFILE": "prod",
        "AWS_SESSION_TOKEN": "real",
        "AWS_ENDPOINT_URL_DYNAMODB": "https://dynamodb.eu-west-1.amazonaws.com",
        "AWS_ACCESS_KEY_ID": "AKIAREAL",
        "NO_PROXY": "internal.example",
    }

    environment.isolate_aws(environ, "http://127.0.0.1:5555", REGION)

    assert environ["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5555"
    assert environ["AWS_ACCESS_KEY_ID"] == "testing"
    assert environ["AWS_EC2_METADATA_DISABLED"] == "true"
    assert environ["AWS_CONFIG_FILE"] == os.devnull
    assert not {"AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_DYNAMODB"} & set(environ)
    assert environ["NO_PROXY"] == "internal.example,127.0.0.1,localhost,::1"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"MODEL_PROVIDER": "gpt"}, "MODEL_PROVIDER must be one of echo, bedrock, openai"),
        ({"MODEL_PROVIDER": "echo", "OIDC_ISSUER": "http://idp.example.com"}, "OIDC_ISSUER must be an https URL"),
        ({"MODEL_PROVIDER": "echo", "OIDC_ISSUER": "not a url"}, "OIDC_ISSUER must be an https URL"),
        ({"MODEL_PROVIDER": "echo", "ALLOWED_ORIGINS": "http://a.example/path"}, "ALLOWED_ORIGINS takes exact origins"),
    ],
)
def test_configuration_mistakes_are_caught_before_starting(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        environment.check(environ)


@pytest.mark.parametrize("issuer", ["https://idp.example.com/realms/x", "http://127.0.0.1:9000", "http://localhost:1"])
def test_https_and_loopback_issuers_are_accepted(issuer: str) -> None:
    environment.check({"MODEL_PROVIDER": "bedrock", "OIDC_ISSUER": issuer})


def test_transactions_do_not_keep_copies_of_the_table(resources: LocalResources) -> None:
    # moto deep-copies the whole table on every TransactWriteItems; it used to keep every copied item
    # for its dashboard, so chatbot-local grew by gigabytes under the load test (tools/load_api.py).
    from moto.dynamodb.models.dynamo_type import Item

    dynamodb = client("dynamodb", resources.endpoint_url, REGION)
    for n in range(20):
        item = {"pk": {"S": "SESSION#memory"}, "sk": {"S": f"MSG#{n:08d}"}}
        dynamodb.transact_write_items(TransactItems=[{"Put": {"TableName": resources.table_name, "Item": item}}])

    assert Item.instances_tracked == []  # type: ignore[attr-defined]
    assert len(dynamodb.query(
        TableName=resources.table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "SESSION#memory"}},
    )["Items"]) == 20  # fmt: skip


def test_the_aws_endpoint_can_take_a_fixed_port_on_every_interface_and_is_reached_on_loopback() -> None:
    port = free_port()
    moto = MotoService("0.0.0.0", port)  # what `--aws-host 0.0.0.0` asks for
    endpoint = moto.start()
    try:
        assert endpoint == f"http://127.0.0.1:{port}"
        assert client("sts", endpoint, REGION).get_caller_identity()["Account"]
    finally:
        moto.stop()


def test_moderation_is_off_locally_unless_asked_for() -> None:
    environ: dict[str, str] = {}

    environment.apply_local_defaults(environ, 8123)

    assert environ["MODERATION"] == "off"
    assert "LOCAL_FAKE_GUARDRAIL" not in environ


def test_moderation_without_a_guardrail_of_ones_own_runs_the_local_fake() -> None:
    environ = {"MODERATION": "guardrail"}

    environment.apply_local_defaults(environ, 8123)

    assert environ["LOCAL_FAKE_GUARDRAIL"] == "true"


def test_a_guardrail_of_ones_own_is_not_replaced_by_the_fake() -> None:
    environ = {"MODERATION": "guardrail", "BEDROCK_GUARDRAIL_ID": "abc123def456", "BEDROCK_GUARDRAIL_VERSION": "2"}

    environment.apply_local_defaults(environ, 8123)

    assert "LOCAL_FAKE_GUARDRAIL" not in environ


def test_the_guardrail_the_template_creates_never_reaches_the_local_environment(
    project_template: Template, resources: LocalResources
) -> None:
    environ = {"MODEL_PROVIDER": "echo", "MODERATION": "guardrail", "LOCAL_FAKE_GUARDRAIL": "true"}

    environment.apply_resources(environ, project_template, resources)

    assert "BEDROCK_GUARDRAIL_ID" not in environ
    assert "BEDROCK_GUARDRAIL_VERSION" not in environ
    assert environ["MODERATION_REFUSAL_TEXT"] == "Sorry, I can't share that answer."


def test_the_moderation_flag_runs_the_fake_whatever_was_exported() -> None:
    environ = {"MODERATION": "off", "BEDROCK_GUARDRAIL_ID": "abc123def456"}

    environment.use_fake_guardrail(environ)
    environment.apply_local_defaults(environ, 8123)

    assert environ["MODERATION"] == "guardrail"
    assert environ["LOCAL_FAKE_GUARDRAIL"] == "true"
    assert "BEDROCK_GUARDRAIL_ID" not in environ
