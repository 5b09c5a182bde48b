"""Stream tickets: the single-use credential a browser puts in the WebSocket URL (docs/streaming.md).

A ticket is 32 random bytes, base64url without padding (43 characters). Only its SHA-256 (hex) is
stored, as the item's key: the table never holds a ticket that would open a connection. A ticket
lives at most :data:`MAX_TICKET_SECONDS`, never longer than the credential it was issued for, and is
consumed by one conditional DeleteItem that returns what it held: of two concurrent uses, exactly one
gets the grant.

Standard library only (no pydantic, no SDK import): the ``$connect`` authorizer imports this module.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

TICKET_BYTES = 32
TICKET_LENGTH = 43  # base64url of 32 bytes, without padding
MAX_TICKET_SECONDS = 60
TICKET_PREFIX = "TICKET#"
TICKET_SK = "TICKET"
KINDS = ("user", "anonymous")
_WELL_FORMED = re.compile(r"[A-Za-z0-9_-]{43}")
_OWNER_MAX = 512
_SESSION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")

Kind = Literal["user", "anonymous"]


class TicketNotIssued(Exception):
    """The credential expires before a ticket could be used: none is issued."""


@dataclass(frozen=True)
class TicketGrant:
    """What a consumed ticket lets its bearer do: open one connection to one session, as one owner."""

    owner: str  # the pseudonymous owner key stored on the session
    kind: Kind
    session_id: str
    credential_exp: int  # epoch seconds: the connection must not outlive the credential behind it


@dataclass(frozen=True)
class IssuedTicket:
    ticket: str  # handed to the caller once, never stored
    expires_at: int  # epoch seconds


class TicketStore(Protocol):
    def issue(self, grant: TicketGrant, lifetime_seconds: int = MAX_TICKET_SECONDS) -> IssuedTicket: ...
    def consume(self, ticket: object) -> TicketGrant | None: ...


def is_well_formed(ticket: object) -> bool:
    """Exactly 43 base64url characters: anything else is refused before any data access."""
    return isinstance(ticket, str) and _WELL_FORMED.fullmatch(ticket) is not None


def ticket_key(ticket: str) -> str:
    return TICKET_PREFIX + hashlib.sha256(ticket.encode("ascii")).hexdigest()


def new_ticket(random_bytes: Callable[[int], bytes] = secrets.token_bytes) -> str:
    return base64.urlsafe_b64encode(random_bytes(TICKET_BYTES)).rstrip(b"=").decode("ascii")


def ticket_expiry(now: int, lifetime_seconds: int, credential_exp: int) -> int:
    """At most :data:`MAX_TICKET_SECONDS` from now, and never after the credential; raises
    :class:`TicketNotIssued` when nothing of that is left."""
    expires_at = min(now + min(lifetime_seconds, MAX_TICKET_SECONDS), credential_exp)
    if expires_at <= now:
        raise TicketNotIssued()
    return expires_at


def grant_from_item(item: dict[str, Any]) -> TicketGrant | None:
    """The grant a stored item holds, or None when any attribute is missing or out of shape."""
    try:
        owner = item["owner"]["S"]
        kind = item["kind"]["S"]
        session_id = item["session_id"]["S"]
        credential_exp = int(item["credential_exp"]["N"])
    except (KeyError, TypeError, ValueError):
        return None
    if not 0 < len(owner) <= _OWNER_MAX or kind not in KINDS or not _SESSION_ID.fullmatch(session_id):
        return None
    return TicketGrant(owner=owner, kind=kind, session_id=session_id, credential_exp=credential_exp)


def ticket_item(key: str, grant: TicketGrant, expires_at: int) -> dict[str, Any]:
    return {
        "pk": {"S": key},
        "sk": {"S": TICKET_SK},
        "owner": {"S": grant.owner},
        "kind": {"S": grant.kind},
        "session_id": {"S": grant.session_id},
        "credential_exp": {"N": str(grant.credential_exp)},
        "expires_at": {"N": str(expires_at)},
        "ttl": {"N": str(expires_at)},  # TTL only tidies up: consume checks expires_at itself
    }


class DynamoTicketStore:
    """:class:`TicketStore` on the chat table, through the low-level client."""

    def __init__(
        self,
        dynamodb: Callable[[], Any],
        table_name: str,
        clock: Callable[[], float] = time.time,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self._db = dynamodb
        self._table = table_name
        self._clock = clock
        self._random = random_bytes

    def issue(self, grant: TicketGrant, lifetime_seconds: int = MAX_TICKET_SECONDS) -> IssuedTicket:
        now = int(self._clock())
        expires_at = ticket_expiry(now, lifetime_seconds, grant.credential_exp)
        ticket = new_ticket(self._random)
        self._db().put_item(
            TableName=self._table,
            Item=ticket_item(ticket_key(ticket), grant, expires_at),
            ConditionExpression="attribute_not_exists(pk)",  # 256 random bits never collide; never overwrite
        )
        return IssuedTicket(ticket=ticket, expires_at=expires_at)

    def consume(self, ticket: object) -> TicketGrant | None:
        """The ticket's grant, once: None for a malformed, unknown, used or expired ticket."""
        if not is_well_formed(ticket):
            return None
        client = self._db()
        try:
            response = client.delete_item(
                TableName=self._table,
                Key={"pk": {"S": ticket_key(str(ticket))}, "sk": {"S": TICKET_SK}},
                ConditionExpression="expires_at > :now",
                ExpressionAttributeValues={":now": {"N": str(int(self._clock()))}},
                ReturnValues="ALL_OLD",
            )
        except client.exceptions.ConditionalCheckFailedException:
            return None  # no such ticket (never issued, or used already) or expired
        return grant_from_item(response.get("Attributes") or {})
