"""The table every store module writes through: the client, the transaction runner and the one
write that uncounts a session from its owner's live counter."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from chatbot_security.platform.transient_errors import TRANSIENT_CANCELLATION_CODES
from chatbot_security.storage.records import COUNTED, LIVE_SK, live_counter_pk

MAX_TRANSACTION_ATTEMPTS = 3


class DynamoTable:
    """One DynamoDB table through the low-level client (built lazily: no AWS call at import)."""

    def __init__(
        self,
        dynamodb: Callable[[], Any],
        table_name: str,
        idle_seconds: int,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._db = dynamodb
        self._table = table_name
        self._idle = idle_seconds
        self._sleep = sleep

    def _transact(self, items: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """Run a transaction; None when it committed, else the cancellation reasons (one per item).

        A cancellation caused only by another transaction touching the same items is retried; one that
        DynamoDB throttled, or that still conflicts after the retries, is raised as it is (no condition
        was evaluated: see chatbot_security.platform.transient_errors).
        """
        client = self._db()
        for attempt in range(MAX_TRANSACTION_ATTEMPTS):
            try:
                client.transact_write_items(TransactItems=items)
            except client.exceptions.TransactionCanceledException as error:
                reasons: list[dict[str, Any]] = error.response.get("CancellationReasons") or [{} for _ in items]
                codes = {reason.get("Code") for reason in reasons} - {"None", None}
                if codes == {"TransactionConflict"} and attempt + 1 < MAX_TRANSACTION_ATTEMPTS:
                    jitter = 0.5 + random.random() / 2  # noqa: S311  # nosec B311
                    self._sleep(0.02 * 2**attempt * jitter)
                    continue
                if "ConditionalCheckFailed" not in codes and codes & TRANSIENT_CANCELLATION_CODES:
                    raise  # throttled, or still contended: no condition was evaluated (a 503, not a lost write)
                return reasons
            return None
        return [{} for _ in items]  # pragma: no cover - the loop always returns

    def _uncounting(self, update: dict[str, Any], owner_key: str) -> bool:
        """Apply ``update`` to a counted session item together with the decrement of its owner's live
        counter; False (nothing written) when the item is not counted (any more) or the counter is gone."""
        condition = f"({update['ConditionExpression']}) AND attribute_exists({COUNTED})"
        counted = {**update, "ConditionExpression": condition}
        decrement = {
            "TableName": self._table,
            "Key": {"pk": {"S": live_counter_pk(owner_key)}, "sk": {"S": LIVE_SK}},
            "UpdateExpression": "ADD live :minus_one",
            "ConditionExpression": "live > :zero",
            "ExpressionAttributeValues": {":minus_one": {"N": "-1"}, ":zero": {"N": "0"}},
        }
        return self._transact([{"Update": counted}, {"Update": decrement}]) is None
