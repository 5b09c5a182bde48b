"""Fixed-window rate limits on atomic DynamoDB counters (docs/contract.md section 6, rule 7).

Keys are HMAC-derived from the authorizer's principal or from API Gateway's source IP; no
client-supplied header (such as X-Forwarded-For) is ever used.

A :class:`RateCharge` describes one conditional increment. It is applied on its own
(:meth:`RateLimiter.apply`, one UpdateItem) or inside another transaction (a message post charges the
counter in the same TransactWriteItems that claims its client_message_id), so it costs no extra call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chatbot_security.storage.errors import RateLimitExceeded


@dataclass(frozen=True)
class RateCharge:
    pk: str
    sk: str
    limit: int
    expires_at: int  # the counter's TTL: the window's end plus one window
    retry_after_seconds: int

    def update(self) -> dict[str, Any]:
        """The conditional increment, as UpdateItem arguments (without TableName)."""
        return {
            "Key": {"pk": {"S": self.pk}, "sk": {"S": self.sk}},
            "UpdateExpression": "ADD hits :one SET #ttl = if_not_exists(#ttl, :ttl)",
            "ConditionExpression": "attribute_not_exists(hits) OR hits < :limit",
            "ExpressionAttributeNames": {"#ttl": "ttl"},
            "ExpressionAttributeValues": {
                ":one": {"N": "1"},
                ":limit": {"N": str(self.limit)},
                ":ttl": {"N": str(self.expires_at)},
            },
        }


class RateLimiter:
    def __init__(self, dynamodb: Callable[[], Any], table_name: str, clock: Callable[[], float] = time.time) -> None:
        self._db = dynamodb
        self._table = table_name
        self._clock = clock

    def charge(self, scope: str, key: str, limit: int, window_seconds: int) -> RateCharge:
        """One event for ``key`` in the current window of ``window_seconds``, at most ``limit`` per window."""
        now = self._clock()
        window = int(now // window_seconds)
        window_end = (window + 1) * window_seconds
        return RateCharge(
            pk=f"RATE#{scope}#{key}",
            sk=f"W#{window}",
            limit=limit,
            expires_at=window_end + window_seconds,
            retry_after_seconds=int(window_end - now) + 1,
        )

    def apply(self, charge: RateCharge) -> None:
        """Count the event; raise :class:`RateLimitExceeded` once the limit is passed."""
        client = self._db()
        try:
            client.update_item(TableName=self._table, **charge.update())
        except client.exceptions.ConditionalCheckFailedException as error:
            raise RateLimitExceeded(charge.retry_after_seconds) from error

    def hit(self, scope: str, key: str, limit: int, window_seconds: int) -> None:
        self.apply(self.charge(scope, key, limit, window_seconds))

    def forget(self, scope: str, key: str) -> int:
        """Delete every counter of ``key`` (erasure: even hashed metadata of an erased user goes)."""
        client = self._db()
        response = client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"RATE#{scope}#{key}"}},
            ProjectionExpression="pk, sk",
            ConsistentRead=True,
        )
        items = response.get("Items", [])
        for item in items:  # at most two windows exist: the current one and the one before
            client.delete_item(TableName=self._table, Key={"pk": item["pk"], "sk": item["sk"]})
        return len(items)
