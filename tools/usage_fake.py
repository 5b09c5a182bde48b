"""An in-memory stand-in for the token counters (chatbot_security.storage.usage_table.DynamoUsage).

It keeps the same rules (a reservation adds only while the counter stays within its limit, the shard
walk, settlements that only lower, a ttl on every item) behind a lock that an in-memory store can share,
so that a turn's claim and its reservation happen atomically there too.
tests/integration/test_usage_store_contract.py runs the same cases against this fake and DynamoDB.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from chatbot_security.storage.usage import (
    BUDGET_SHARDS,
    Reservation,
    UsageToday,
    binding_limit,
    budget_pk,
    new_reservation,
    random_shard,
    shard_limit,
    usage_pk,
    utc_day,
)


@dataclass
class CounterItem:
    tokens: int
    ttl: int


@dataclass
class InMemoryUsage:
    clock: Callable[[], float] = time.time
    pick: Callable[[int], int] = random_shard
    lock: threading.Lock = field(default_factory=threading.Lock)
    items: dict[str, CounterItem] = field(default_factory=dict)  # by partition key
    calls: list[str] = field(default_factory=list)

    def reservation(self, owner_key: str, tokens: int, owner_limit: int, budget: int) -> Reservation:
        return new_reservation(
            owner_key, tokens, owner_limit=owner_limit, budget=budget, now=self.clock(), pick=self.pick
        )

    def reserve(self, reservation: Reservation) -> Reservation:
        with self.lock:
            self.calls.append("reserve")
            return self.hold(reservation)

    def settle(self, reservation: Reservation, used: int) -> None:
        with self.lock:
            self.calls.append("settle")
            self.lower(reservation, used)

    def today(self, owner_key: str, owner_limit: int, budget: int) -> UsageToday:
        with self.lock:
            self.calls.append("today")
            day, _ = utc_day(self.clock())
            used = max(0, self._tokens(usage_pk(owner_key, day)))
            shards = [self._tokens(budget_pk(day, n)) for n in range(BUDGET_SHARDS)] if budget > 0 else []
            return UsageToday(day, used, binding_limit(used, owner_limit, budget, shards))

    # -- for an in-memory store that holds the lock ------------------------------------------
    def hold(self, reservation: Reservation) -> Reservation:
        """Add the reservation to its counters, walking the shards like the table does; the caller holds
        the lock. Raises QuotaRefused and changes nothing when it does not fit."""
        owner_pk = usage_pk(reservation.owner_key, reservation.day)
        if self._tokens(owner_pk) + reservation.tokens > reservation.owner_limit:
            raise reservation.refused("owner")
        held: Reservation | None = reservation
        while held is not None and held.shard is not None:
            shard = held.shard
            if self._tokens(budget_pk(held.day, shard)) + held.tokens <= shard_limit(held.budget, shard):
                break
            held = held.next_shard()
        if held is None:
            raise reservation.refused("deployment")
        self._add(owner_pk, held.tokens, held.ttl)
        if held.shard is not None:
            self._add(budget_pk(held.day, held.shard), held.tokens, held.ttl)
        return held

    def lower(self, reservation: Reservation, used: int) -> None:
        """Settle the reservation to ``used`` (never upwards); the caller holds the lock."""
        delta = min(0, max(0, used) - reservation.tokens)
        if delta == 0:
            return
        self._add(usage_pk(reservation.owner_key, reservation.day), delta, reservation.ttl)
        if reservation.shard is not None:
            self._add(budget_pk(reservation.day, reservation.shard), delta, reservation.ttl)

    def _tokens(self, pk: str) -> int:
        item = self.items.get(pk)
        return item.tokens if item else 0

    def _add(self, pk: str, tokens: int, ttl: int) -> None:
        self.items[pk] = CounterItem(self._tokens(pk) + tokens, ttl)
