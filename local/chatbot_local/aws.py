"""AWS on a laptop: an in-process moto server with the template's table, key and secrets.

The resources are created from their definitions in template.yaml (key schema, indexes, TTL,
billing mode, key rotation, secret generation rules), so the local table is the deployed one.
Properties moto does not take are left out and listed in docs/local-development.md.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chatbot_local.cloudformation import Resolver, TemplateError
from chatbot_local.template import STACK_NAME, Template

KEY_ID = "ChatbotKey"
KEY_ALIAS_ID = "ChatbotKeyAlias"
TABLE_ID = "ChatTable"
SECRET_TYPE = "AWS::SecretsManager::Secret"  # noqa: S105 - a resource type  # nosec B105
MODEL_API_KEY_SECRET_ID = "ModelApiKeySecret"  # noqa: S105 - a logical id  # nosec B105
# Local runs only: the value given to the model API key secret (MODEL_PROVIDER=openai).
MODEL_API_KEY_VARIABLE = "MODEL_API_KEY"

# moto's dummy credentials: no real AWS account accepts them.
DUMMY_ACCESS_KEY_ID = "testing"
DUMMY_SECRET_ACCESS_KEY = "testing"  # noqa: S105 - moto's dummy value  # nosec B105

_TABLE_PROPERTIES = (
    "KeySchema",
    "AttributeDefinitions",
    "BillingMode",
    "ProvisionedThroughput",
    "StreamSpecification",
    "TableClass",
)
_INDEX_PROPERTIES = ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput")
# AWS's Secrets Manager punctuation set (GetRandomPassword / GenerateSecretString).
_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


@dataclass(frozen=True)
class LocalResources:
    """Physical names of the resources created in moto, as the handlers' environment needs them."""

    endpoint_url: str
    region: str
    table_name: str
    key_id: str
    key_arn: str
    secret_arns: Mapping[str, str]

    def refs(self) -> dict[str, str]:
        return {TABLE_ID: self.table_name, KEY_ID: self.key_id, **self.secret_arns}


def _stop_tracking_dynamodb_items() -> None:
    """moto keeps every model instance it ever creates (for its dashboard), and TransactWriteItems
    deep-copies the whole table to be able to roll back: every copy of every item stayed in memory,
    gigabytes after a few thousand chat turns (each turn is two transactions). The dashboard is not
    used here, so DynamoDB items and tables are created untracked."""
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import Table

    def untracked(cls: type[Any], *args: Any, **kwargs: Any) -> Any:
        return object.__new__(cls)

    for model in (Item, Table):
        # setattr: these are moto internals that its type hints do not describe.
        setattr(model, "__new__", untracked)  # noqa: B010
        setattr(model, "instances_tracked", [])  # noqa: B010


class MotoService:
    """moto's threaded server on a free loopback port."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        from moto.server import ThreadedMotoServer  # a second to import: only when serving

        _stop_tracking_dynamodb_items()

        # werkzeug logs one line per request at INFO: keep the console for our own lines.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        self.endpoint_url = ""

    def start(self) -> str:
        self._server.start()
        host, port = self._server.get_host_and_port()
        if ipaddress.ip_address(host).is_unspecified:  # listening everywhere: reached here on loopback
            host = "127.0.0.1"
        self.endpoint_url = f"http://{host}:{port}"
        return self.endpoint_url

    def stop(self) -> None:
        self._server.stop()


def known_regions() -> frozenset[str]:
    """The regions of every partition the AWS SDK knows (moto serves exactly those)."""
    import boto3

    session = boto3.session.Session()
    partitions = session.get_available_partitions()
    return frozenset(region for partition in partitions for region in session.get_available_regions("kms", partition))


def client(service: str, endpoint_url: str, region: str) -> Any:
    """A boto3 client that can only talk to the local moto server."""
    import boto3  # half a second to import: only once moto runs

    dummy_credentials = {"aws_access_key_id": DUMMY_ACCESS_KEY_ID, "aws_secret_access_key": DUMMY_SECRET_ACCESS_KEY}
    return boto3.client(service, endpoint_url=endpoint_url, region_name=region, **dummy_credentials)


def provision(template: Template, environ: Mapping[str, str], endpoint_url: str, region: str) -> LocalResources:
    """Create the key, the table and the secrets of `template` in the moto server at `endpoint_url`."""
    kms = client("kms", endpoint_url, region)
    key_id, key_arn = _create_key(template, template.resolver(environ, region), kms)
    resolver = template.resolver(environ, region, refs={KEY_ID: key_id}, attributes={(KEY_ID, "Arn"): key_arn})
    _create_alias(template, resolver, kms, key_id)
    table_name = _create_table(template, resolver, client("dynamodb", endpoint_url, region))
    secretsmanager = client("secretsmanager", endpoint_url, region)
    secret_arns = {
        logical_id: _create_secret(template, resolver, secretsmanager, logical_id, environ)
        for logical_id in template.logical_ids(SECRET_TYPE)
        if _condition_holds(template, resolver, logical_id)
    }
    return LocalResources(endpoint_url, region, table_name, key_id, key_arn, secret_arns)


def _create_key(template: Template, resolver: Resolver, kms: Any) -> tuple[str, str]:
    properties = resolver.resolve(template.properties(KEY_ID, "AWS::KMS::Key"))
    arguments: dict[str, Any] = {
        "Description": properties.get("Description", f"{STACK_NAME} {KEY_ID}"),
        "KeyUsage": properties.get("KeyUsage", "ENCRYPT_DECRYPT"),
        "KeySpec": properties.get("KeySpec", "SYMMETRIC_DEFAULT"),
    }
    if properties.get("Tags"):
        arguments["Tags"] = [{"TagKey": tag["Key"], "TagValue": str(tag["Value"])} for tag in properties["Tags"]]
    metadata = kms.create_key(**arguments)["KeyMetadata"]
    if str(properties.get("EnableKeyRotation", False)).lower() == "true":
        kms.enable_key_rotation(KeyId=metadata["KeyId"])
    return str(metadata["KeyId"]), str(metadata["Arn"])


def _create_alias(template: Template, resolver: Resolver, kms: Any, key_id: str) -> None:
    if KEY_ALIAS_ID not in template.resources:
        return
    alias = resolver.resolve(template.properties(KEY_ALIAS_ID, "AWS::KMS::Alias")).get("AliasName")
    if isinstance(alias, str) and alias.startswith("alias/"):
        kms.create_alias(AliasName=alias, TargetKeyId=key_id)


def _create_table(template: Template, resolver: Resolver, dynamodb: Any) -> str:
    properties = resolver.resolve(template.properties(TABLE_ID, "AWS::DynamoDB::Table"))
    name = str(properties.get("TableName") or f"{STACK_NAME}-{TABLE_ID}")
    arguments: dict[str, Any] = {key: properties[key] for key in _TABLE_PROPERTIES if key in properties}
    if "KeySchema" not in arguments or "AttributeDefinitions" not in arguments:
        raise TemplateError(f"{TABLE_ID}: KeySchema and AttributeDefinitions are required")
    indexes = properties.get("GlobalSecondaryIndexes") or []
    if indexes:
        arguments["GlobalSecondaryIndexes"] = [
            {k: index[k] for k in _INDEX_PROPERTIES if k in index} for index in indexes
        ]
    sse = properties.get("SSESpecification") or {}
    if sse.get("SSEEnabled"):
        arguments["SSESpecification"] = {"Enabled": True, "SSEType": sse.get("SSEType", "KMS")}
        if sse.get("KMSMasterKeyId"):
            arguments["SSESpecification"]["KMSMasterKeyId"] = sse["KMSMasterKeyId"]
    if "DeletionProtectionEnabled" in properties:
        arguments["DeletionProtectionEnabled"] = str(properties["DeletionProtectionEnabled"]).lower() == "true"
    dynamodb.create_table(TableName=name, **arguments)
    ttl = properties.get("TimeToLiveSpecification") or {}
    if ttl.get("AttributeName") and str(ttl.get("Enabled", False)).lower() == "true":
        dynamodb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
        )
    return name


def _condition_holds(template: Template, resolver: Resolver, logical_id: str) -> bool:
    condition = template.resources[logical_id].get("Condition")
    return condition is None or resolver.condition(str(condition))


def _create_secret(
    template: Template, resolver: Resolver, secretsmanager: Any, logical_id: str, environ: Mapping[str, str]
) -> str:
    properties = resolver.resolve(template.properties(logical_id, SECRET_TYPE))
    if "SecretString" in properties:
        raise TemplateError(f"{logical_id}: a secret value must be generated (GenerateSecretString), not written down")
    value = generate_secret_string(properties.get("GenerateSecretString") or {})
    if logical_id == MODEL_API_KEY_SECRET_ID and environ.get(MODEL_API_KEY_VARIABLE):
        value = environ[MODEL_API_KEY_VARIABLE]
    arguments: dict[str, Any] = {
        "Name": str(properties.get("Name") or f"{STACK_NAME}/{logical_id}"),
        "SecretString": value,
    }
    if properties.get("Description"):
        arguments["Description"] = properties["Description"]
    if properties.get("KmsKeyId"):
        arguments["KmsKeyId"] = properties["KmsKeyId"]
    return str(secretsmanager.create_secret(**arguments)["ARN"])


def generate_secret_string(rules: Mapping[str, Any]) -> str:
    """A random value following CloudFormation's `GenerateSecretString` rules."""
    length = int(rules.get("PasswordLength", 32))

    def flag(name: str, default: bool = False) -> bool:
        return str(rules.get(name, default)).lower() == "true"

    excluded = set(str(rules.get("ExcludeCharacters", "")))
    groups = [
        chars
        for chars, skip in (
            (string.ascii_lowercase, flag("ExcludeLowercase")),
            (string.ascii_uppercase, flag("ExcludeUppercase")),
            (string.digits, flag("ExcludeNumbers")),
            (_PUNCTUATION, flag("ExcludePunctuation")),
            (" ", not flag("IncludeSpace")),
        )
        if not skip
    ]
    groups = [cleaned for chars in groups if (cleaned := "".join(c for c in chars if c not in excluded))]
    if not groups or length < 1:
        raise TemplateError("GenerateSecretString leaves no characters to choose from")
    alphabet = "".join(groups)
    while True:
        value = "".join(secrets.choice(alphabet) for _ in range(length))
        if (
            not flag("RequireEachIncludedType", True)
            or length < len(groups)
            or all(any(c in g for c in value) for g in groups)
        ):
            break
    template_text, key = rules.get("SecretStringTemplate"), rules.get("GenerateStringKey")
    if template_text and key:
        document = json.loads(template_text)
        document[key] = value
        return json.dumps(document)
    return value
