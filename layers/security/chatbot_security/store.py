"""Data access: the only module that talks to DynamoDB.

One table (see docs/architecture.md). Session items carry the owner's HMAC key; every write to a
session is conditional on that owner and on the session being live, so a bug above this layer cannot
write into someone else's session.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

LIVE = "live"
DELETED = "deleted"
PURGING = "purging"
# Sorts after every "MSG#..." key, so one reverse Query returns the session item and its latest messages.
META = "SESSION"
MESSAGE_PREFIX = "MSG#"
MAX_SEQ = 99_999_999
BATCH_SIZE = 25
MAX_BATCH_ATTEMPTS = 8


class ConflictError(Exception):
    """A conditional write lost: the session changed, ended, or belongs to someone else."""


@dataclass(frozen=True)
class SessionRecord:
    session_id: str
    owner_key: str
    created_at: int  # epoch seconds
    absolute_expires_at: int
    expires_at: int  # min(absolute expiry, last activity + idle lifetime)
    last_active_at: int
    message_count: int
    status: str
    wrapped_key: bytes

    def is_usable(self, now: int) -> bool:
        return self.status == LIVE and now < self.expires_at


@dataclass(frozen=True)
class MessageRecord:
    session_id: str
    seq: int
    message_id: str
    role: str
    created_at: int  # epoch milliseconds
    content: bytes  # ciphertext


def rfc3339(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def expiry_bucket(epoch_seconds: int) -> str:
    """Hour bucket of the expiry index: cleanup queries past hours, never scans the table."""
    return "EXP#" + time.strftime("%Y-%m-%dT%H", time.gmtime(epoch_seconds))


def session_pk(session_id: str) -> str:
    return f"SESSION#{session_id}"


def message_sk(seq: int) -> str:
    return f"{MESSAGE_PREFIX}{seq:08d}"


class SessionStore(Protocol):
    def put_new_session(self, session: SessionRecord) -> None: ...
    def get_session(self, session_id: str) -> SessionRecord | None: ...
    def sessions_of(self, owner_key: str) -> list[SessionRecord]: ...
    def append_turn(self, session: SessionRecord, messages: Sequence[MessageRecord], now: int) -> SessionRecord: ...
    def messages(self, session_id: str, after_seq: int, limit: int) -> tuple[list[MessageRecord], bool]: ...
    def recent_messages(self, session_id: str, limit: int) -> list[MessageRecord]: ...
    def mark_deleted(self, session: SessionRecord, now: int) -> None: ...
    def claim_for_purge(self, session_id: str, now: int) -> bool: ...
    def purge_session(self, session_id: str) -> int: ...
    def expiring_session_ids(self, bucket: str, now: int) -> Iterator[str]: ...


class DynamoSessionStore:
    """:class:`SessionStore` on one DynamoDB table, through the low-level client."""

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

    # -- sessions ---------------------------------------------------------------------------
    def put_new_session(self, session: SessionRecord) -> None:
        self._db().put_item(
            TableName=self._table,
            Item=_session_item(session),
            ConditionExpression="attribute_not_exists(pk)",
        )

    def get_session(self, session_id: str) -> SessionRecord | None:
        response = self._db().get_item(
            TableName=self._table,
            Key={"pk": {"S": session_pk(session_id)}, "sk": {"S": META}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return _session_from_item(item) if item else None

    def sessions_of(self, owner_key: str) -> list[SessionRecord]:
        sessions: list[SessionRecord] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "by-owner",
            "KeyConditionExpression": "owner_key = :owner",
            "ExpressionAttributeValues": {":owner": {"S": owner_key}},
        }
        while True:
            response = self._db().query(**kwargs)
            sessions.extend(_session_from_item(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return sessions
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def append_turn(self, session: SessionRecord, messages: Sequence[MessageRecord], now: int) -> SessionRecord:
        """Write a turn's messages and the session's new counters in one transaction."""
        expires_at = min(session.absolute_expires_at, now + self._idle)
        updated = replace(
            session,
            message_count=session.message_count + len(messages),
            last_active_at=now,
            expires_at=expires_at,
        )
        pk = {"S": session_pk(session.session_id)}
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"pk": pk, "sk": {"S": META}},
                    "UpdateExpression": (
                        "SET message_count = :new_count, last_active_at = :now, "
                        "expires_at = :expires_at, expiry_bucket = :bucket"
                    ),
                    "ConditionExpression": (
                        "owner_key = :owner AND #status = :live AND message_count = :count AND expires_at > :now"
                    ),
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": {
                        ":new_count": {"N": str(updated.message_count)},
                        ":count": {"N": str(session.message_count)},
                        ":now": {"N": str(now)},
                        ":expires_at": {"N": str(expires_at)},
                        ":bucket": {"S": expiry_bucket(expires_at)},
                        ":owner": {"S": session.owner_key},
                        ":live": {"S": LIVE},
                    },
                }
            }
        ]
        for message in messages:
            items.append(
                {
                    "Put": {
                        "TableName": self._table,
                        "Item": _message_item(message, ttl=session.absolute_expires_at),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            )
        client = self._db()
        try:
            client.transact_write_items(TransactItems=items)
        except client.exceptions.TransactionCanceledException as error:
            raise ConflictError("turn was not written") from error
        return updated

    def mark_deleted(self, session: SessionRecord, now: int) -> None:
        """End a session at once; cleanup (or the caller) purges its items."""
        client = self._db()
        try:
            client.update_item(
                TableName=self._table,
                Key={"pk": {"S": session_pk(session.session_id)}, "sk": {"S": META}},
                UpdateExpression="SET #status = :deleted, expires_at = :now, expiry_bucket = :bucket",
                ConditionExpression="owner_key = :owner",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":deleted": {"S": DELETED},
                    ":now": {"N": str(now)},
                    ":bucket": {"S": expiry_bucket(now)},
                    ":owner": {"S": session.owner_key},
                },
            )
        except client.exceptions.ConditionalCheckFailedException as error:
            raise ConflictError("session not deleted") from error

    # -- messages ---------------------------------------------------------------------------
    def messages(self, session_id: str, after_seq: int, limit: int) -> tuple[list[MessageRecord], bool]:
        """Up to ``limit`` messages after ``after_seq``, oldest first, and whether more follow."""
        response = self._db().query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :first AND :last",
            ExpressionAttributeValues={
                ":pk": {"S": session_pk(session_id)},
                ":first": {"S": message_sk(after_seq + 1)},
                ":last": {"S": message_sk(MAX_SEQ)},
            },
            ConsistentRead=True,
            Limit=limit + 1,
        )
        records = [_message_from_item(session_id, item) for item in response.get("Items", [])]
        return records[:limit], len(records) > limit

    def recent_messages(self, session_id: str, limit: int) -> list[MessageRecord]:
        """The last ``limit`` messages, oldest first (the model's context window)."""
        if limit <= 0:
            return []
        response = self._db().query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": {"S": session_pk(session_id)}, ":prefix": {"S": MESSAGE_PREFIX}},
            ConsistentRead=True,
            ScanIndexForward=False,
            Limit=limit,
        )
        records = [_message_from_item(session_id, item) for item in response.get("Items", [])]
        records.reverse()
        return records

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
        """Mark an ended session as being purged; False when it is live (or already gone)."""
        client = self._db()
        try:
            client.update_item(
                TableName=self._table,
                Key={"pk": {"S": session_pk(session_id)}, "sk": {"S": META}},
                UpdateExpression="SET #status = :purging",
                ConditionExpression="attribute_exists(pk) AND (#status <> :live OR expires_at <= :now)",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":purging": {"S": PURGING},
                    ":live": {"S": LIVE},
                    ":now": {"N": str(now)},
                },
            )
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
            self._sleep(min(2.0, 0.05 * 2**attempt) * (0.5 + random.random() / 2))  # noqa: S311  # nosec B311 - jitter
        raise RuntimeError("unprocessed deletes remained after retries")


def _session_item(session: SessionRecord) -> dict[str, Any]:
    return {
        "pk": {"S": session_pk(session.session_id)},
        "sk": {"S": META},
        "owner_key": {"S": session.owner_key},
        "created_at": {"S": rfc3339(session.created_at)},
        "created_epoch": {"N": str(session.created_at)},
        "absolute_expires_at": {"N": str(session.absolute_expires_at)},
        "expires_at": {"N": str(session.expires_at)},
        "last_active_at": {"N": str(session.last_active_at)},
        "message_count": {"N": str(session.message_count)},
        "status": {"S": session.status},
        "wrapped_key": {"B": session.wrapped_key},
        "expiry_bucket": {"S": expiry_bucket(session.expires_at)},
        "ttl": {"N": str(session.absolute_expires_at)},
    }


def _session_from_item(item: dict[str, Any]) -> SessionRecord:
    return SessionRecord(
        session_id=item["pk"]["S"].removeprefix("SESSION#"),
        owner_key=item["owner_key"]["S"],
        created_at=int(item["created_epoch"]["N"]),
        absolute_expires_at=int(item["absolute_expires_at"]["N"]),
        expires_at=int(item["expires_at"]["N"]),
        last_active_at=int(item["last_active_at"]["N"]),
        message_count=int(item["message_count"]["N"]),
        status=item["status"]["S"],
        wrapped_key=bytes(item["wrapped_key"]["B"]) if "wrapped_key" in item else b"",
    )


def _message_item(message: MessageRecord, ttl: int) -> dict[str, Any]:
    return {
        "pk": {"S": session_pk(message.session_id)},
        "sk": {"S": message_sk(message.seq)},
        "message_id": {"S": message.message_id},
        "role": {"S": message.role},
        "created_ms": {"N": str(message.created_at)},
        "content": {"B": message.content},
        "ttl": {"N": str(ttl)},
    }


def _message_from_item(session_id: str, item: dict[str, Any]) -> MessageRecord:
    return MessageRecord(
        session_id=session_id,
        seq=int(item["sk"]["S"].removeprefix(MESSAGE_PREFIX)),
        message_id=item["message_id"]["S"],
        role=item["role"]["S"],
        created_at=int(item["created_ms"]["N"]),
        content=bytes(item["content"]["B"]),
    )
