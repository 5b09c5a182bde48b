"""Data access: the only module that talks to DynamoDB.

One table (see docs/architecture.md). Session items carry the owner's HMAC key; every write to a
session is conditional on that owner and on the session being live, so a bug above this layer cannot
write into someone else's session.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from chatbot_security.storage.usage import Reservation, transact_reserving

if TYPE_CHECKING:
    from chatbot_security.storage.ratelimit import RateCharge

LIVE = "live"
DELETED = "deleted"
PURGING = "purging"
# Sorts after every "MSG#..." key, so one reverse Query returns the session item and its latest messages.
META = "SESSION"
MESSAGE_PREFIX = "MSG#"
# Idempotency records of message posts (one per client_message_id); sorts before every "MSG#" key.
TURN_PREFIX = "IDEM#"
TURN_PENDING = "pending"
TURN_DONE = "done"
# The per-owner counter of live sessions (MAX_LIVE_SESSIONS): one item per owner, changed in the same
# transaction as the session item that it counts, so that it holds under concurrent creates.
LIVE_PREFIX = "LIVE#"
LIVE_SK = "COUNT"
# A session item counted by its owner's live counter carries this attribute until it is uncounted
# (deleted, erased or claimed for purging), which happens exactly once.
COUNTED = "live_counted"
# The counter expires a day after the newest session it counts could have ended.
LIVE_COUNTER_MARGIN_SECONDS = 86400
MAX_TRANSACTION_ATTEMPTS = 3
MAX_SEQ = 99_999_999
BATCH_SIZE = 25
MAX_BATCH_ATTEMPTS = 8
# Cancellation reasons that say nothing about the conditions: the transaction may simply be tried again.
_NOT_A_CONDITION = frozenset({"ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded",
                              "TransactionConflict"})  # fmt: skip


class ConflictError(Exception):
    """A conditional write lost: the session changed, ended, or belongs to someone else."""


class ChargeRefused(Exception):
    """The rate counter charged with a turn claim was already at its limit."""


class LiveLimitReached(Exception):
    """The owner already has as many live sessions as the limit allows."""


class TurnAlreadyClaimed(Exception):
    """A post with this client_message_id was answered already, or is being answered right now."""

    def __init__(self, record: TurnRecord | None) -> None:
        super().__init__("turn already claimed")
        self.record = record


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
    created_ms: int = 0  # creation time in milliseconds: the listing order (0 means created_at * 1000)
    # Counted by its owner's live counter: True or False, or None when unknown (read from the owner index,
    # which does not project it).
    live_counted: bool | None = False

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
    tokens: tuple[int, int] | None = None  # an answer's model usage: input and output tokens


@dataclass(frozen=True)
class TurnClaim:
    """A post's claim on its client_message_id, written before the model is called."""

    session_id: str
    request_key: str  # the client_message_id
    fingerprint: str  # keyed hash of the request content: a reused id with other content is refused
    token: str  # this attempt's own id: only it may complete or release the claim
    now: int
    lease_until: int  # after this, a retry may take over a claim whose holder died
    ttl: int


@dataclass(frozen=True)
class TurnRecord:
    request_key: str
    fingerprint: str
    state: str  # TURN_PENDING or TURN_DONE
    token: str
    lease_until: int
    seq: int  # sequence number of the turn's user message once done (its reply is seq + 1)

    def is_done(self) -> bool:
        return self.state == TURN_DONE

    def is_abandoned(self, now: int) -> bool:
        return self.state == TURN_PENDING and self.lease_until <= now


def rfc3339(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def expiry_bucket(epoch_seconds: int) -> str:
    """Hour bucket of the expiry index: cleanup queries past hours, never scans the table."""
    return "EXP#" + time.strftime("%Y-%m-%dT%H", time.gmtime(epoch_seconds))


def session_pk(session_id: str) -> str:
    return f"SESSION#{session_id}"


def message_sk(seq: int) -> str:
    return f"{MESSAGE_PREFIX}{seq:08d}"


def turn_sk(request_key: str) -> str:
    return f"{TURN_PREFIX}{request_key}"


def live_counter_pk(owner_key: str) -> str:
    return f"{LIVE_PREFIX}{owner_key}"


class SessionStore(Protocol):
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
    def put_new_session(self, session: SessionRecord, live_limit: int | None = None) -> None:
        """Write a new session; with ``live_limit``, count it in its owner's live counter in the same
        transaction, or raise :class:`LiveLimitReached` (and write nothing) when the owner is at the limit."""
        if live_limit is None:
            client = self._db()
            try:
                client.put_item(
                    TableName=self._table,
                    Item=_session_item(replace(session, live_counted=False)),
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
                    "Item": _session_item(replace(session, live_counted=True)),
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
            sessions.extend(_session_from_item(item, full=False) for item in response.get("Items", []))
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
            sessions.extend(_session_from_item(item, full=False) for item in response.get("Items", []))
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
        records = [_message_from_item(session_id, item) for item in items[1:]]
        records.reverse()
        return _session_from_item(items[0]), records

    def claim_turn(
        self,
        claim: TurnClaim,
        session: SessionRecord,
        max_count_before: int,
        charge: RateCharge,
        reservation: Reservation | None = None,
    ) -> Reservation | None:
        """Claim a client_message_id, charge the rate counter, check the session has room and (with a
        reservation) hold the turn's tokens, atomically; returns the reservation as held.

        Raises :class:`TurnAlreadyClaimed` (with the existing record) for a repeated id,
        :class:`ConflictError` when the session is full or ended, :class:`ChargeRefused` when rate limited,
        :class:`QuotaRefused` when the tokens do not fit (a repeat is answered first: it costs nothing).
        Nothing is written unless all of them hold.
        """
        pk = {"S": session_pk(claim.session_id)}
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self._table,
                    "Item": _turn_item(claim),
                    "ConditionExpression": "attribute_not_exists(pk) OR (#state = :pending AND lease_until <= :now)",
                    "ExpressionAttributeNames": {"#state": "state"},
                    "ExpressionAttributeValues": {":pending": {"S": TURN_PENDING}, ":now": {"N": str(claim.now)}},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                }
            },
            {
                "ConditionCheck": {
                    "TableName": self._table,
                    "Key": {"pk": pk, "sk": {"S": META}},
                    "ConditionExpression": (
                        "owner_key = :owner AND #status = :live AND expires_at > :now AND message_count <= :max"
                    ),
                    "ExpressionAttributeNames": {"#status": "status"},
                    "ExpressionAttributeValues": {
                        ":owner": {"S": session.owner_key},
                        ":live": {"S": LIVE},
                        ":now": {"N": str(claim.now)},
                        ":max": {"N": str(max_count_before)},
                    },
                }
            },
            {"Update": {"TableName": self._table, **charge.update()}},
        ]
        reasons, held = self._transact_reserving(items, reservation)
        if reasons is None:
            return held
        claim_reason, session_reason, charge_reason = reasons
        if claim_reason.get("Code") == "ConditionalCheckFailed":
            item = claim_reason.get("Item")
            existing = _turn_from_item(item) if item else self.get_turn(claim.session_id, claim.request_key)
            raise TurnAlreadyClaimed(existing)
        if session_reason.get("Code") == "ConditionalCheckFailed":
            raise ConflictError("session is full or ended")
        if charge_reason.get("Code") == "ConditionalCheckFailed":
            raise ChargeRefused()
        raise ConflictError("turn claim was not written")

    def reserve_turn(self, charge: RateCharge, reservation: Reservation) -> Reservation:
        """Charge the rate counter and hold a turn's tokens in one transaction (a post without
        client_message_id); raises :class:`ChargeRefused` or :class:`QuotaRefused`, writing nothing."""
        reasons, held = transact_reserving(
            self._transact, [{"Update": {"TableName": self._table, **charge.update()}}], reservation, self._table
        )
        if reasons is None:
            return held
        if reasons[0].get("Code") == "ConditionalCheckFailed":
            raise ChargeRefused()
        raise ConflictError("the turn's charge was not written")

    def _transact_reserving(
        self, items: list[dict[str, Any]], reservation: Reservation | None
    ) -> tuple[list[dict[str, Any]] | None, Reservation | None]:
        if reservation is None:
            return self._transact(items), None
        return transact_reserving(self._transact, items, reservation, self._table)

    def get_turn(self, session_id: str, request_key: str) -> TurnRecord | None:
        response = self._db().get_item(
            TableName=self._table,
            Key={"pk": {"S": session_pk(session_id)}, "sk": {"S": turn_sk(request_key)}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return _turn_from_item(item) if item else None

    def release_turn(self, claim: TurnClaim) -> None:
        """Give up a claim whose turn failed, so that a retry may call the model again."""
        client = self._db()
        # Taken over or completed meanwhile: then it is not ours to remove.
        with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
            client.delete_item(
                TableName=self._table,
                Key={"pk": {"S": session_pk(claim.session_id)}, "sk": {"S": turn_sk(claim.request_key)}},
                ConditionExpression="#token = :token AND #state = :pending",
                ExpressionAttributeNames={"#token": "token", "#state": "state"},
                ExpressionAttributeValues={":token": {"S": claim.token}, ":pending": {"S": TURN_PENDING}},
            )

    def append_turn(
        self,
        session: SessionRecord,
        messages: Sequence[MessageRecord],
        now: int,
        claim: TurnClaim | None = None,
        settlement: tuple[Reservation, int] | None = None,
    ) -> SessionRecord:
        """Write a turn's messages, the session's new counters, (with a claim) its idempotency record and
        (with a settlement: the reservation and the tokens used) the lowered token counters in one
        transaction: a turn is stored whole or not at all."""
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
        if claim is not None:
            items.append(
                {
                    "Update": {
                        "TableName": self._table,
                        "Key": {"pk": pk, "sk": {"S": turn_sk(claim.request_key)}},
                        "UpdateExpression": "SET #state = :done, seq = :seq REMOVE lease_until",
                        "ConditionExpression": "#token = :token AND #state = :pending",
                        "ExpressionAttributeNames": {"#state": "state", "#token": "token"},
                        "ExpressionAttributeValues": {
                            ":done": {"S": TURN_DONE},
                            ":pending": {"S": TURN_PENDING},
                            ":seq": {"N": str(messages[0].seq)},
                            ":token": {"S": claim.token},
                        },
                    }
                }
            )
        if settlement is not None:
            items.extend(settlement[0].settlement(self._table, settlement[1]))
        if self._transact(items) is not None:
            raise ConflictError("turn was not written")
        return updated

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
                if "ConditionalCheckFailed" not in codes and codes & _NOT_A_CONDITION:
                    raise  # throttled, or still contended: no condition was evaluated (a 503, not a lost write)
                return reasons
            return None
        return [{} for _ in items]  # pragma: no cover - the loop always returns

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
                ":bucket": {"S": expiry_bucket(now)},
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


def _session_item(session: SessionRecord) -> dict[str, Any]:
    return {
        "pk": {"S": session_pk(session.session_id)},
        "sk": {"S": META},
        "owner_key": {"S": session.owner_key},
        "created_at": {"S": rfc3339(session.created_ms / 1000 if session.created_ms else session.created_at)},
        "created_epoch": {"N": str(session.created_at)},
        "absolute_expires_at": {"N": str(session.absolute_expires_at)},
        "expires_at": {"N": str(session.expires_at)},
        "last_active_at": {"N": str(session.last_active_at)},
        "message_count": {"N": str(session.message_count)},
        "status": {"S": session.status},
        "wrapped_key": {"B": session.wrapped_key},
        "expiry_bucket": {"S": expiry_bucket(session.expires_at)},
        "ttl": {"N": str(session.absolute_expires_at)},
        **({COUNTED: {"BOOL": True}} if session.live_counted else {}),
    }


def _session_from_item(item: dict[str, Any], full: bool = True) -> SessionRecord:
    """A session from its table item, or (``full=False``) from the owner index, which projects neither
    the wrapped key nor whether the session is counted."""
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
        created_ms=_epoch_ms(item["created_at"]["S"]),
        live_counted=(COUNTED in item) if full else None,
    )


def _epoch_ms(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp).timestamp() * 1000)


def _message_item(message: MessageRecord, ttl: int) -> dict[str, Any]:
    return {
        "pk": {"S": session_pk(message.session_id)},
        "sk": {"S": message_sk(message.seq)},
        "message_id": {"S": message.message_id},
        "role": {"S": message.role},
        "created_ms": {"N": str(message.created_at)},
        "content": {"B": message.content},
        "ttl": {"N": str(ttl)},
        **(
            {"input_tokens": {"N": str(message.tokens[0])}, "output_tokens": {"N": str(message.tokens[1])}}
            if message.tokens is not None
            else {}
        ),
    }


def _turn_item(claim: TurnClaim) -> dict[str, Any]:
    return {
        "pk": {"S": session_pk(claim.session_id)},
        "sk": {"S": turn_sk(claim.request_key)},
        "state": {"S": TURN_PENDING},
        "token": {"S": claim.token},
        "fingerprint": {"S": claim.fingerprint},
        "lease_until": {"N": str(claim.lease_until)},
        "ttl": {"N": str(claim.ttl)},
    }


def _turn_from_item(item: dict[str, Any]) -> TurnRecord:
    return TurnRecord(
        request_key=item["sk"]["S"].removeprefix(TURN_PREFIX),
        fingerprint=item["fingerprint"]["S"],
        state=item["state"]["S"],
        token=item["token"]["S"],
        lease_until=int(item.get("lease_until", {}).get("N", "0")),
        seq=int(item.get("seq", {}).get("N", "0")),
    )


def _message_from_item(session_id: str, item: dict[str, Any]) -> MessageRecord:
    return MessageRecord(
        session_id=session_id,
        seq=int(item["sk"]["S"].removeprefix(MESSAGE_PREFIX)),
        message_id=item["message_id"]["S"],
        role=item["role"]["S"],
        created_at=int(item["created_ms"]["N"]),
        content=bytes(item["content"]["B"]),
    )
