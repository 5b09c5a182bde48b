"""GET /v1/usage through the real authorizer and chat handler against moto: the caller's tokens today and
the limit that binds it, for a signed-in user and for an anonymous token (docs/api.md, "Token quotas")."""

from __future__ import annotations

import functools
import time
from typing import Any

import boto3
import pytest
from support.api import InProcessApi
from support.caches import reset_caches
from support.issuer_server import IssuerServer

from chatbot_security.storage.usage import BUDGET_SHARDS, utc_day
from chatbot_security.storage.usage_table import DynamoUsage

pytestmark = pytest.mark.usefixtures("aws")
USAGE = "GET /v1/usage"


def configure(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_caches()


def starting_at(shard: int, _count: int) -> int:
    return shard


def anonymous_token(api: InProcessApi) -> tuple[str, str]:
    created = api.call("POST /v1/anonymous-sessions", None)
    assert created.status == 201
    return created.body["session_token"], created.body["session_id"]


def test_a_signed_in_user_sees_todays_usage_and_the_user_quota(
    api: InProcessApi, alice: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, TOKENS_PER_DAY="5000", ANON_TOKENS_PER_DAY="700")

    reply = api.call(USAGE, alice)

    assert reply.status == 200
    assert reply.body == {"period": utc_day(time.time())[0], "tokens_used": 0, "tokens_limit": 5000}
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.headers["Cache-Control"] == "no-store"


def test_an_anonymous_token_sees_the_anonymous_quota(api: InProcessApi, monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, TOKENS_PER_DAY="5000", ANON_TOKENS_PER_DAY="700")
    token, _ = anonymous_token(api)

    reply = api.call(USAGE, token)

    assert reply.status == 200
    assert reply.body["tokens_limit"] == 700


def test_an_anonymous_token_whose_session_was_deleted_gets_no_usage(api: InProcessApi) -> None:
    token, session_id = anonymous_token(api)
    assert api.call("DELETE /v1/sessions/{session_id}", token, session_id=session_id).status == 204

    assert api.call(USAGE, token).status == 404


def test_an_unknown_query_parameter_is_refused(api: InProcessApi, alice: str) -> None:
    reply = api.call(USAGE, alice, query={"owner": "someone-else"})

    assert reply.status == 422
    assert "someone-else" not in str(reply.body)


def test_the_limit_reported_shrinks_to_what_the_deployment_budget_has_left(
    api: InProcessApi, alice: str, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    configure(monkeypatch, TOKENS_PER_DAY="5000", DAILY_TOKEN_BUDGET="8000")
    client = boto3.client("dynamodb")
    for shard in range(BUDGET_SHARDS):  # other users took 900 of each shard's 1000
        others = DynamoUsage(lambda: client, aws.table_name, pick=functools.partial(starting_at, shard))
        others.reserve(others.reservation(f"someone-{shard}", 900, 5000, 8000))

    reply = api.call(USAGE, alice)

    assert reply.body["tokens_limit"] == 800


def test_a_caller_without_credentials_never_reaches_the_route(api: InProcessApi, oidc_env: IssuerServer) -> None:
    assert api.call(USAGE, None).status == 401
    assert api.call(USAGE, "not-a-token").status == 403


def test_a_turn_counts_the_models_usage_and_stores_it_with_the_answer(api: InProcessApi, alice: str, aws: Any) -> None:
    session_id = api.call("POST /v1/sessions", alice).body["session_id"]
    assert api.call("POST /v1/sessions/{session_id}/messages", alice, {"content": "hello there"},
                    session_id=session_id).status == 201  # fmt: skip

    used = api.call(USAGE, alice).body["tokens_used"]

    items = boto3.client("dynamodb").query(
        TableName=aws.table_name,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :msg)",
        ExpressionAttributeValues={":pk": {"S": f"SESSION#{session_id}"}, ":msg": {"S": "MSG#"}},
    )["Items"]
    question, answer = sorted(items, key=lambda item: item["sk"]["S"])
    assert "input_tokens" not in question
    assert used == int(answer["input_tokens"]["N"]) + int(answer["output_tokens"]["N"]) > 0
