"""Fixed-window rate limits on atomic DynamoDB counters (DESIGN.md section 6, rule 7).

Keys are HMAC-derived from the authorizer's principal or from API Gateway's source IP; no
client-supplied header (such as X-Forwarded-For) is ever used.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from chatbot_security.errors import RateLimitedError


class RateLimiter:
    def __init__(self, dynamodb: Callable[[], Any], table_name: str, clock: Callable[[], float] = time.time) -> None:
        self._db = dynamodb
        self._table = table_name
        self._clock = clock

    def hit(self, scope: str, key: str, limit: int, window_seconds: int) -> None:
        """Count one event for ``key``; raise :class:`RateLimitedError` once ``limit`` is passed."""
        now = self._clock()
        window = int(now // window_seconds)
        window_end = (window + 1) * window_seconds
        client = self._db()
        try:
            client.update_item(
                TableName=self._table,
                Key={"pk": {"S": f"RATE#{scope}#{key}"}, "sk": {"S": f"W#{window}"}},
                UpdateExpression="ADD hits :one SET #ttl = if_not_exists(#ttl, :ttl)",
                ConditionExpression="attribute_not_exists(hits) OR hits < :limit",
                ExpressionAttributeNames={"#ttl": "ttl"},
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":limit": {"N": str(limit)},
                    ":ttl": {"N": str(window_end + window_seconds)},
                },
            )
        except client.exceptions.ConditionalCheckFailedException as error:
            raise RateLimitedError(retry_after_seconds=int(window_end - now) + 1) from error
