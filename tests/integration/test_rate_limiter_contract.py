"""The rate limiter's contract: the same cases against the in-memory limiter of the unit tests and
against the DynamoDB limiter on moto (the table made from template.yaml): fixed windows, a count per
scope and key, and erasure of every counter of a key."""

from __future__ import annotations

import boto3
import pytest
from support.clocks import FIXED_START, ManualClock

from chatbot_security.storage.errors import RateLimitExceeded
from chatbot_security.storage.ratelimit import RateCharge, RateLimiter
from tools.fakes import InMemoryRateLimiter, InMemorySessionStore

START = FIXED_START  # the start of a window of 60 seconds (and of one of an hour)


@pytest.fixture(params=["in-memory", "dynamodb"])
def limiter(request: pytest.FixtureRequest, clock: ManualClock) -> RateLimiter:
    if request.param == "in-memory":
        return InMemoryRateLimiter(InMemorySessionStore(), clock=clock)
    aws = request.getfixturevalue("aws")
    client = boto3.client("dynamodb")
    return RateLimiter(lambda: client, aws.table_name, clock=clock)


def test_a_charge_names_the_keys_window(limiter: RateLimiter, clock: ManualClock) -> None:
    clock.now = START + 75.5

    charge = limiter.charge("post", "key-hash", 5, 60)

    assert charge == RateCharge(pk="RATE#post#key-hash", sk=f"W#{(START + 60) // 60}", limit=5,
                                expires_at=START + 180, retry_after_seconds=45)  # fmt: skip


def test_events_count_up_to_the_limit_and_then_are_refused(limiter: RateLimiter) -> None:
    for _ in range(3):
        limiter.hit("post", "key-hash", 3, 60)

    with pytest.raises(RateLimitExceeded) as refused:
        limiter.apply(limiter.charge("post", "key-hash", 3, 60))

    assert refused.value.retry_after_seconds == 61


def test_a_refused_event_is_not_counted(limiter: RateLimiter) -> None:
    limiter.hit("post", "key-hash", 1, 60)
    for _ in range(2):
        with pytest.raises(RateLimitExceeded):
            limiter.hit("post", "key-hash", 1, 60)

    limiter.hit("post", "key-hash", 2, 60)  # one event counted so far, not three


def test_each_scope_and_key_has_its_own_count(limiter: RateLimiter) -> None:
    limiter.hit("post", "key-hash", 1, 60)

    limiter.hit("post", "other-key-hash", 1, 60)
    limiter.hit("session-create", "key-hash", 1, 60)


def test_a_new_window_starts_a_new_count(limiter: RateLimiter, clock: ManualClock) -> None:
    limiter.hit("post", "key-hash", 1, 60)
    clock.now = START + 59.9
    with pytest.raises(RateLimitExceeded):
        limiter.hit("post", "key-hash", 1, 60)

    clock.now = START + 60
    limiter.hit("post", "key-hash", 1, 60)


def test_forgetting_a_key_removes_every_one_of_its_counters(limiter: RateLimiter, clock: ManualClock) -> None:
    limiter.hit("post", "key-hash", 1, 60)
    clock.now = START + 60
    limiter.hit("post", "key-hash", 1, 60)
    limiter.hit("post", "other-key-hash", 1, 60)

    assert limiter.forget("post", "key-hash") == 2

    limiter.hit("post", "key-hash", 1, 60)  # counting starts again
    with pytest.raises(RateLimitExceeded):
        limiter.hit("post", "other-key-hash", 1, 60)  # other keys keep their counts


def test_forgetting_a_key_without_counters_removes_nothing(limiter: RateLimiter) -> None:
    limiter.hit("session-create", "key-hash", 1, 3600)

    assert limiter.forget("post", "key-hash") == 0
    with pytest.raises(RateLimitExceeded):
        limiter.hit("session-create", "key-hash", 1, 3600)
