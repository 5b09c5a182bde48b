"""Attack tests of the edge's no-bypass check through `chatbot-local` (docs/edge.md): with
EDGE_PROTECTION=waf the real authorizer and chat handlers refuse every request that does not carry the
origin header CloudFront would add, including the anonymous route and, once a rotation completes, the
previous value; with the right value everything works."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from tools.local_api import RunningApi, running_chatbot_local

pytestmark = pytest.mark.local_api

HEADER = "X-Origin-Verify"
SECRET_NAME = "chatbot-local/EdgeOriginSecret"
# The containers forget the origin secret's values after a second, so a retired value is refused at once.
MAX_AGE_SECONDS = 1
FORBIDDEN = {"message": "Forbidden"}


@dataclass
class EdgeApi:
    api: RunningApi
    secrets: Any

    def value(self) -> str:
        return str(self.secrets.get_secret_value(SecretId=SECRET_NAME)["SecretString"])

    def create_anonymous(self, origin: str | None) -> tuple[int, Any]:
        headers = {HEADER: origin} if origin is not None else {}
        status, body, _ = self.api.call("POST", "/v1/anonymous-sessions", headers=headers)
        return status, body

    def list_sessions(self, token: str, origin: str | None) -> tuple[int, Any]:
        headers = {HEADER: origin} if origin is not None else {}
        status, body, _ = self.api.call("GET", "/v1/sessions", token, headers=headers)
        return status, body

    def wait_for_cache_expiry(self) -> None:
        time.sleep(MAX_AGE_SECONDS + 0.2)


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EdgeApi]:
    environ = {
        "EDGE_PROTECTION": "waf",
        "EDGE_ORIGIN_SECRET_MAX_AGE_SECONDS": str(MAX_AGE_SECONDS),
        "ANON_SESSIONS_PER_HOUR": "1000",
    }
    with running_chatbot_local(tmp_path_factory.mktemp("edge"), environ) as api:
        match = re.search(r"^AWS:   (http://127\.0\.0\.1:\d+) ", api.output(), re.MULTILINE)
        assert match is not None, api.output()
        secrets = boto3.client(
            "secretsmanager",
            endpoint_url=match.group(1),
            region_name=api.environ.get("AWS_REGION") or "us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        yield EdgeApi(api, secrets)


def test_it_says_the_edge_is_on_and_which_header_to_send(edge: EdgeApi) -> None:
    assert f"Edge:  requests need {HEADER} (value: secret {SECRET_NAME})" in edge.api.output().splitlines()


def test_a_request_without_the_origin_header_is_refused(edge: EdgeApi) -> None:
    token = edge.api.token("edge-alice")
    assert edge.list_sessions(token, None) == (403, FORBIDDEN)


def test_a_request_with_a_wrong_origin_header_is_refused(edge: EdgeApi) -> None:
    token = edge.api.token("edge-alice")
    assert edge.list_sessions(token, "not-the-secret") == (403, FORBIDDEN)


@pytest.mark.parametrize("origin", [None, "not-the-secret"], ids=["missing", "wrong"])
def test_the_anonymous_route_is_refused_without_a_valid_origin_header(edge: EdgeApi, origin: str | None) -> None:
    status, body = edge.create_anonymous(origin)
    assert status == 403
    assert body["error"]["code"] == "forbidden"


def test_with_the_right_value_everything_works(edge: EdgeApi) -> None:
    token = edge.api.token("edge-alice")
    value = edge.value()
    status, body = edge.create_anonymous(value)
    assert status == 201
    assert "session_token" in body
    assert edge.list_sessions(token, value)[0] == 200


def test_after_a_rotation_completes_the_previous_value_is_refused(edge: EdgeApi) -> None:
    token = edge.api.token("edge-bob")
    old = edge.value()
    old_version = edge.secrets.describe_secret(SecretId=SECRET_NAME)["VersionIdsToStages"]
    (old_version_id,) = [version for version, stages in old_version.items() if "AWSCURRENT" in stages]
    # Step 1 of the runbook: a new value becomes current, the old one previous; both are accepted
    new = "n" * 64
    edge.secrets.put_secret_value(SecretId=SECRET_NAME, SecretString=new)
    edge.wait_for_cache_expiry()
    assert edge.create_anonymous(old)[0] == 201
    assert edge.create_anonymous(new)[0] == 201
    assert edge.list_sessions(token, old)[0] == 200
    # Last step: the previous version is retired
    edge.secrets.update_secret_version_stage(
        SecretId=SECRET_NAME, VersionStage="AWSPREVIOUS", RemoveFromVersionId=old_version_id
    )
    edge.wait_for_cache_expiry()
    assert edge.create_anonymous(old)[0] == 403
    assert edge.list_sessions(token, old) == (403, FORBIDDEN)
    assert edge.create_anonymous(new)[0] == 201
    assert edge.list_sessions(token, new)[0] == 200
