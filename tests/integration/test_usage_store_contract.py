"""The token counters' contract: the same cases against the in-memory fake and against the DynamoDB
counters on moto (the table made from template.yaml), so the fake cannot drift from the table.

Reservations are held only while a counter stays within its limit, whatever the interleaving; the
deployment budget is spread over shards; settlements only lower; every item expires on its own; the day
is the UTC day of the injected clock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import boto3
import pytest
from support.clocks import ManualClock
from support.moto_atomic import make_dynamodb_atomic

from chatbot_security.storage.usage import (
    BUDGET_SHARDS,
    QuotaRefused,
    Reservation,
    UsageToday,
    budget_pk,
    shard_limit,
    usage_pk,
)
from chatbot_security.storage.usage_table import DynamoUsage
from tools.usage_fake import InMemoryUsage

DAY_START = 1_800_057_600  # 2027-01-16T00:00:00Z
NOON = DAY_START + 12 * 3600
OWNER = "owner-hash"
OTHER = "other-owner-hash"


class Usage(Protocol):
    def reservation(self, owner_key: str, tokens: int, owner_limit: int, budget: int) -> Reservation: ...
    def reserve(self, reservation: Reservation) -> Reservation: ...
    def settle(self, reservation: Reservation, used: int) -> None: ...
    def today(self, owner_key: str, owner_limit: int, budget: int) -> UsageToday: ...


class Shards:
    """The shard a reservation starts on: chosen by the test, not at random."""

    def __init__(self) -> None:
        self.first = 0

    def __call__(self, count: int) -> int:
        return self.first


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOON)


@pytest.fixture
def shards() -> Shards:
    return Shards()


@pytest.fixture(params=["in-memory", "dynamodb"])
def backend(request: pytest.FixtureRequest, clock: ManualClock, shards: Shards) -> tuple[Usage, Callable[[str], Any]]:
    """The counters of each kind, and a reader of one raw counter item (tokens, ttl) by partition key."""
    if request.param == "in-memory":
        fake = InMemoryUsage(clock=clock, pick=shards)

        def fake_item(pk: str) -> tuple[int, int] | None:
            item = fake.items.get(pk)
            return (item.tokens, item.ttl) if item else None

        return fake, fake_item
    aws = request.getfixturevalue("aws")
    make_dynamodb_atomic(request.getfixturevalue("monkeypatch"))
    client = boto3.client("dynamodb")
    table = DynamoUsage(lambda: client, aws.table_name, clock=clock, pick=shards, sleep=lambda _: None)

    def table_item(pk: str) -> tuple[int, int] | None:
        sk = "BUDGET" if pk.startswith("BUDGET#") else "USAGE"
        item = client.get_item(TableName=aws.table_name, Key={"pk": {"S": pk}, "sk": {"S": sk}}).get("Item")
        return (int(item["tokens"]["N"]), int(item["ttl"]["N"])) if item else None

    return table, table_item


@pytest.fixture
def usage(backend: tuple[Usage, Callable[[str], Any]]) -> Usage:
    return backend[0]


@pytest.fixture
def raw_item(backend: tuple[Usage, Callable[[str], Any]]) -> Callable[[str], Any]:
    return backend[1]


def hold(usage: Usage, tokens: int, *, limit: int = 1000, budget: int = 0, owner: str = OWNER) -> Reservation:
    return usage.reserve(usage.reservation(owner, tokens, limit, budget))


def test_a_reservation_within_the_limit_is_counted(usage: Usage) -> None:
    hold(usage, 300)
    hold(usage, 700)  # exactly up to the limit

    assert usage.today(OWNER, 1000, 0) == UsageToday("2027-01-16", 1000, 1000)


def test_a_reservation_past_the_limit_is_refused_and_counts_nothing(usage: Usage) -> None:
    hold(usage, 900)

    with pytest.raises(QuotaRefused) as refused:
        hold(usage, 101)

    assert refused.value.scope == "owner"
    assert usage.today(OWNER, 1000, 0).tokens_used == 900
    hold(usage, 100)  # what is left is still there


def test_a_refusal_says_how_long_until_the_next_utc_day(usage: Usage, clock: ManualClock) -> None:
    clock.now = DAY_START + 86400 - 90.5

    with pytest.raises(QuotaRefused) as refused:
        hold(usage, 1001)

    assert refused.value.retry_after_seconds == 91


def test_a_reservation_larger_than_the_whole_limit_is_refused_before_any_write(
    usage: Usage, raw_item: Callable[[str], Any]
) -> None:
    with pytest.raises(QuotaRefused):
        usage.reservation(OWNER, 1001, 1000, 0)

    assert raw_item(usage_pk(OWNER, "2027-01-16")) is None


def test_each_owner_has_its_own_counter(usage: Usage) -> None:
    hold(usage, 1000)

    hold(usage, 1000, owner=OTHER)


def test_a_new_utc_day_starts_a_new_count(usage: Usage, clock: ManualClock) -> None:
    clock.now = DAY_START + 86400 - 1
    hold(usage, 1000)
    with pytest.raises(QuotaRefused):
        hold(usage, 1)

    clock.now = DAY_START + 86400

    hold(usage, 1000)
    assert usage.today(OWNER, 1000, 0) == UsageToday("2027-01-17", 1000, 1000)


def test_settling_lowers_the_counter_to_the_tokens_used(usage: Usage) -> None:
    reservation = hold(usage, 800)

    usage.settle(reservation, 120)

    assert usage.today(OWNER, 1000, 0).tokens_used == 120
    hold(usage, 880)


def test_settling_never_raises_a_counter(usage: Usage) -> None:
    reservation = hold(usage, 100)

    usage.settle(reservation, 5000)

    assert usage.today(OWNER, 1000, 0).tokens_used == 100


def test_settling_at_zero_releases_the_whole_reservation(usage: Usage) -> None:
    reservation = hold(usage, 1000, budget=8000)

    usage.settle(reservation, 0)

    assert usage.today(OWNER, 1000, 8000).tokens_used == 0
    hold(usage, 1000, budget=8000)


def test_a_turn_settled_after_midnight_settles_the_day_it_reserved(usage: Usage, clock: ManualClock) -> None:
    clock.now = DAY_START + 86400 - 1
    reservation = hold(usage, 900)
    clock.now = DAY_START + 86400 + 5

    usage.settle(reservation, 100)

    clock.now = DAY_START + 86400 - 1
    assert usage.today(OWNER, 1000, 0).tokens_used == 100
    clock.now = DAY_START + 86400 + 5
    assert usage.today(OWNER, 1000, 0).tokens_used == 0


def test_every_counter_expires_by_itself_within_two_days(usage: Usage, raw_item: Callable[[str], Any]) -> None:
    reservation = hold(usage, 500, budget=8000)
    usage.settle(reservation, 10)

    owner_item = raw_item(usage_pk(OWNER, "2027-01-16"))
    shard_item = raw_item(budget_pk("2027-01-16", 0))

    day_after_end = DAY_START + 2 * 86400
    assert owner_item == (10, day_after_end)
    assert shard_item == (10, day_after_end)
    assert day_after_end - NOON < 2 * 86400


def test_the_shards_shares_add_up_to_the_budget_exactly() -> None:
    for budget in (8, 9, 15, 1_000_003):
        assert sum(shard_limit(budget, n) for n in range(BUDGET_SHARDS)) == budget


def test_a_reservation_takes_the_shard_it_picked(usage: Usage, shards: Shards, raw_item: Callable[[str], Any]) -> None:
    shards.first = 5

    held = hold(usage, 40, budget=800)

    assert held.shard == 5
    assert raw_item(budget_pk("2027-01-16", 5))[0] == 40


def test_a_full_shard_passes_the_reservation_to_the_next_one(
    usage: Usage, shards: Shards, raw_item: Callable[[str], Any]
) -> None:
    shards.first = 7
    hold(usage, 100, budget=800, owner="filler")  # shard 7 (share 100) is full

    held = hold(usage, 60, budget=800)

    assert held.shard == 0
    assert raw_item(budget_pk("2027-01-16", 7))[0] == 100
    assert raw_item(budget_pk("2027-01-16", 0))[0] == 60
    assert usage.today(OWNER, 1000, 800).tokens_used == 60


def test_when_every_shard_is_full_the_deployment_budget_refuses(usage: Usage, shards: Shards) -> None:
    for shard in range(BUDGET_SHARDS):
        shards.first = shard
        hold(usage, 100, budget=800, owner=f"owner-{shard}")
    shards.first = 3

    with pytest.raises(QuotaRefused) as refused:
        hold(usage, 1, budget=800)

    assert refused.value.scope == "deployment"
    assert usage.today(OWNER, 1000, 800) == UsageToday("2027-01-16", 0, 0)


def test_a_reservation_larger_than_a_shard_is_refused_before_any_write(usage: Usage) -> None:
    with pytest.raises(QuotaRefused) as refused:
        usage.reservation(OWNER, 101, 1000, 800)

    assert refused.value.scope == "deployment"


def test_the_owner_counter_refuses_before_the_budget_is_touched(usage: Usage, raw_item: Callable[[str], Any]) -> None:
    hold(usage, 100, limit=100, budget=800)

    with pytest.raises(QuotaRefused) as refused:
        hold(usage, 1, limit=100, budget=800)

    assert refused.value.scope == "owner"
    assert raw_item(budget_pk("2027-01-16", 0))[0] == 100


def test_the_limit_reported_is_the_owners_own_while_the_budget_has_more_left(usage: Usage) -> None:
    hold(usage, 50, budget=8000)

    assert usage.today(OWNER, 1000, 8000) == UsageToday("2027-01-16", 50, 1000)


def test_the_limit_reported_shrinks_to_what_the_budget_has_left(usage: Usage, shards: Shards) -> None:
    for shard in range(BUDGET_SHARDS):
        shards.first = shard
        hold(usage, 90, budget=800, owner=f"owner-{shard}")
    shards.first = 0
    hold(usage, 5, budget=800)

    # 800 - 8 * 90 - 5 = 75 tokens left in the budget, on top of the 5 the owner used.
    assert usage.today(OWNER, 1000, 800) == UsageToday("2027-01-16", 5, 80)


def test_two_reservations_planned_on_the_same_count_cannot_both_take_the_last_tokens(usage: Usage) -> None:
    hold(usage, 600)
    first = usage.reservation(OWNER, 400, 1000, 0)
    second = usage.reservation(OWNER, 400, 1000, 0)  # both were planned while 400 were left

    usage.reserve(first)
    with pytest.raises(QuotaRefused):
        usage.reserve(second)

    assert usage.today(OWNER, 1000, 0).tokens_used == 1000


def test_concurrent_reservations_never_take_a_counter_past_its_limit(usage: Usage, shards: Shards) -> None:
    held: list[Reservation] = []
    lock = threading.Lock()

    def reserve(index: int) -> None:
        try:
            reservation = hold(usage, 70, limit=1000, budget=8 * 150, owner=f"owner-{index % 3}")
        except QuotaRefused:
            return
        with lock:
            held.append(reservation)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(reserve, range(48)))

    per_owner = {f"owner-{n}": sum(r.tokens for r in held if r.owner_key == f"owner-{n}") for n in range(3)}
    per_shard = [sum(r.tokens for r in held if r.shard == n) for n in range(BUDGET_SHARDS)]
    assert all(total <= 1000 for total in per_owner.values())
    assert all(total <= 150 for total in per_shard)
    assert sum(per_shard) == sum(per_owner.values()) == 16 * 70  # 16 fit: 2 per shard of 150
    for owner, total in per_owner.items():
        assert usage.today(owner, 1000, 8 * 150).tokens_used == total
