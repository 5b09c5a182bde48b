"""Data access: the only package that talks to DynamoDB.

One table (see docs/architecture.md). Session items carry the owner's HMAC key; every write to a
session is conditional on that owner and on the session being live, so a bug above this layer cannot
write into someone else's session.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from chatbot_security.storage.errors import ConflictError, LiveLimitReached
from chatbot_security.storage.items import message_from_item, session_from_item, session_item
from chatbot_security.storage.purge import Purging
from chatbot_security.storage.records import (
    COUNTED,
    DELETED,
    LIVE,
    LIVE_COUNTER_MARGIN_SECONDS,
    LIVE_SK,
    MAX_SEQ,
    MESSAGE_PREFIX,
    META,
    MessageRecord,
    SessionRecord,
    TurnClaim,
    TurnRecord,
    expiry_bucket,
    live_counter_pk,
    message_sk,
    rfc3339,
    session_pk,
)
from chatbot_security.storage.turn_writes import TurnWrites
from chatbot_security.storage.usage import Reservation

if TYPE_CHECKING:
    from chatbot_security.storage.ratelimit import RateCharge


class SessionAccess(Protocol):
    """Sessions, their turns and messages, and their erasure."""

    def put_new_session(self, session: SessionRecord, live_limit: int | None = None) -> None: ...
    def get_session(self, session_id: str) -> SessionRecord | None: ...
    def sessions_of(self, owner_key: str) -> list[SessionRecord]: ...
    def session_page(
        self, owner_key: str, now: int, after: tuple[int, str] | None, limit: int
    ) -> tuple[list[SessionRecord], bool]: ...
    def drop_live_counter(self, owner_key: str) -> bool: ...
    def session_with_recent(self, session_id: str, limit: int) -> tuple[SessionRecord | None, list[MessageRecord]]: ...
    def claim_turn(
        self,
        claim: TurnClaim,
        session: SessionRecord,
        max_count_before: int,
        charge: RateCharge,
        reservation: Reservation | None = None,
    ) -> Reservation | None: ...
    def reserve_turn(self, charge: RateCharge, reservation: Reservation) -> Reservation: ...
    def get_turn(self, session_id: str, request_key: str) -> TurnRecord | None: ...
    def release_turn(self, claim: TurnClaim) -> None: ...
    def append_turn(
        self,
        session: SessionRecord,
        messages: Sequence[MessageRecord],
        now: int,
        claim: TurnClaim | None = None,
        settlement: tuple[Reservation, int] | None = None,
    ) -> SessionRecord: ...
    def messages(self, session_id: str, after_seq: int, limit: int) -> tuple[list[MessageRecord], bool]: ...
    def mark_deleted(self, session: SessionRecord, now: int) -> None: ...
    def claim_for_purge(self, session_id: str, now: int) -> bool: ...
    def purge_session(self, session_id: str) -> int: ...


class SessionStore(SessionAccess, Protocol):
    """The whole store: :class:`SessionAccess` and the expiry index the cleanup walks."""

    def expiring_session_ids(self, bucket: str, now: int) -> Iterator[str]: ...


class DynamoSessionStore(TurnWrites, Purging):
    """:class:`SessionStore` on one DynamoDB table, through the low-level client."""

    # -- sessions ---------------------------------------------------------------------------
    def put_new_session(self, session: SessionRecord, live_limit: int | None = None) -> None:
        """Write a new session; with ``live_limit``, count it in its owner's live counter in the same
        transaction, or raise :class:`LiveLimitReached` (and write nothing) when the owner is at the limit."""
        if live_limit is None:
            client = self._db()
            try:
                client.put_item(
                    TableName=self._table,
                    Item=session_item(replace(session, live_counted=False)),
                    ConditionExpression="attribute_not_exists(pk)",
                )
            except client.exceptions.ConditionalCheckFailedException as error:
                raise ConflictError("session not created") from error
            return
        counter_ttl = session.absolute_expires_at + LIVE_COUNTER_MARGIN_SECONDS
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": session_item(replace(session, live_counted=True)),
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            },
            {
                "Update": {
                    "TableName": self._table,
                    "Key": {"pk": {"S": live_counter_pk(session.owner_key)}, "sk": {"S": LIVE_SK}},
                    "UpdateExpression": "ADD live :one SET #ttl = :ttl",
                    "ConditionExpression": "attribute_not_exists(live) OR live < :limit",
                    "ExpressionAttributeNames": {"#ttl": "ttl"},
                    "ExpressionAttributeValues": {
                        ":one": {"N": "1"},
                        ":limit": {"N": str(live_limit)},
                        ":ttl": {"N": str(counter_ttl)},
                    },
                }
            },
        ]
        reasons = self._transact(items)
        if reasons is None:
            return
        if reasons[1].get("Code") == "ConditionalCheckFailed":
            raise LiveLimitReached()
        raise ConflictError("session not created")

    def drop_live_counter(self, owner_key: str) -> bool:
        """Delete the owner's live counter if it counts no session (erasure); False when it still counts
        one (a session the caller has not seen yet, or created meanwhile), and then nothing changes."""
        client = self._db()
        try:
            client.delete_item(
                TableName=self._table,
                Key={"pk": {"S": live_counter_pk(owner_key)}, "sk": {"S": LIVE_SK}},
                ConditionExpression="attribute_not_exists(live) OR live <= :zero",
                ExpressionAttributeValues={":zero": {"N": "0"}},
            )
        except client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def get_session(self, session_id: str) -> SessionRecord | None:
        response = self._db().get_item(
            TableName=self._table,
            Key={"pk": {"S": session_pk(session_id)}, "sk": {"S": META}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return session_from_item(item) if item else None

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
            sessions.extend(session_from_item(item, full=False) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                return sessions
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def session_page(
        self, owner_key: str, now: int, after: tuple[int, str] | None, limit: int
    ) -> tuple[list[SessionRecord], bool]:
        """Up to ``limit`` usable sessions of the owner created after ``after`` (creation time in ms and
        session id of the last one listed), oldest first, and whether more follow."""
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": "by-owner",
            "KeyConditionExpression": "owner_key = :owner",
            "FilterExpression": "#status = :live AND expires_at > :now",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {
                ":owner": {"S": owner_key},
                ":live": {"S": LIVE},
                ":now": {"N": str(now)},
            },
            "Limit": limit + 1,
        }
        if after is not None:
            kwargs["ExclusiveStartKey"] = {
                "owner_key": {"S": owner_key},
                "created_at": {"S": rfc3339(after[0] / 1000)},
                "pk": {"S": session_pk(after[1])},
                "sk": {"S": META},
            }
        sessions: list[SessionRecord] = []
        while len(sessions) <= limit:
            response = self._db().query(**kwargs)
            sessions.extend(session_from_item(item, full=False) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return sessions[:limit], len(sessions) > limit

    def session_with_recent(self, session_id: str, limit: int) -> tuple[SessionRecord | None, list[MessageRecord]]:
        """The session item and its last ``limit`` messages (oldest first), in one reverse Query.

        The session item's sort key sorts after every message key, so it comes first.
        """
        response = self._db().query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND sk BETWEEN :first AND :meta",
            ExpressionAttributeValues={
                ":pk": {"S": session_pk(session_id)},
                ":first": {"S": MESSAGE_PREFIX},
                ":meta": {"S": META},
            },
            ConsistentRead=True,
            ScanIndexForward=False,
            Limit=max(0, limit) + 1,
        )
        items = response.get("Items", [])
        if not items or items[0]["sk"]["S"] != META:
            return None, []
        records = [message_from_item(session_id, item) for item in items[1:]]
        records.reverse()
        return session_from_item(items[0]), records

    def mark_deleted(self, session: SessionRecord, now: int) -> None:
        """End a session at once (and uncount it from its owner's live sessions); cleanup (or the caller)
        purges its items."""
        update = {
            "TableName": self._table,
            "Key": {"pk": {"S": session_pk(session.session_id)}, "sk": {"S": META}},
            "UpdateExpression": f"SET #status = :deleted, expires_at = :now, expiry_bucket = :bucket REMOVE {COUNTED}",
            "ConditionExpression": "owner_key = :owner",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {
                ":deleted": {"S": DELETED},
                ":now": {"N": str(now)},
                ":bucket": {"S": expiry_bucket(session.session_id)},
                ":owner": {"S": session.owner_key},
            },
        }
        if session.live_counted is not False and self._uncounting(update, session.owner_key):
            return
        client = self._db()
        try:
            client.update_item(**update)
        except client.exceptions.ConditionalCheckFailedException as error:
            raise ConflictError("session not deleted") from error

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
        records = [message_from_item(session_id, item) for item in response.get("Items", [])]
        return records[:limit], len(records) > limit
