"""The DynamoDB store's turn operations against moto: one Query for a warm turn's reads, one
transaction to claim a client_message_id (with the rate counter and the session's room), and a turn
written whole with its idempotency record, or not at all."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest

from chatbot_security.storage.errors import ChargeRefused, ConflictError, TurnAlreadyClaimed
from chatbot_security.storage.ratelimit import RateCharge, RateLimiter
from chatbot_security.storage.records import LIVE, TURN_DONE, TURN_PENDING, MessageRecord, SessionRecord, TurnClaim
from chatbot_security.storage.store import DynamoSessionStore

NOW = 1_800_000_000


@pytest.fixture
def store(aws: Any) -> DynamoSessionStore:
    client = boto3.client("dynamodb")
    return DynamoSessionStore(lambda: client, aws.table_name, idle_seconds=1800)


@pytest.fixture
def limiter(aws: Any) -> RateLimiter:
    client = boto3.client("dynamodb")
    return RateLimiter(lambda: client, aws.table_name, clock=lambda: NOW)


def new_session(store: DynamoSessionStore, owner: str = "owner-hash") -> SessionRecord:
    record = SessionRecord(str(uuid.uuid4()), owner, NOW, NOW + 86400, NOW + 1800, NOW, 0, LIVE, b"wrapped", NOW * 1000)
    store.put_new_session(record)
    return record


def add_turns(store: DynamoSessionStore, session: SessionRecord, turns: int) -> SessionRecord:
    for _ in range(turns):
        seq = session.message_count
        messages = [
            MessageRecord(session.session_id, seq + 1, str(uuid.uuid4()), "user", NOW * 1000, b"q"),
            MessageRecord(session.session_id, seq + 2, str(uuid.uuid4()), "assistant", NOW * 1000 + 1, b"a"),
        ]
        session = store.append_turn(session, messages, NOW)
    return session


def claim_for(session: SessionRecord, key: str | None = None, attempt: str = "attempt-1", lease: int = 60) -> TurnClaim:
    return TurnClaim(session.session_id, key or str(uuid.uuid4()), "fp", attempt, NOW, NOW + lease, NOW + 86400)


def charge(limiter: RateLimiter, limit: int = 10) -> RateCharge:
    return limiter.charge("post", "principal-hash", limit, 60)


def test_one_query_returns_the_session_and_its_latest_messages(store: DynamoSessionStore) -> None:
    session = add_turns(store, new_session(store), 5)

    found, recent = store.session_with_recent(session.session_id, 4)

    assert found == session
    assert [m.seq for m in recent] == [7, 8, 9, 10]


def test_the_query_ignores_idempotency_records(store: DynamoSessionStore, limiter: RateLimiter) -> None:
    session = new_session(store)
    store.claim_turn(claim_for(session), session, 198, charge(limiter))

    found, recent = store.session_with_recent(session.session_id, 20)

    assert found == session
    assert recent == []


def test_a_missing_session_is_none(store: DynamoSessionStore) -> None:
    assert store.session_with_recent(str(uuid.uuid4()), 20) == (None, [])


def test_a_repeated_claim_reports_the_existing_record(store: DynamoSessionStore, limiter: RateLimiter) -> None:
    session = new_session(store)
    first = claim_for(session)
    store.claim_turn(first, session, 198, charge(limiter))

    with pytest.raises(TurnAlreadyClaimed) as taken:
        store.claim_turn(claim_for(session, first.request_key, attempt="attempt-2"), session, 198, charge(limiter))

    assert taken.value.record is not None
    assert (taken.value.record.token, taken.value.record.state) == ("attempt-1", TURN_PENDING)


def test_a_claim_on_a_full_session_writes_nothing(store: DynamoSessionStore, limiter: RateLimiter) -> None:
    session = add_turns(store, new_session(store), 1)
    claim = claim_for(session)

    with pytest.raises(ConflictError):
        store.claim_turn(claim, session, 0, charge(limiter, limit=1))

    assert store.get_turn(session.session_id, claim.request_key) is None
    store.claim_turn(claim_for(session), session, 2, charge(limiter, limit=1))  # the counter was not charged


def test_a_claim_over_the_rate_limit_writes_nothing(store: DynamoSessionStore, limiter: RateLimiter) -> None:
    session = new_session(store)
    store.claim_turn(claim_for(session), session, 198, charge(limiter, limit=1))
    refused = claim_for(session)

    with pytest.raises(ChargeRefused):
        store.claim_turn(refused, session, 198, charge(limiter, limit=1))

    assert store.get_turn(session.session_id, refused.request_key) is None


def test_a_claimed_turn_is_completed_in_the_same_transaction(store: DynamoSessionStore, limiter: RateLimiter) -> None:
    session = new_session(store)
    claim = claim_for(session)
    store.claim_turn(claim, session, 198, charge(limiter))
    messages = [
        MessageRecord(session.session_id, 1, "u", "user", NOW * 1000, b"q"),
        MessageRecord(session.session_id, 2, "a", "assistant", NOW * 1000, b"a"),
    ]

    store.append_turn(session, messages, NOW, claim)

    record = store.get_turn(session.session_id, claim.request_key)
    assert record is not None
    assert (record.state, record.seq) == (TURN_DONE, 1)


def test_a_turn_whose_claim_was_taken_over_is_not_written(store: DynamoSessionStore, limiter: RateLimiter) -> None:
    session = new_session(store)
    lost = claim_for(session, lease=0)
    store.claim_turn(lost, session, 198, charge(limiter))
    store.claim_turn(claim_for(session, lost.request_key, attempt="attempt-2"), session, 198, charge(limiter))
    messages = [MessageRecord(session.session_id, 1, "u", "user", NOW * 1000, b"q")]

    with pytest.raises(ConflictError):
        store.append_turn(session, messages, NOW, lost)

    assert store.session_with_recent(session.session_id, 5) == (session, [])


def test_only_the_claims_own_attempt_releases_it(store: DynamoSessionStore, limiter: RateLimiter) -> None:
    session = new_session(store)
    claim = claim_for(session)
    store.claim_turn(claim, session, 198, charge(limiter))

    store.release_turn(claim_for(session, claim.request_key, attempt="someone-else"))
    assert store.get_turn(session.session_id, claim.request_key) is not None
    store.release_turn(claim)
    assert store.get_turn(session.session_id, claim.request_key) is None


def test_purging_a_session_removes_its_idempotency_records(store: DynamoSessionStore, limiter: RateLimiter) -> None:
    session = new_session(store)
    claim = claim_for(session)
    store.claim_turn(claim, session, 198, charge(limiter))
    store.mark_deleted(session, NOW)
    assert store.claim_for_purge(session.session_id, NOW)

    store.purge_session(session.session_id)

    assert store.get_turn(session.session_id, claim.request_key) is None
