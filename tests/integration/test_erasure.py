"""Erasure leaves nothing of the erased user: no ciphertext, no session metadata, no idempotency
record, no rate counter (hashed or not)."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest
from support.api import InProcessApi
from support.issuer_server import IssuerServer

pytestmark = pytest.mark.usefixtures("aws")
MESSAGES = "POST /v1/sessions/{session_id}/messages"


def all_items(table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = boto3.client("dynamodb").scan(TableName=table, ConsistentRead=True)["Items"]
    return items


def test_admin_erasure_leaves_no_item_of_the_user(
    oidc_env: IssuerServer, lambda_context: Any, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = InProcessApi(lambda_context)
    carol = oidc_env.issuer.token(sub="carol")
    dave = oidc_env.issuer.token(sub="dave")
    admin = oidc_env.issuer.token(sub="admin-1", amr=["mfa"], **{"cognito:groups": ["admin"]})
    for _ in range(2):
        session_id = api.call("POST /v1/sessions", carol).body["session_id"]
        body = {"content": "carol's words", "client_message_id": str(uuid.uuid4())}
        assert api.call(MESSAGES, carol, body, session_id=session_id).status == 201
    daves = api.call("POST /v1/sessions", dave).body["session_id"]
    api.call(MESSAGES, dave, {"content": "dave's words"}, session_id=daves)
    before = all_items(aws.table_name)

    assert api.call("DELETE /v1/admin/users/{subject}", admin, subject="carol").status == 204

    after = all_items(aws.table_name)
    removed = [item for item in before if item not in after]
    assert len(removed) >= 2 * (1 + 2 + 1) + 1  # 2 sessions x (session, 2 messages, idempotency) + rate counter
    assert not any(item["pk"]["S"].startswith("RATE#post#") and item in after for item in removed)
    # Dave's data is untouched
    assert api.call("GET /v1/sessions/{session_id}/messages", dave, session_id=daves).status == 200
    assert api.call("GET /v1/sessions", carol).body == {"sessions": []}
    owners_left = {item["owner_key"]["S"] for item in after if "owner_key" in item}
    assert len(owners_left) == 1  # only Dave's session remains
    rate_counters_left = [item for item in after if item["pk"]["S"].startswith("RATE#post#")]
    assert len(rate_counters_left) == 1  # Dave's
