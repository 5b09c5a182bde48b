"""An in-memory stream-ticket store with the DynamoDB store's guarantees (single use, hash-only keys,
expiry checked on use); tests/integration/test_ticket_store_contract.py runs the same cases on both."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chatbot_security.storage.tickets import (
    MAX_TICKET_SECONDS,
    IssuedTicket,
    TicketGrant,
    grant_from_item,
    is_well_formed,
    new_ticket,
    ticket_expiry,
    ticket_item,
    ticket_key,
)


@dataclass
class InMemoryTicketStore:
    clock: Callable[[], float] = time.time
    random_bytes: Callable[[int], bytes] = secrets.token_bytes
    items: dict[str, dict[str, Any]] = field(default_factory=dict)  # by key, in the table's item shape
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, grant: TicketGrant, lifetime_seconds: int = MAX_TICKET_SECONDS) -> IssuedTicket:
        now = int(self.clock())
        expires_at = ticket_expiry(now, lifetime_seconds, grant.credential_exp)
        ticket = new_ticket(self.random_bytes)
        with self.lock:
            key = ticket_key(ticket)
            if key in self.items:
                raise RuntimeError("ConditionalCheckFailedException")
            self.items[key] = ticket_item(key, grant, expires_at)
        return IssuedTicket(ticket=ticket, expires_at=expires_at)

    def consume(self, ticket: object) -> TicketGrant | None:
        if not is_well_formed(ticket):
            return None
        key = ticket_key(str(ticket))
        with self.lock:
            item = self.items.get(key)
            if item is None or int(item["expires_at"]["N"]) <= int(self.clock()):
                return None
            del self.items[key]
        return grant_from_item(item)
