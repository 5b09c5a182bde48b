"""The session store's contract: the same cases against the in-memory fake of the unit tests and
against the DynamoDB store on moto (the table made from template.yaml), so the fake cannot drift from
the store it stands in for."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import boto3
import pytest

from chatbot_security.storage.errors import ChargeRefused, ConflictError, LiveLimitReached, TurnAlreadyClaimed
from chatbot_security.storage.ratelimit import RateCharge, RateLimiter
from chatbot_security.storage.records import (
    DELETED,
    LIVE,
    PURGING,
    TURN_DONE,
    TURN_PENDING,
    MessageRecord,
    SessionRecord,
    TurnClaim,
    expiry_bucket,
    expiry_buckets,
)
from chatbot_security.storage.store import DynamoSessionStore, SessionStore
from tools.fakes import InMemoryRateLimiter, InMemorySessionStore

NOW = 1_800_000_000
IDLE = 1800
OWNER = "owner-hash"
OTHER = "other-owner-hash"


@pytest.fixture(params=["in-memory", "dynamodb"])
def backend(request: pytest.FixtureRequest) -> tuple[SessionStore, RateLimiter]:
    """A store and the rate limiter that counts in the same place, of each kind."""
    if request.param == "in-memory":
        fake = InMemorySessionStore(idle_seconds=IDLE)
        return fake, InMemoryRateLimiter(fake, clock=lambda: NOW)
    aws = request.getfixturevalue("aws")
    client = boto3.client("dynamodb")
    store = DynamoSessionStore(lambda: client, aws.table_name, idle_seconds=IDLE, sleep=lambda _: None)
    return store, RateLimiter(lambda: client, aws.table_name, clock=lambda: NOW)


@pytest.fixture
def store(backend: tuple[SessionStore, RateLimiter]) -> SessionStore:
    return backend[0]


@pytest.fixture
def limiter(backend: tuple[SessionStore, RateLimiter]) -> RateLimiter:
    return backend[1]


def record(
    owner: str = OWNER, *, created: int = NOW, expires_in: int = IDLE, created_ms: int | None = None
) -> SessionRecord:
    return SessionRecord(
        session_id=str(uuid.uuid4()),
        owner_key=owner,
        created_at=created,
        absolute_expires_at=created + 86400,
        expires_at=created + expires_in,
        last_active_at=created,
        message_count=0,
        status=LIVE,
        wrapped_key=b"wrapped-key",
        created_ms=created * 1000 if created_ms is None else created_ms,
    )


def new_session(store: SessionStore, owner: str = OWNER, live_limit: int | None = None, **kwargs: Any) -> SessionRecord:
    session = record(owner, **kwargs)
    store.put_new_session(session, live_limit)
    found = store.get_session(session.session_id)
    assert found is not None
    return found


def turn_messages(session: SessionRecord, first_seq: int | None = None) -> Sequence[MessageRecord]:
    seq = session.message_count if first_seq is None else first_seq - 1
    return [
        MessageRecord(session.session_id, seq + 1, str(uuid.uuid4()), "user", NOW * 1000, b"question"),
        MessageRecord(session.session_id, seq + 2, str(uuid.uuid4()), "assistant", NOW * 1000 + 1, b"answer"),
    ]


def add_turns(store: SessionStore, session: SessionRecord, turns: int) -> SessionRecord:
    for _ in range(turns):
        session = store.append_turn(session, turn_messages(session), NOW)
    return session


def turn_messages_of(store: SessionStore, session_id: str) -> list[MessageRecord]:
    return store.messages(session_id, 0, 100)[0]


def claim_for(session: SessionRecord, key: str = "request-1", attempt: str = "attempt-1", lease: int = 60) -> TurnClaim:
    return TurnClaim(session.session_id, key, "fingerprint", attempt, NOW, NOW + lease, NOW + 86400)


def charge(limiter: RateLimiter, limit: int = 10) -> RateCharge:
    return limiter.charge("post", OWNER, limit, 60)


# -- sessions --------------------------------------------------------------------------------------


def test_a_new_session_reads_back_as_written(store: SessionStore) -> None:
    session = record()
    store.put_new_session(session)

    assert store.get_session(session.session_id) == session


def test_a_session_without_creation_milliseconds_reads_back_with_them(store: SessionStore) -> None:
    session = record(created_ms=0)
    store.put_new_session(session)

    found = store.get_session(session.session_id)

    assert found is not None
    assert found.created_ms == NOW * 1000


def test_a_session_counted_by_the_live_limit_reads_back_as_counted(store: SessionStore) -> None:
    session = new_session(store, live_limit=5)

    assert session.live_counted is True


def test_an_unknown_session_is_none(store: SessionStore) -> None:
    assert store.get_session(str(uuid.uuid4())) is None


@pytest.mark.parametrize("live_limit", [None, 5])
def test_a_session_id_is_written_once(store: SessionStore, live_limit: int | None) -> None:
    session = record()
    store.put_new_session(session, live_limit)

    with pytest.raises(ConflictError):
        store.put_new_session(replace(session, owner_key=OTHER), live_limit)

    assert store.get_session(session.session_id) == replace(session, live_counted=live_limit is not None)


def test_the_live_limit_refuses_one_session_too_many(store: SessionStore) -> None:
    for _ in range(2):
        new_session(store, live_limit=2)

    with pytest.raises(LiveLimitReached):
        new_session(store, live_limit=2)
    new_session(store, OTHER, live_limit=2)  # another owner has a counter of its own


def test_a_deleted_session_frees_its_place_under_the_live_limit(store: SessionStore) -> None:
    first = new_session(store, live_limit=1)

    store.mark_deleted(first, NOW)

    new_session(store, live_limit=1)


def test_sessions_created_without_the_limit_are_not_counted(store: SessionStore) -> None:
    new_session(store)

    new_session(store, live_limit=1)
    with pytest.raises(LiveLimitReached):
        new_session(store, live_limit=1)


def test_the_owner_listing_has_every_session_of_the_owner_whatever_its_state(store: SessionStore) -> None:
    live = new_session(store)
    deleted = new_session(store, created=NOW + 1)
    store.mark_deleted(deleted, NOW + 2)
    new_session(store, OTHER)

    listed = store.sessions_of(OWNER)

    assert {(s.session_id, s.status) for s in listed} == {(live.session_id, LIVE), (deleted.session_id, DELETED)}


def test_the_owner_listing_carries_neither_the_wrapped_key_nor_the_counted_flag(store: SessionStore) -> None:
    session = new_session(store, live_limit=5)

    [listed] = store.sessions_of(OWNER)

    assert listed == replace(session, wrapped_key=b"", live_counted=None)


def test_the_session_page_lists_usable_sessions_oldest_first(store: SessionStore) -> None:
    sessions = [new_session(store, created=NOW - 10 + i) for i in range(3)]
    ended = new_session(store, created=NOW - 20)
    store.mark_deleted(ended, NOW - 5)
    new_session(store, created=NOW - 30, expires_in=20)  # idle past its expiry
    new_session(store, OTHER, created=NOW - 15)

    page, more = store.session_page(OWNER, NOW, None, 10)

    assert [s.session_id for s in page] == [s.session_id for s in sessions]
    assert more is False
    assert page[0] == replace(sessions[0], wrapped_key=b"", live_counted=None)


def test_the_session_page_continues_after_the_last_one_listed(store: SessionStore) -> None:
    sessions = [new_session(store, created=NOW - 10 + i, created_ms=(NOW - 10 + i) * 1000 + 7) for i in range(5)]

    first, more = store.session_page(OWNER, NOW, None, 2)
    last = first[-1]
    second, more_after = store.session_page(OWNER, NOW, (last.created_ms, last.session_id), 2)
    third, done = store.session_page(OWNER, NOW, (second[-1].created_ms, second[-1].session_id), 2)

    assert [s.session_id for s in first + second + third] == [s.session_id for s in sessions]
    assert (more, more_after, done) == (True, True, False)


def test_an_exact_page_says_nothing_more_follows(store: SessionStore) -> None:
    for i in range(2):
        new_session(store, created=NOW - 10 + i)

    page, more = store.session_page(OWNER, NOW, None, 2)

    assert (len(page), more) == (2, False)


# -- messages --------------------------------------------------------------------------------------


def test_one_read_returns_the_session_and_its_latest_messages_oldest_first(store: SessionStore) -> None:
    session = add_turns(store, new_session(store), 3)

    found, recent = store.session_with_recent(session.session_id, 4)

    assert found == session
    assert [m.seq for m in recent] == [3, 4, 5, 6]


def test_the_recent_read_of_an_unknown_session_is_empty(store: SessionStore) -> None:
    assert store.session_with_recent(str(uuid.uuid4()), 4) == (None, [])


def test_the_recent_read_leaves_out_idempotency_records(store: SessionStore, limiter: RateLimiter) -> None:
    session = new_session(store)
    store.claim_turn(claim_for(session), session, 198, charge(limiter))

    assert store.session_with_recent(session.session_id, 4) == (session, [])


def test_messages_come_a_page_at_a_time_after_a_sequence_number(store: SessionStore) -> None:
    session = add_turns(store, new_session(store), 3)

    first, more = store.messages(session.session_id, 0, 4)
    rest, more_after = store.messages(session.session_id, first[-1].seq, 4)

    assert [m.seq for m in first] == [1, 2, 3, 4]
    assert [m.seq for m in rest] == [5, 6]
    assert (more, more_after) == (True, False)


def test_a_stored_turn_moves_the_count_and_the_idle_expiry(store: SessionStore) -> None:
    session = new_session(store)

    updated = store.append_turn(session, turn_messages(session), NOW + 60)

    assert updated == replace(session, message_count=2, last_active_at=NOW + 60, expires_at=NOW + 60 + IDLE)
    assert store.get_session(session.session_id) == updated


def test_a_turn_written_from_a_stale_count_is_refused(store: SessionStore) -> None:
    session = new_session(store)
    add_turns(store, session, 1)

    with pytest.raises(ConflictError):
        store.append_turn(session, turn_messages(session, first_seq=3), NOW)

    assert [m.seq for m in turn_messages_of(store, session.session_id)] == [1, 2]


def test_a_turn_never_overwrites_a_stored_message(store: SessionStore) -> None:
    session = add_turns(store, new_session(store), 1)
    before = turn_messages_of(store, session.session_id)

    with pytest.raises(ConflictError):
        store.append_turn(session, turn_messages(session, first_seq=2), NOW)

    assert turn_messages_of(store, session.session_id) == before
    assert store.get_session(session.session_id) == session


@pytest.mark.parametrize("case", ["other owner", "deleted", "expired", "unknown"])
def test_a_turn_is_written_only_into_the_owners_live_session(store: SessionStore, case: str) -> None:
    session = new_session(store)
    if case == "deleted":
        store.mark_deleted(session, NOW - 1)
    target = {
        "other owner": replace(session, owner_key=OTHER),
        "deleted": session,
        "expired": session,
        "unknown": replace(session, session_id=str(uuid.uuid4())),
    }[case]
    now = NOW + IDLE if case == "expired" else NOW

    with pytest.raises(ConflictError):
        store.append_turn(target, turn_messages(target), now)

    assert turn_messages_of(store, target.session_id) == []


# -- turns -----------------------------------------------------------------------------------------


def test_a_claim_is_pending_until_its_turn_is_stored(store: SessionStore, limiter: RateLimiter) -> None:
    session = new_session(store)
    claim = claim_for(session)

    store.claim_turn(claim, session, 198, charge(limiter))
    pending = store.get_turn(session.session_id, claim.request_key)
    store.append_turn(session, turn_messages(session), NOW, claim=claim)
    done = store.get_turn(session.session_id, claim.request_key)

    assert pending is not None
    assert (pending.state, pending.token, pending.fingerprint, pending.lease_until) == (
        TURN_PENDING, "attempt-1", "fingerprint", NOW + 60)  # fmt: skip
    assert done == replace(pending, state=TURN_DONE, seq=1, lease_until=0)


def test_an_unknown_turn_is_none(store: SessionStore) -> None:
    assert store.get_turn(str(uuid.uuid4()), "request-1") is None


@pytest.mark.parametrize("stored", [False, True])
def test_a_repeated_claim_reports_the_existing_record(store: SessionStore, limiter: RateLimiter, stored: bool) -> None:
    session = new_session(store)
    store.claim_turn(claim_for(session), session, 198, charge(limiter))
    if stored:
        store.append_turn(session, turn_messages(session), NOW, claim=claim_for(session))
    current = store.get_session(session.session_id)
    assert current is not None

    with pytest.raises(TurnAlreadyClaimed) as taken:
        store.claim_turn(claim_for(current, attempt="attempt-2"), current, 198, charge(limiter))

    assert taken.value.record == store.get_turn(session.session_id, "request-1")


def test_an_abandoned_claim_is_taken_over(store: SessionStore, limiter: RateLimiter) -> None:
    session = new_session(store)
    store.claim_turn(claim_for(session, lease=0), session, 198, charge(limiter))

    store.claim_turn(claim_for(session, attempt="attempt-2"), session, 198, charge(limiter))

    record = store.get_turn(session.session_id, "request-1")
    assert record is not None
    assert (record.token, record.state) == ("attempt-2", TURN_PENDING)


def test_a_turn_whose_claim_was_taken_over_is_not_written(store: SessionStore, limiter: RateLimiter) -> None:
    session = new_session(store)
    store.claim_turn(claim_for(session, lease=0), session, 198, charge(limiter))
    store.claim_turn(claim_for(session, attempt="attempt-2"), session, 198, charge(limiter))

    with pytest.raises(ConflictError):
        store.append_turn(session, turn_messages(session), NOW, claim=claim_for(session, lease=0))

    assert store.get_session(session.session_id) == session
    assert turn_messages_of(store, session.session_id) == []


def test_a_turn_with_a_claim_nobody_made_is_not_written(store: SessionStore) -> None:
    session = new_session(store)

    with pytest.raises(ConflictError):
        store.append_turn(session, turn_messages(session), NOW, claim=claim_for(session))

    assert store.get_session(session.session_id) == session


@pytest.mark.parametrize("case", ["full", "other owner", "deleted", "expired", "unknown"])
def test_a_claim_on_a_session_without_room_writes_nothing(store: SessionStore, limiter: RateLimiter, case: str) -> None:
    session = add_turns(store, new_session(store), 1)
    if case == "deleted":
        store.mark_deleted(session, NOW - 1)
    target = replace(session, owner_key=OTHER) if case == "other owner" else session
    if case == "unknown":
        target = replace(session, session_id=str(uuid.uuid4()))
    claim = replace(claim_for(target), now=NOW + IDLE) if case == "expired" else claim_for(target)

    with pytest.raises(ConflictError):
        store.claim_turn(claim, target, 0 if case == "full" else 198, charge(limiter, limit=1))

    assert store.get_turn(target.session_id, claim.request_key) is None
    limiter.apply(charge(limiter, limit=1))  # the counter was not charged


def test_a_claim_over_the_rate_limit_writes_nothing(store: SessionStore, limiter: RateLimiter) -> None:
    session = new_session(store)
    limiter.apply(charge(limiter, limit=1))

    with pytest.raises(ChargeRefused):
        store.claim_turn(claim_for(session), session, 198, charge(limiter, limit=1))

    assert store.get_turn(session.session_id, "request-1") is None


def test_a_claim_charges_the_rate_counter(store: SessionStore, limiter: RateLimiter) -> None:
    session = new_session(store)
    store.claim_turn(claim_for(session), session, 198, charge(limiter, limit=1))

    with pytest.raises(ChargeRefused):
        store.claim_turn(claim_for(session, key="request-2"), session, 198, charge(limiter, limit=1))


def test_only_the_claims_own_pending_attempt_releases_it(store: SessionStore, limiter: RateLimiter) -> None:
    session = new_session(store)
    claim = claim_for(session)
    store.claim_turn(claim, session, 198, charge(limiter))

    store.release_turn(replace(claim, token="attempt-2"))
    assert store.get_turn(session.session_id, claim.request_key) is not None
    store.release_turn(claim)
    assert store.get_turn(session.session_id, claim.request_key) is None
    store.release_turn(claim)  # already gone is fine


def test_a_stored_turn_is_never_released(store: SessionStore, limiter: RateLimiter) -> None:
    session = new_session(store)
    claim = claim_for(session)
    store.claim_turn(claim, session, 198, charge(limiter))
    store.append_turn(session, turn_messages(session), NOW, claim=claim)

    store.release_turn(claim)

    record = store.get_turn(session.session_id, claim.request_key)
    assert record is not None
    assert record.is_done()


# -- deletion, purge, erasure ----------------------------------------------------------------------


def test_a_deleted_session_ends_at_once(store: SessionStore) -> None:
    session = new_session(store, live_limit=5)

    store.mark_deleted(session, NOW + 5)

    assert store.get_session(session.session_id) == replace(
        session, status=DELETED, expires_at=NOW + 5, live_counted=False
    )


@pytest.mark.parametrize("case", ["other owner", "unknown"])
def test_only_the_owner_deletes_a_session_that_exists(store: SessionStore, case: str) -> None:
    session = new_session(store)
    target = replace(session, owner_key=OTHER) if case == "other owner" else record()

    with pytest.raises(ConflictError):
        store.mark_deleted(target, NOW)

    assert store.get_session(session.session_id) == session


@pytest.mark.parametrize("case", ["deleted", "expired"])
def test_an_ended_session_is_claimed_for_purging(store: SessionStore, case: str) -> None:
    session = new_session(store)
    if case == "deleted":
        store.mark_deleted(session, NOW)

    assert store.claim_for_purge(session.session_id, NOW + IDLE) is True

    found = store.get_session(session.session_id)
    assert found is not None
    assert found.status == PURGING


def test_a_live_or_unknown_session_is_not_claimed_for_purging(store: SessionStore) -> None:
    session = new_session(store)

    assert store.claim_for_purge(session.session_id, NOW) is False
    assert store.claim_for_purge(str(uuid.uuid4()), NOW) is False
    assert store.get_session(session.session_id) == session


def test_purging_an_expired_counted_session_uncounts_it(store: SessionStore) -> None:
    session = new_session(store, live_limit=1)

    assert store.claim_for_purge(session.session_id, NOW + IDLE)

    new_session(store, live_limit=1)


def test_a_purge_removes_every_item_of_the_session_once(store: SessionStore, limiter: RateLimiter) -> None:
    session = add_turns(store, new_session(store), 2)
    claim = claim_for(session)
    store.claim_turn(claim, session, 198, charge(limiter))
    store.mark_deleted(session, NOW)
    store.claim_for_purge(session.session_id, NOW)

    removed = store.purge_session(session.session_id)

    assert removed == 6  # four messages, one idempotency record, the session item
    assert store.get_session(session.session_id) is None
    assert store.get_turn(session.session_id, claim.request_key) is None
    assert turn_messages_of(store, session.session_id) == []
    assert store.purge_session(session.session_id) == 0  # already gone is fine
    with pytest.raises(ConflictError):
        store.mark_deleted(session, NOW)


def test_a_purge_keeps_the_item_of_a_session_not_claimed_for_it(store: SessionStore) -> None:
    session = add_turns(store, new_session(store), 1)

    assert store.purge_session(session.session_id) == 2

    assert store.get_session(session.session_id) == session


def test_the_live_counter_goes_only_when_it_counts_no_session(store: SessionStore) -> None:
    session = new_session(store, live_limit=5)

    assert store.drop_live_counter(OWNER) is False
    store.mark_deleted(session, NOW)
    assert store.drop_live_counter(OWNER) is True
    assert store.drop_live_counter(OWNER) is True  # already gone is fine
    assert store.drop_live_counter(OTHER) is True


# -- expiry listing --------------------------------------------------------------------------------


def test_the_expiry_listing_names_the_sessions_of_one_shard_whose_expiry_passed(store: SessionStore) -> None:
    sessions = [new_session(store, created=NOW - 7200, expires_in=60 + n) for n in range(40)]
    not_yet = new_session(store, created=NOW - 7200, expires_in=60 + 1000)
    bucket = expiry_bucket(sessions[0].session_id)
    same_shard = {s.session_id for s in sessions if expiry_bucket(s.session_id) == bucket}
    assert bucket in expiry_buckets()
    assert len(same_shard) < len(sessions)

    listed = set(store.expiring_session_ids(bucket, NOW - 7200 + 100))

    assert listed == same_shard
    assert not_yet.session_id not in set(store.expiring_session_ids(expiry_bucket(not_yet.session_id), NOW - 7100))


def test_every_session_is_in_exactly_one_shard_of_the_expiry_listing(store: SessionStore) -> None:
    sessions = [new_session(store, created=NOW - 7200, expires_in=60) for _ in range(40)]

    listed = [sid for bucket in expiry_buckets() for sid in store.expiring_session_ids(bucket, NOW)]

    assert sorted(listed) == sorted(s.session_id for s in sessions)


def test_a_deleted_session_is_listed_from_the_time_of_its_deletion(store: SessionStore) -> None:
    session = new_session(store, created=NOW - 100)
    store.mark_deleted(session, NOW - 50)
    bucket = expiry_bucket(session.session_id)

    assert list(store.expiring_session_ids(bucket, NOW - 50)) == [session.session_id]
    assert list(store.expiring_session_ids(bucket, NOW - 51)) == []


def test_a_stored_turn_moves_the_session_to_a_later_expiry_in_the_same_shard(store: SessionStore) -> None:
    session = new_session(store, created=NOW - 100, expires_in=60)
    later = store.append_turn(session, turn_messages(session), NOW - 50)
    bucket = expiry_bucket(session.session_id)

    assert list(store.expiring_session_ids(bucket, session.expires_at)) == []
    assert list(store.expiring_session_ids(bucket, later.expires_at)) == [session.session_id]
