"""Retention: the expiry index the cleanup walks, the claim that makes one purger own a session, and
the purge of everything under a session's key."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from chatbot_security.storage.records import BATCH_SIZE, COUNTED, LIVE, MAX_BATCH_ATTEMPTS, META, PURGING, session_pk
from chatbot_security.storage.table import DynamoTable


class Purging(DynamoTable):
    # -- retention --------------------------------------------------------------------------
    def expiring_session_ids(self, bucket: str, now: int) -> Iterator[str]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "by-expiry",
            "KeyConditionExpression": "expiry_bucket = :bucket AND expires_at <= :now",
            "ExpressionAttributeValues": {":bucket": {"S": bucket}, ":now": {"N": str(now)}},
        }
        while True:
            response = self._db().query(**kwargs)
            for item in response.get("Items", []):
                yield item["pk"]["S"].removeprefix("SESSION#")
            if "LastEvaluatedKey" not in response:
                return
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def claim_for_purge(self, session_id: str, now: int) -> bool:
        """Mark an ended session as being purged; False when it is live (or already gone).

        A session still counted as live by its owner's counter (one that expired rather than being
        deleted) is uncounted in the same transaction, so the counter does not drift.
        """
        update = {
            "TableName": self._table,
            "Key": {"pk": {"S": session_pk(session_id)}, "sk": {"S": META}},
            "UpdateExpression": f"SET #status = :purging REMOVE {COUNTED}",
            "ConditionExpression": "attribute_exists(pk) AND (#status <> :live OR expires_at <= :now)",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {
                ":purging": {"S": PURGING},
                ":live": {"S": LIVE},
                ":now": {"N": str(now)},
            },
        }
        client = self._db()
        item = client.get_item(TableName=self._table, Key=update["Key"], ConsistentRead=True).get("Item")
        if item is None:
            return False
        if COUNTED in item and self._uncounting(update, item["owner_key"]["S"]):
            return True
        try:
            client.update_item(**update)
        except client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def purge_session(self, session_id: str) -> int:
        """Delete every item of a claimed session, messages first and the session item last.

        Safe to repeat after a crash: the session item stays ``purging`` until the very end.
        """
        pk = session_pk(session_id)
        removed = 0
        keys = [key for key in self._all_keys(pk) if key["sk"]["S"] != META]
        for start in range(0, len(keys), BATCH_SIZE):
            removed += self._delete_batch(keys[start : start + BATCH_SIZE])
        client = self._db()
        try:
            client.delete_item(
                TableName=self._table,
                Key={"pk": {"S": pk}, "sk": {"S": META}},
                ConditionExpression="#status = :purging",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":purging": {"S": PURGING}},
            )
            removed += 1
        except client.exceptions.ConditionalCheckFailedException:
            pass  # already removed by an earlier run
        return removed

    def _all_keys(self, pk: str) -> list[dict[str, Any]]:
        keys: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": pk}},
            "ProjectionExpression": "pk, sk",
            "ConsistentRead": True,
        }
        while True:
            response = self._db().query(**kwargs)
            keys.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return keys
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _delete_batch(self, keys: list[dict[str, Any]]) -> int:
        pending: list[dict[str, Any]] = [{"DeleteRequest": {"Key": key}} for key in keys]
        for attempt in range(MAX_BATCH_ATTEMPTS):
            response = self._db().batch_write_item(RequestItems={self._table: pending})
            pending = response.get("UnprocessedItems", {}).get(self._table, [])
            if not pending:
                return len(keys)
            jitter = 0.5 + random.random() / 2  # noqa: S311  # nosec B311
            self._sleep(min(2.0, 0.05 * 2**attempt) * jitter)
        raise RuntimeError("unprocessed deletes remained after retries")
