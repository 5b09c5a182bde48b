"""Rule 12: cleanup removes every item of expired and deleted sessions, resumes after a crash,
and never touches a live session."""

from __future__ import annotations

import time
import uuid
from typing import Any

import boto3
import pytest

from chatbot_security.storage.records import (
    EXPIRY_SHARDS,
    LIVE,
    MessageRecord,
    SessionRecord,
    expiry_bucket,
    expiry_buckets,
    legacy_expiry_bucket,
)
from chatbot_security.storage.store import DynamoSessionStore
from session_cleanup.cleanup import LOOKBACK_HOURS, purge_expired_sessions, swept_buckets
from session_cleanup.handler import lambda_handler
from tools.lambda_events import load_event

NOW = int(time.time())


def add_session(store: DynamoSessionStore, expires_in: int, messages: int = 4) -> str:
    session_id = str(uuid.uuid4())
    created = NOW - 600
    record = SessionRecord(session_id, "owner", created, created + 86400, NOW + expires_in, created, 0, LIVE, b"k")
    store.put_new_session(record)
    turns = [
        MessageRecord(session_id, seq, str(uuid.uuid4()), "user", created * 1000, b"ciphertext")
        for seq in range(1, messages + 1)
    ]
    if turns:
        client = boto3.client("dynamodb")
        for message in turns:
            from chatbot_security.storage.items import message_item as _message_item

            client.put_item(TableName=store._table, Item=_message_item(message, ttl=NOW + 86400))
    return session_id


def item_count(aws: Any, session_id: str) -> int:
    response = boto3.client("dynamodb").query(
        TableName=aws.table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"SESSION#{session_id}"}},
    )
    return len(response["Items"])


def test_expired_sessions_are_removed_and_live_ones_kept(store: DynamoSessionStore, aws: Any) -> None:
    expired = [add_session(store, expires_in=-3600 * hours - 5) for hours in (0, 1, 5)]
    live = [add_session(store, expires_in=600), add_session(store, expires_in=3600 * 20)]
    result = purge_expired_sessions(store, NOW)
    assert result.sessions_removed == 3
    assert result.items_removed == 3 * 5
    assert all(item_count(aws, sid) == 0 for sid in expired)
    assert all(item_count(aws, sid) == 5 for sid in live)


def test_deleted_session_is_removed(store: DynamoSessionStore, aws: Any) -> None:
    session_id = add_session(store, expires_in=600)
    record = store.get_session(session_id)
    assert record is not None
    store.mark_deleted(record, NOW)
    purge_expired_sessions(store, NOW)
    assert item_count(aws, session_id) == 0


def test_a_session_that_became_live_again_is_never_claimed(store: DynamoSessionStore, aws: Any) -> None:
    session_id = add_session(store, expires_in=600)
    assert store.claim_for_purge(session_id, NOW) is False
    assert item_count(aws, session_id) == 5


def test_cleanup_resumes_after_a_crash_midway(
    store: DynamoSessionStore, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    session_id = add_session(store, expires_in=-10, messages=60)
    calls = {"n": 0}
    real_delete = DynamoSessionStore._delete_batch

    def crash_after_first_batch(self: DynamoSessionStore, keys: list[dict[str, Any]]) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("container died")
        return real_delete(self, keys)

    monkeypatch.setattr(DynamoSessionStore, "_delete_batch", crash_after_first_batch)
    first = purge_expired_sessions(store, NOW)
    assert first.sessions_failed == 1
    assert 0 < item_count(aws, session_id) < 61
    monkeypatch.setattr(DynamoSessionStore, "_delete_batch", real_delete)
    second = purge_expired_sessions(store, NOW)
    assert second.sessions_removed == 1
    assert item_count(aws, session_id) == 0
    assert purge_expired_sessions(store, NOW).sessions_removed == 0  # idempotent


def test_unprocessed_batch_items_are_retried() -> None:
    class FlakyDynamo:
        def __init__(self) -> None:
            self.calls = 0

        def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803
            self.calls += 1
            requests = RequestItems["t"]
            return {"UnprocessedItems": {"t": requests[1:]}} if len(requests) > 1 else {}

    flaky = FlakyDynamo()
    store = DynamoSessionStore(lambda: flaky, "t", idle_seconds=60, sleep=lambda _: None)
    assert store._delete_batch([{"pk": {"S": str(n)}} for n in range(3)]) == 3
    assert flaky.calls == 3


def test_handler_runs_on_the_schedule_event(store: DynamoSessionStore, aws: Any, lambda_context: Any) -> None:
    session_id = add_session(store, expires_in=-10)
    result = lambda_handler(load_event("cleanup-schedule.json"), lambda_context)
    assert result == {"sessions_removed": 1, "items_removed": 5}
    assert item_count(aws, session_id) == 0


def test_handler_fails_the_invocation_when_a_purge_failed(
    store: DynamoSessionStore, aws: Any, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from session_cleanup.handler import CleanupIncompleteError

    add_session(store, expires_in=-10)
    monkeypatch.setattr(DynamoSessionStore, "purge_session", lambda self, sid: (_ for _ in ()).throw(RuntimeError()))
    with pytest.raises(CleanupIncompleteError):
        lambda_handler(load_event("cleanup-schedule.json"), lambda_context)


def add_legacy_session(store: DynamoSessionStore, expires_in: int) -> str:
    """A session item as written before the expiry index was sharded: keyed by its expiry's hour."""
    session_id = add_session(store, expires_in=expires_in)
    boto3.client("dynamodb").update_item(
        TableName=store._table,
        Key={"pk": {"S": f"SESSION#{session_id}"}, "sk": {"S": "SESSION"}},
        UpdateExpression="SET expiry_bucket = :hour",
        ExpressionAttributeValues={":hour": {"S": legacy_expiry_bucket(NOW + expires_in)}},
    )
    return session_id


def test_an_ended_session_under_the_earlier_hourly_key_is_still_removed(store: DynamoSessionStore, aws: Any) -> None:
    ended = add_legacy_session(store, expires_in=-3600 * 30)
    live = add_legacy_session(store, expires_in=600)
    result = purge_expired_sessions(store, NOW)
    assert result.sessions_removed == 1
    assert item_count(aws, ended) == 0
    assert item_count(aws, live) == 5


def test_a_turn_moves_a_session_from_the_hourly_key_to_its_shard(store: DynamoSessionStore, aws: Any) -> None:
    session_id = add_legacy_session(store, expires_in=600)
    session = store.get_session(session_id)
    assert session is not None
    message = MessageRecord(session_id, 5, str(uuid.uuid4()), "user", NOW * 1000, b"ciphertext")
    store.append_turn(session, [message], NOW)
    item = boto3.client("dynamodb").get_item(
        TableName=aws.table_name, Key={"pk": {"S": f"SESSION#{session_id}"}, "sk": {"S": "SESSION"}}
    )["Item"]
    assert item["expiry_bucket"]["S"] == expiry_bucket(session_id)


def test_a_sweep_queries_every_shard_and_the_hourly_keys_of_the_look_back() -> None:
    buckets = swept_buckets(NOW)
    assert buckets[:EXPIRY_SHARDS] == expiry_buckets()
    assert len(buckets) == EXPIRY_SHARDS + LOOKBACK_HOURS + 1
    assert legacy_expiry_bucket(NOW - LOOKBACK_HOURS * 3600) in buckets
