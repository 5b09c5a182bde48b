"""Data access for WebSocket connections: who a connection belongs to, and whether a turn streams on it.

One item per connection in the chat table (pk ``CONNECTION#<connection id>``, sk ``CONNECTION``), written
at ``$connect`` from the authorizer's context and removed at ``$disconnect``. The connection serves the
session of its ticket only, for as long as the credential behind the ticket lasts. ``busy_until`` is a
lease: a conditional update takes it for one turn, so a second message on the same connection while a
turn streams is refused, and a worker that dies frees the connection when the lease runs out.

Raises storage exceptions only (:class:`ConnectionUnknown`, :class:`ConnectionExpired`,
:class:`ConnectionBusy`); the stream function turns them into error frames.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

CONNECTION_PREFIX = "CONNECTION#"
CONNECTION_SK = "CONNECTION"
# API Gateway closes every WebSocket connection after two hours, whatever its credential says.
MAX_CONNECTION_SECONDS = 7200
# The item outlives the connection by this much before TTL removes it (TTL is only the backstop: the
# code checks credential_exp on every message).
TTL_MARGIN_SECONDS = 3600


class ConnectionUnknown(Exception):
    """No such connection: never bound, already forgotten, or removed by TTL."""


class ConnectionExpired(Exception):
    """The credential the connection was opened with has expired."""


class ConnectionBusy(Exception):
    """A turn is streaming on this connection."""


@dataclass(frozen=True)
class ConnectionRecord:
    connection_id: str
    owner: str  # the pseudonymous owner key, as stored on sessions
    kind: str  # "user" or "anonymous"
    session_id: str
    credential_exp: int  # epoch seconds
    busy_until: int = 0  # epoch seconds; a turn streams until then unless finished earlier

    def is_expired(self, now: int) -> bool:
        return self.credential_exp <= now

    def is_busy(self, now: int) -> bool:
        return self.busy_until > now


class ConnectionStore(Protocol):
    def bind(self, connection_id: str, owner: str, session_id: str, credential_exp: int, *, kind: str) -> None: ...
    def get(self, connection_id: str) -> ConnectionRecord | None: ...
    def start_turn(self, connection_id: str, now: int, until: int) -> ConnectionRecord: ...
    def finish_turn(self, connection_id: str) -> None: ...
    def forget(self, connection_id: str) -> None: ...


def connection_pk(connection_id: str) -> str:
    return f"{CONNECTION_PREFIX}{connection_id}"


def connection_ttl(credential_exp: int, now: int) -> int:
    """When TTL may remove the item: after the connection has ended for sure."""
    return min(credential_exp, now + MAX_CONNECTION_SECONDS) + TTL_MARGIN_SECONDS


def refusal_of(record: ConnectionRecord | None, now: int) -> Exception:
    """Why ``start_turn`` refused: the same order in the DynamoDB store and the fake."""
    if record is None:
        return ConnectionUnknown()
    if record.is_expired(now):
        return ConnectionExpired()
    return ConnectionBusy()


class DynamoConnectionStore:
    """:class:`ConnectionStore` on the chat table, through the low-level client."""

    def __init__(self, dynamodb: Callable[[], Any], table_name: str, clock: Callable[[], float] = time.time) -> None:
        self._db = dynamodb
        self._table = table_name
        self._clock = clock

    def bind(self, connection_id: str, owner: str, session_id: str, credential_exp: int, *, kind: str) -> None:
        """Record a new connection (``$connect``), free for a first turn."""
        self._db().put_item(
            TableName=self._table,
            Item={
                "pk": {"S": connection_pk(connection_id)},
                "sk": {"S": CONNECTION_SK},
                "owner": {"S": owner},
                "kind": {"S": kind},
                "session_id": {"S": session_id},
                "credential_exp": {"N": str(int(credential_exp))},
                "busy_until": {"N": "0"},
                "ttl": {"N": str(connection_ttl(int(credential_exp), int(self._clock())))},
            },
        )

    def get(self, connection_id: str) -> ConnectionRecord | None:
        response = self._db().get_item(TableName=self._table, Key=self._key(connection_id), ConsistentRead=True)
        item = response.get("Item")
        return _record(connection_id, item) if item else None

    def start_turn(self, connection_id: str, now: int, until: int) -> ConnectionRecord:
        """Take the connection for one turn until ``until``, in one conditional update; the record.

        Refused (nothing written) when the connection is unknown (:class:`ConnectionUnknown`), its
        credential has expired (:class:`ConnectionExpired`) or a turn streams on it (:class:`ConnectionBusy`).
        """
        client = self._db()
        try:
            response = client.update_item(
                TableName=self._table,
                Key=self._key(connection_id),
                UpdateExpression="SET busy_until = :until",
                ConditionExpression="attribute_exists(pk) AND credential_exp > :now AND busy_until <= :now",
                ExpressionAttributeValues={":now": {"N": str(now)}, ":until": {"N": str(until)}},
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except client.exceptions.ConditionalCheckFailedException as error:
            item = error.response.get("Item")
            raise refusal_of(_record(connection_id, item) if item else None, now) from None
        return _record(connection_id, response["Attributes"])

    def finish_turn(self, connection_id: str) -> None:
        """Free the connection for the next turn; a connection already forgotten stays forgotten."""
        client = self._db()
        try:
            client.update_item(
                TableName=self._table,
                Key=self._key(connection_id),
                UpdateExpression="SET busy_until = :zero",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":zero": {"N": "0"}},
            )
        except client.exceptions.ConditionalCheckFailedException:
            return

    def forget(self, connection_id: str) -> None:
        """Remove the connection (``$disconnect``); removing one that is gone is not an error."""
        self._db().delete_item(TableName=self._table, Key=self._key(connection_id))

    @staticmethod
    def _key(connection_id: str) -> dict[str, Any]:
        return {"pk": {"S": connection_pk(connection_id)}, "sk": {"S": CONNECTION_SK}}


def _record(connection_id: str, item: dict[str, Any]) -> ConnectionRecord:
    return ConnectionRecord(
        connection_id=connection_id,
        owner=item["owner"]["S"],
        kind=item["kind"]["S"],
        session_id=item["session_id"]["S"],
        credential_exp=int(item["credential_exp"]["N"]),
        busy_until=int(item.get("busy_until", {}).get("N", "0")),
    )
