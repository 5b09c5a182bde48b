"""Token accounting: each owner's daily counter and the deployment's sharded daily budget.

A turn first *reserves* its worst case (a bound on its input tokens plus ``MODEL_MAX_TOKENS``) and later
*settles* to what the model really used. Both are TransactWriteItems entries (:meth:`Reservation.entries`,
:meth:`Reservation.settlement`) that ride in writes the turn makes anyway: the reservation in the claim
transaction, the settlement in the transaction that stores the turn. No turn makes an extra call for them.

The limits are enforced by DynamoDB, not by a read before the write: a reservation of ``n`` tokens adds
``n`` only on the condition ``attribute_not_exists(tokens) OR tokens <= limit - n``, so concurrent turns
racing for the last tokens can never take the counter past its limit. A settlement only ever lowers a
counter. The day is the UTC day of the injected clock, and every counter item carries ``ttl``: it expires
by itself (within two days of its creation).

The deployment budget (``DAILY_TOKEN_BUDGET``) is split over :data:`BUDGET_SHARDS` items, so that it is
no hot key: the shares add up to the budget exactly, a reservation takes a random shard and moves to the
next one when that shard is full; when every shard refuses, the turn is refused.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

USAGE_PREFIX = "USAGE#"
USAGE_SK = "USAGE"
BUDGET_PREFIX = "BUDGET#"
BUDGET_SK = "BUDGET"
BUDGET_SHARDS = 8
DAY_SECONDS = 86400
#: A counter outlives its day by one more day (late settlements find it), then expires on its own.
COUNTER_MARGIN_SECONDS = DAY_SECONDS

Scope = Literal["owner", "deployment"]


class QuotaRefused(Exception):
    """The owner's daily counter, or every shard of the deployment budget, has no room for the turn."""

    def __init__(self, scope: Scope, retry_after_seconds: int) -> None:
        super().__init__(f"{scope} token quota reached")
        self.scope = scope
        self.retry_after_seconds = max(1, retry_after_seconds)


@dataclass(frozen=True)
class UsageToday:
    """What ``GET /v1/usage`` reports: the UTC day, the owner's tokens counted so far (turns being answered
    count with their reservation) and the limit that binds the owner today."""

    period: str  # YYYY-MM-DD
    tokens_used: int
    tokens_limit: int


def utc_day(now: float) -> tuple[str, int]:
    """The UTC day of ``now`` as YYYY-MM-DD, and the epoch second its next day starts."""
    start = int(now) // DAY_SECONDS * DAY_SECONDS
    return datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%d"), start + DAY_SECONDS


def usage_pk(owner_key: str, day: str) -> str:
    return f"{USAGE_PREFIX}{owner_key}#{day}"


def budget_pk(day: str, shard: int) -> str:
    return f"{BUDGET_PREFIX}{day}#{shard}"


def shard_limit(budget: int, shard: int) -> int:
    """The share of shard ``shard``: the budget divided evenly, the remainder one token each to the
    first shards, so that the shares add up to the budget exactly (never more)."""
    base, extra = divmod(budget, BUDGET_SHARDS)
    return base + (1 if shard < extra else 0)


@dataclass(frozen=True)
class Reservation:
    """One turn's hold on ``tokens`` of its owner's day (and of one budget shard when a budget is set)."""

    owner_key: str
    day: str
    day_end: int  # the epoch second the next UTC day starts: a refusal's Retry-After counts to it
    now: int
    tokens: int
    owner_limit: int
    budget: int = 0  # DAILY_TOKEN_BUDGET; 0 means no deployment budget
    first_shard: int = 0
    attempt: int = 0  # how many shards were tried before this one

    @property
    def shard(self) -> int | None:
        return None if self.budget <= 0 else (self.first_shard + self.attempt) % BUDGET_SHARDS

    @property
    def ttl(self) -> int:
        return self.day_end + COUNTER_MARGIN_SECONDS

    def to_json(self) -> dict[str, str | int]:
        """The reservation as JSON, for a worker in another process that settles it."""
        return {name: getattr(self, name) for name in _FIELDS}

    @classmethod
    def from_json(cls, value: Any) -> Reservation:
        """A reservation from :meth:`to_json`; ValueError when ``value`` is not one."""
        if not isinstance(value, dict) or set(value) != set(_FIELDS):
            raise ValueError("not a reservation")
        for name, kind in _FIELDS.items():
            if type(value[name]) is not kind:
                raise ValueError("not a reservation")
        return cls(**value)

    def check(self) -> None:
        """Refuse, without any call, a reservation no counter could ever hold."""
        if self.tokens > self.owner_limit:
            raise self.refused("owner")
        if self.budget > 0 and self.tokens > shard_limit(self.budget, 0):
            raise self.refused("deployment")

    def refused(self, scope: Scope) -> QuotaRefused:
        return QuotaRefused(scope, self.day_end - self.now)

    def next_shard(self) -> Reservation | None:
        """The same reservation on the next shard, or None when every shard has been tried."""
        if self.budget <= 0 or self.attempt + 1 >= BUDGET_SHARDS:
            return None
        return replace(self, attempt=self.attempt + 1)

    def entries(self, table: str) -> list[dict[str, Any]]:
        """The conditional increments, as TransactWriteItems entries: the owner's counter first, then the
        shard (when a budget is set)."""
        items = [self._increment(table, self._owner_key(), self.tokens, self.owner_limit)]
        if self.shard is not None:
            items.append(self._increment(table, self._shard_key(self.shard), self.tokens, self._shard_limit()))
        return items

    def refusal(self, reasons: Sequence[dict[str, Any]]) -> Scope | None:
        """Which of :meth:`entries` refused, from a cancelled transaction's reasons for them."""
        failed = [reason.get("Code") == "ConditionalCheckFailed" for reason in reasons]
        if failed and failed[0]:
            return "owner"
        if len(failed) > 1 and failed[1]:
            return "deployment"
        return None

    def settlement(self, table: str, used: int) -> list[dict[str, Any]]:
        """Entries that lower the counters from the reservation to ``used`` tokens; none when the turn
        used its whole reservation (a settlement never raises a counter)."""
        delta = min(0, max(0, used) - self.tokens)
        if delta == 0:
            return []
        keys = [self._owner_key()] + ([self._shard_key(self.shard)] if self.shard is not None else [])
        return [
            {
                "Update": {
                    "TableName": table,
                    "Key": key,
                    "UpdateExpression": "ADD tokens :delta SET #ttl = :ttl",
                    "ExpressionAttributeNames": {"#ttl": "ttl"},
                    "ExpressionAttributeValues": {":delta": {"N": str(delta)}, ":ttl": {"N": str(self.ttl)}},
                }
            }
            for key in keys
        ]

    def _owner_key(self) -> dict[str, Any]:
        return {"pk": {"S": usage_pk(self.owner_key, self.day)}, "sk": {"S": USAGE_SK}}

    def _shard_key(self, shard: int) -> dict[str, Any]:
        return {"pk": {"S": budget_pk(self.day, shard)}, "sk": {"S": BUDGET_SK}}

    def _shard_limit(self) -> int:
        return shard_limit(self.budget, self.shard or 0)

    def _increment(self, table: str, key: dict[str, Any], tokens: int, limit: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": table,
                "Key": key,
                "UpdateExpression": "ADD tokens :n SET #ttl = :ttl",
                # tokens + n <= limit, written so that DynamoDB itself evaluates it on the item.
                "ConditionExpression": "attribute_not_exists(tokens) OR tokens <= :room",
                "ExpressionAttributeNames": {"#ttl": "ttl"},
                "ExpressionAttributeValues": {
                    ":n": {"N": str(tokens)},
                    ":room": {"N": str(limit - tokens)},
                    ":ttl": {"N": str(self.ttl)},
                },
            }
        }


_FIELDS = {"owner_key": str, "day": str, "day_end": int, "now": int, "tokens": int, "owner_limit": int,
           "budget": int, "first_shard": int, "attempt": int}  # fmt: skip


def new_reservation(
    owner_key: str, tokens: int, *, owner_limit: int, budget: int, now: float, pick: Callable[[int], int]
) -> Reservation:
    """A reservation for the UTC day of ``now``, starting on the shard ``pick(BUDGET_SHARDS)`` chooses;
    raises :class:`QuotaRefused` at once when no counter could ever hold it."""
    day, day_end = utc_day(now)
    first = pick(BUDGET_SHARDS) % BUDGET_SHARDS if budget > 0 else 0
    reservation = Reservation(owner_key, day, day_end, int(now), tokens, owner_limit, budget, first)
    reservation.check()
    return reservation


def random_shard(count: int) -> int:
    """Spreads load, not a secret."""
    return random.randrange(count)  # noqa: S311  # nosec B311


def binding_limit(owner_used: int, owner_limit: int, budget: int, shards_used: Sequence[int]) -> int:
    """The limit that binds the owner today: its own limit, or less when the deployment budget has less
    room left than the owner (then what it has used plus what the budget has left)."""
    if budget <= 0:
        return owner_limit
    left = sum(max(0, shard_limit(budget, shard) - used) for shard, used in enumerate(shards_used))
    return min(owner_limit, max(0, owner_used) + left)


Transact = Callable[[list[dict[str, Any]]], "list[dict[str, Any]] | None"]


def transact_reserving(
    transact: Transact, items: Sequence[dict[str, Any]], reservation: Reservation, table: str
) -> tuple[list[dict[str, Any]] | None, Reservation]:
    """Run ``items`` and the reservation's entries in one transaction; while only the budget shard
    refuses, run it again on the next shard (a cancelled transaction wrote nothing).

    Returns ``(None, the reservation as held)`` when it committed, or the cancellation reasons of
    ``items`` when one of them failed (their own conditions come first: a replayed turn is answered even
    when the quota is spent). Raises :class:`QuotaRefused` when the owner's counter or every shard refuses.
    """
    while True:
        reasons = transact([*items, *reservation.entries(table)])
        if reasons is None:
            return None, reservation
        own = reasons[: len(items)]
        if any(reason.get("Code") == "ConditionalCheckFailed" for reason in own):
            return own, reservation
        scope = reservation.refusal(reasons[len(items) :])
        if scope is None:
            return own, reservation  # cancelled for no condition of ours: the caller's conflict
        moved = reservation.next_shard() if scope == "deployment" else None
        if moved is None:
            raise reservation.refused(scope)
        reservation = moved
