"""Rule 12 at scale: the scheduled cleanup starts one run per expiry shard; a shard run purges its
shard only, never a live session, stops at its deadline and leaves the rest to the next run; an event
that is neither the schedule's nor a well-formed shard run's is refused and does nothing."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from chatbot_security.storage.records import LIVE, MessageRecord, SessionRecord, expiry_shard
from chatbot_security.storage.store import DynamoSessionStore
from session_cleanup.cleanup import Deadline, purge_buckets
from session_cleanup.events import RefusedEvent, ShardRun, parse_event, shard_names
from session_cleanup.fan_out import LambdaShardStarter, ShardStartFailed
from session_cleanup.handler import CleanupIncompleteError, lambda_handler
from tools.lambda_context import FakeLambdaContext
from tools.lambda_events import load_event

NOW = int(time.time())
FUNCTION = "chatbot-cleanup"


def add_session(store: DynamoSessionStore, shard: int, expires_in: int, messages: int = 2) -> str:
    session_id = str(uuid.uuid4())
    while expiry_shard(session_id) != shard:
        session_id = str(uuid.uuid4())
    created = NOW - 600
    store.put_new_session(
        SessionRecord(session_id, "owner", created, created + 86400, NOW + expires_in, created, 0, LIVE, b"k")
    )
    from chatbot_security.storage.items import message_item

    client = boto3.client("dynamodb")
    for seq in range(1, messages + 1):
        message = MessageRecord(session_id, seq, str(uuid.uuid4()), "user", created * 1000, b"ciphertext")
        client.put_item(TableName=store._table, Item=message_item(message, ttl=NOW + 86400))
    return session_id


def exists(store: DynamoSessionStore, session_id: str) -> bool:
    return store.get_session(session_id) is not None


class RecordingStarter:
    def __init__(self, failing: frozenset[str] = frozenset()) -> None:
        self.started: list[str] = []
        self._failing = failing

    def start(self, run: ShardRun) -> None:
        if run.shard in self._failing:
            raise ShardStartFailed(run.shard)
        self.started.append(run.shard)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SlowStore:
    """The DynamoDB store, with every purge taking one second of the injected clock."""

    def __init__(self, inner: DynamoSessionStore, clock: FakeClock) -> None:
        self._inner, self._clock = inner, clock

    def expiring_session_ids(self, bucket: str, now: int) -> Iterator[str]:
        return self._inner.expiring_session_ids(bucket, now)

    def claim_for_purge(self, session_id: str, now: int) -> bool:
        return self._inner.claim_for_purge(session_id, now)

    def purge_session(self, session_id: str) -> int:
        self._clock.now += 1
        return self._inner.purge_session(session_id)


def test_the_scheduled_run_invokes_this_function_once_per_shard_asynchronously() -> None:
    lambda_client = boto3.client("lambda", region_name="eu-west-1")
    with Stubber(lambda_client) as stub:
        for shard in shard_names():
            payload = json.dumps({"shard": shard}, separators=(",", ":")).encode()
            expected = {"FunctionName": FUNCTION, "InvocationType": "Event", "Payload": payload}
            stub.add_response("invoke", {"StatusCode": 202}, expected)
        starter = LambdaShardStarter(lambda: lambda_client, FUNCTION)

        result = lambda_handler(
            load_event("cleanup-schedule.json"), FakeLambdaContext(), store=BusyStore(), starter=starter
        )

        stub.assert_no_pending_responses()
    assert result["shards_started"] == 16


class EmptyStore:
    def __init__(self) -> None:
        self.queried: list[str] = []
        self.claimed: list[str] = []

    def expiring_session_ids(self, bucket: str, now: int) -> Iterator[str]:
        self.queried.append(bucket)
        return iter(())

    def claim_for_purge(self, session_id: str, now: int) -> bool:
        self.claimed.append(session_id)
        return False

    def purge_session(self, session_id: str) -> int:
        raise AssertionError("nothing to purge")


class BusyStore(EmptyStore):
    """Every shard key lists an ended session (which the probe finds and nobody purges here)."""

    def __init__(self, busy: frozenset[str] | None = None) -> None:
        super().__init__()
        self._busy = frozenset(shard_names()) if busy is None else busy

    def expiring_session_ids(self, bucket: str, now: int) -> Iterator[str]:
        self.queried.append(bucket)
        is_shard_key = bucket.startswith("EXP#") and len(bucket) == 6
        return iter(["ended-session"] if is_shard_key and bucket[4:] in self._busy else ())


def test_an_idle_scheduled_run_starts_no_shard_run() -> None:
    store, starter = EmptyStore(), RecordingStarter()

    result = lambda_handler(load_event("cleanup-schedule.json"), FakeLambdaContext(), store=store, starter=starter)

    assert starter.started == []
    assert [f"EXP#{shard}" for shard in shard_names()] == store.queried[:16]  # one probe per shard
    assert result == {"sessions_removed": 0, "items_removed": 0}


def test_the_scheduled_run_starts_a_run_for_each_shard_with_ended_sessions_only() -> None:
    starter = RecordingStarter()

    result = lambda_handler(
        load_event("cleanup-schedule.json"),
        FakeLambdaContext(),
        store=BusyStore(frozenset({"03", "11"})),
        starter=starter,
    )

    assert starter.started == ["03", "11"]
    assert result["shards_started"] == 2


def test_an_invocation_lambda_does_not_accept_is_a_failed_start() -> None:
    lambda_client = boto3.client("lambda", region_name="eu-west-1")
    with Stubber(lambda_client) as stub:
        stub.add_response("invoke", {"StatusCode": 200})
        with pytest.raises(ShardStartFailed):
            LambdaShardStarter(lambda: lambda_client, FUNCTION).start(ShardRun("03"))


def test_with_fan_out_the_scheduled_run_sweeps_only_the_migrations_hourly_keys_itself() -> None:
    store, starter = BusyStore(), RecordingStarter()
    lambda_handler(load_event("cleanup-schedule.json"), FakeLambdaContext(), store=store, starter=starter)
    assert starter.started == shard_names()
    assert store.claimed == []  # the shard keys' sessions are left to their shard runs


def test_a_shard_run_that_does_not_start_fails_the_scheduled_run_after_starting_the_others() -> None:
    starter = RecordingStarter(failing=frozenset({"05"}))
    with pytest.raises(CleanupIncompleteError):
        lambda_handler(load_event("cleanup-schedule.json"), FakeLambdaContext(), store=BusyStore(), starter=starter)
    assert starter.started == [shard for shard in shard_names() if shard != "05"]


def test_a_shard_run_purges_only_its_shards_ended_sessions(store: DynamoSessionStore, aws: Any) -> None:
    ended_here = [add_session(store, 7, expires_in=-10) for _ in range(3)]
    live_here = add_session(store, 7, expires_in=600)
    ended_elsewhere = add_session(store, 8, expires_in=-10)
    starter = RecordingStarter()

    result = lambda_handler({"shard": "07"}, FakeLambdaContext(), store=store, starter=starter)

    assert result == {"sessions_removed": 3, "items_removed": 9, "shard": "07"}
    assert not any(exists(store, session_id) for session_id in ended_here)
    assert exists(store, live_here)
    assert exists(store, ended_elsewhere)
    assert starter.started == []  # a shard run never starts another run


def test_a_shard_run_stops_at_its_deadline_and_the_next_run_finishes(store: DynamoSessionStore, aws: Any) -> None:
    ended = [add_session(store, 2, expires_in=-10, messages=0) for _ in range(14)]
    live = add_session(store, 2, expires_in=600)
    clock = FakeClock()  # FakeLambdaContext leaves 10 s: the run stops claiming after 9

    first = lambda_handler({"shard": "02"}, FakeLambdaContext(), store=SlowStore(store, clock), clock=clock)
    left = [session_id for session_id in ended if exists(store, session_id)]
    second = lambda_handler({"shard": "02"}, FakeLambdaContext(), store=SlowStore(store, clock), clock=clock)

    assert 9 <= first["sessions_removed"] < 14
    assert len(left) == 14 - first["sessions_removed"]
    assert second["sessions_removed"] == len(left)
    assert not any(exists(store, session_id) for session_id in ended)
    assert exists(store, live)


def test_a_run_past_its_deadline_claims_nothing() -> None:
    store = EmptyStore()
    clock = FakeClock()
    result = purge_buckets(store, ["EXP#00"], NOW, Deadline(clock.now, clock))
    assert result.deadline_reached
    assert (store.queried, store.claimed) == ([], [])


def test_workers_side_by_side_purge_each_ended_session_once(store: DynamoSessionStore, aws: Any) -> None:
    ended = [add_session(store, 11, expires_in=-10) for _ in range(12)]
    live = add_session(store, 11, expires_in=600)

    result = purge_buckets(store, ["EXP#11"], NOW, Deadline.never(), workers=4)

    assert (result.sessions_removed, result.items_removed, result.sessions_failed) == (12, 36, 0)
    assert not any(exists(store, session_id) for session_id in ended)
    assert exists(store, live)


FORGED_EVENTS = [
    {"shard": 7},
    {"shard": "7"},
    {"shard": "007"},
    {"shard": "16"},
    {"shard": "99"},
    {"shard": "-1"},
    {"shard": "EXP#07"},
    {"shard": "07\n"},
    {"shard": " 07"},
    {"shard": "\u0660\u0667"},  # Arabic-Indic digits
    {"shard": ["07"]},
    {"shard": None},
    {"shard": "07", "bucket": "EXP#2026-01-01T00"},
    {"shard": "07", "source": "aws.events", "detail-type": "Scheduled Event"},
    {},
    {"source": "aws.events"},
    {"detail-type": "Scheduled Event", "source": "aws.evil"},
    ["07"],
    "07",
    None,
]


@pytest.mark.parametrize("event", FORGED_EVENTS, ids=repr)
def test_a_forged_or_malformed_cleanup_event_is_refused_and_does_nothing(event: Any) -> None:
    store, starter = EmptyStore(), RecordingStarter()
    with pytest.raises(RefusedEvent):
        lambda_handler(event, FakeLambdaContext(), store=store, starter=starter)
    assert (store.queried, store.claimed, starter.started) == ([], [], [])


@pytest.mark.parametrize("shard", shard_names())
def test_every_shard_of_the_index_is_a_valid_shard_run(shard: str) -> None:
    assert parse_event({"shard": shard}) == ShardRun(shard)
    assert ShardRun(shard).bucket == f"EXP#{shard}"


def test_without_a_fan_out_target_the_scheduled_run_purges_every_shard_itself(
    store: DynamoSessionStore, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLEANUP_FUNCTION", "")  # what chatbot-local sets when nothing takes Lambda invocations
    ended = [add_session(store, shard, expires_in=-10) for shard in (0, 9, 15)]

    result = lambda_handler(load_event("cleanup-schedule.json"), FakeLambdaContext())

    assert result == {"sessions_removed": 3, "items_removed": 9}
    assert not any(exists(store, session_id) for session_id in ended)
