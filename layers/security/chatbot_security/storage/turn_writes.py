"""Turn writes: the idempotency claim (with its rate charge), its release, and the one transaction
that stores a turn's two messages and moves the session forward."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from chatbot_security.storage.errors import ChargeRefused, ConflictError, TurnAlreadyClaimed
from chatbot_security.storage.items import message_item, turn_from_item, turn_item
from chatbot_security.storage.records import (
    LIVE,
    META,
    TURN_DONE,
    TURN_PENDING,
    MessageRecord,
    SessionRecord,
    TurnClaim,
    TurnRecord,
    expiry_bucket,
    session_pk,
    turn_sk,
)
from chatbot_security.storage.table import DynamoTable
from chatbot_security.storage.usage import Reservation, transact_reserving

if TYPE_CHECKING:
    from chatbot_security.storage.ratelimit import RateCharge


class TurnWrites(DynamoTable):
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
                    "Item": turn_item(claim),
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
        if reservation is None:
            reasons, held = self._transact(items), None
        else:
            reasons, held = transact_reserving(self._transact, items, reservation, self._table)
        if reasons is None:
            return held
        claim_reason, session_reason, charge_reason = reasons
        if claim_reason.get("Code") == "ConditionalCheckFailed":
            item = claim_reason.get("Item")
            existing = turn_from_item(item) if item else self.get_turn(claim.session_id, claim.request_key)
            raise TurnAlreadyClaimed(existing)
        if session_reason.get("Code") == "ConditionalCheckFailed":
            raise ConflictError("session is full or ended")
        if charge_reason.get("Code") == "ConditionalCheckFailed":
            raise ChargeRefused()
        raise ConflictError("turn claim was not written")

    def reserve_turn(self, charge: RateCharge, reservation: Reservation) -> Reservation:
        """Charge the rate counter and hold a turn's tokens in one transaction (a post without
        client_message_id); raises :class:`ChargeRefused` or :class:`QuotaRefused`, writing nothing."""
        charge_item = {"Update": {"TableName": self._table, **charge.update()}}
        reasons, held = transact_reserving(self._transact, [charge_item], reservation, self._table)
        if reasons is None:
            return held
        if reasons[0].get("Code") == "ConditionalCheckFailed":
            raise ChargeRefused()
        raise ConflictError("the turn's charge was not written")

    def get_turn(self, session_id: str, request_key: str) -> TurnRecord | None:
        response = self._db().get_item(
            TableName=self._table,
            Key={"pk": {"S": session_pk(session_id)}, "sk": {"S": turn_sk(request_key)}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return turn_from_item(item) if item else None

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
        # The bucket is the session's fixed shard key: writing it again costs no index write of its own
        # (the moved `expires_at` rewrites the entry anyway) and moves an item still under the earlier
        # hourly key to its shard.
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
                        ":bucket": {"S": expiry_bucket(session.session_id)},
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
                        "Item": message_item(message, ttl=session.absolute_expires_at),
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
