"""The token counters on the table: standalone reservations and settlements, and today's usage.

See :mod:`chatbot_security.storage.usage` for the counters' rules.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from chatbot_security.storage.table import DynamoTable
from chatbot_security.storage.usage import (
    BUDGET_SHARDS,
    BUDGET_SK,
    USAGE_SK,
    Reservation,
    UsageToday,
    binding_limit,
    budget_pk,
    new_reservation,
    random_shard,
    transact_reserving,
    usage_pk,
    utc_day,
)

MAX_READ_ATTEMPTS = 5


class DynamoUsage(DynamoTable):
    """The counters on the table: standalone reservations and settlements (each one transaction) and the
    read of today's usage (one BatchGetItem). Turns use :func:`transact_reserving` and
    :meth:`Reservation.settlement` inside their own transactions instead."""

    def __init__(
        self,
        dynamodb: Callable[[], Any],
        table_name: str,
        clock: Callable[[], float] = time.time,
        pick: Callable[[int], int] = random_shard,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(dynamodb, table_name, idle_seconds=0, sleep=sleep)
        self._clock = clock
        self._pick = pick

    def reservation(self, owner_key: str, tokens: int, owner_limit: int, budget: int) -> Reservation:
        return new_reservation(
            owner_key, tokens, owner_limit=owner_limit, budget=budget, now=self._clock(), pick=self._pick
        )

    def reserve(self, reservation: Reservation) -> Reservation:
        """Hold the reservation (the shard it ended on), or raise :class:`QuotaRefused`."""
        reasons, held = transact_reserving(self._transact, [], reservation, self._table)
        if reasons is not None:
            raise RuntimeError("the reservation was not written")
        return held

    def settle(self, reservation: Reservation, used: int) -> None:
        entries = reservation.settlement(self._table, used)
        if entries and self._transact(entries) is not None:
            raise RuntimeError("the settlement was not written")

    def today(self, owner_key: str, owner_limit: int, budget: int) -> UsageToday:
        day, _ = utc_day(self._clock())
        keys = [{"pk": {"S": usage_pk(owner_key, day)}, "sk": {"S": USAGE_SK}}]
        if budget > 0:
            keys += [{"pk": {"S": budget_pk(day, n)}, "sk": {"S": BUDGET_SK}} for n in range(BUDGET_SHARDS)]
        counts = self._counts(keys)
        used = max(0, counts.get(keys[0]["pk"]["S"], 0))
        shards = [counts.get(budget_pk(day, n), 0) for n in range(BUDGET_SHARDS)] if budget > 0 else []
        return UsageToday(day, used, binding_limit(used, owner_limit, budget, shards))

    def _counts(self, keys: list[dict[str, Any]]) -> dict[str, int]:
        counts: dict[str, int] = {}
        request: dict[str, Any] = {self._table: {"Keys": keys, "ConsistentRead": True}}
        for attempt in range(MAX_READ_ATTEMPTS):
            response = self._db().batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(self._table, []):
                counts[item["pk"]["S"]] = int(item.get("tokens", {}).get("N", "0"))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return counts
            self._sleep(min(1.0, 0.05 * 2**attempt) * (0.5 + random.random() / 2))  # noqa: S311  # nosec B311
        raise RuntimeError("usage counters could not be read")
