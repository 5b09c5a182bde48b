"""Erasure leaves nothing of the erased user: no ciphertext, no session metadata, no idempotency
record; only the pseudonymous rate counters, until they expire (erasing must not reset a budget)."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

import boto3
import pytest
from support.api import InProcessApi
from support.caches import reset_caches
from support.faults import injecting_aws_faults
from support.issuer_server import IssuerServer

from chatbot_security.storage.store import DynamoSessionStore

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
    assert len(removed) >= 2 * (1 + 2 + 1)  # 2 sessions x (session, 2 messages, idempotency)
    assert not any(item["pk"]["S"].startswith("RATE#") for item in removed)
    # Dave's data is untouched
    assert api.call("GET /v1/sessions/{session_id}/messages", dave, session_id=daves).status == 200
    assert api.call("GET /v1/sessions", carol).body == {"sessions": [], "next_cursor": None}
    assert not any(item["pk"]["S"].startswith("LIVE#") and item in after for item in removed)
    owners_left = {item["owner_key"]["S"] for item in after if "owner_key" in item}
    assert len(owners_left) == 1  # only Dave's session remains
    rate_counters_left = [item for item in after if item["pk"]["S"].startswith("RATE#post#")]
    assert len(rate_counters_left) == 2  # Carol's, kept until it expires, and Dave's


ERASE = "DELETE /v1/admin/users/{subject}"


def carols_sessions(api: InProcessApi, carol: str, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        session_id = api.call("POST /v1/sessions", carol).body["session_id"]
        assert api.call(MESSAGES, carol, {"content": "carol's words"}, session_id=session_id).status == 201
        ids.append(session_id)
    return ids


def items_of_sessions(table: str, session_ids: list[str]) -> list[dict[str, Any]]:
    keys = {f"SESSION#{session_id}" for session_id in session_ids}
    return [item for item in all_items(table) if item["pk"]["S"] in keys]


def test_a_session_purged_between_listing_and_erasing_does_not_stop_the_erasure(
    oidc_env: IssuerServer, lambda_context: Any, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = InProcessApi(lambda_context)
    carol = oidc_env.issuer.token(sub="carol")
    admin = oidc_env.issuer.token(sub="admin-1", amr=["mfa"], **{"cognito:groups": ["admin"]})
    sessions = carols_sessions(api, carol, 3)
    concurrent = DynamoSessionStore(lambda: boto3.client("dynamodb"), aws.table_name, idle_seconds=1800)
    listed = DynamoSessionStore.sessions_of

    def listing_then_a_concurrent_purge(store: DynamoSessionStore, owner_key: str) -> list[Any]:
        records = listed(store, owner_key)
        first = sorted(records, key=lambda record: record.created_ms)[0]
        concurrent.mark_deleted(first, int(time.time()))  # the user's own delete, or the cleanup
        assert concurrent.claim_for_purge(first.session_id, int(time.time()))
        concurrent.purge_session(first.session_id)
        return records

    monkeypatch.setattr(DynamoSessionStore, "sessions_of", listing_then_a_concurrent_purge)

    reply = api.call(ERASE, admin, subject="carol")

    assert reply.status == 204
    assert items_of_sessions(aws.table_name, sessions) == []


def test_an_erasure_that_cannot_finish_is_503_with_retry_after_and_a_retry_completes_it(
    oidc_env: IssuerServer, lambda_context: Any, aws: Any
) -> None:
    api = InProcessApi(lambda_context)
    carol = oidc_env.issuer.token(sub="carol")
    admin = oidc_env.issuer.token(sub="admin-1", amr=["mfa"], **{"cognito:groups": ["admin"]})
    sessions = carols_sessions(api, carol, 3)
    reset_caches()  # the chat function's clients are created again, inside the fault injection

    with injecting_aws_faults() as faults:
        faults.arm("dynamodb", "UpdateItem", "throttled", skip=1)  # ending the second session fails
        first = api.call(ERASE, admin, subject="carol")
        faults.heal()

        assert first.status == 503
        assert int(first.headers["Retry-After"]) >= 1
        assert first.body["error"]["code"] == "service_unavailable"
        assert len({item["pk"]["S"] for item in items_of_sessions(aws.table_name, sessions)}) == 1

        assert api.call(ERASE, admin, subject="carol").status == 204
    assert items_of_sessions(aws.table_name, sessions) == []


def test_admin_erasure_through_the_api_leaves_an_audit_event_with_hashes_only(
    oidc_env: IssuerServer, lambda_context: Any, log_output: Any
) -> None:
    api = InProcessApi(lambda_context)
    carol = oidc_env.issuer.token(sub="carol-7f3a9c")
    admin = oidc_env.issuer.token(sub="admin-1", amr=["mfa"], **{"cognito:groups": ["admin"]})
    carols_sessions(api, carol, 2)

    assert api.call(ERASE, admin, subject="carol-7f3a9c").status == 204

    lines = [json.loads(line) for line in log_output.getvalue().splitlines() if line.strip()]
    [event] = [line["audit"] for line in lines if line.get("message") == "audit"]
    assert event["action"] == "admin_erase_user"
    assert (event["count"], event["outcome"]) == (2, "erased")
    assert re.fullmatch(r"[a-p]{64}", event["actor"])
    assert re.fullmatch(r"[a-p]{64}", event["target"])
    assert event["actor"] != event["target"]
    assert "carol-7f3a9c" not in log_output.getvalue()
    assert "admin-1" not in log_output.getvalue()
