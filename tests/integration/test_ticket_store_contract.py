"""The stream-ticket store's contract: the same cases against the in-memory fake and the DynamoDB
store on moto (the table made from template.yaml). A ticket is single use, lives at most 60 seconds
and never beyond its credential, and is stored only as its SHA-256."""

from __future__ import annotations

import hashlib
import threading
import uuid
from typing import Any

import boto3
import pytest
from support.clocks import FIXED_START, ManualClock
from support.ticket_fakes import InMemoryTicketStore

from chatbot_security.storage.tickets import (
    MAX_TICKET_SECONDS,
    DynamoTicketStore,
    TicketGrant,
    TicketNotIssued,
    TicketStore,
)

NOW = FIXED_START
SESSION = str(uuid.UUID(int=7, version=4))
GRANT = TicketGrant(owner="owner-hash", kind="user", session_id=SESSION, credential_exp=NOW + 3600)


def stored_items(tickets: TicketStore) -> list[dict[str, Any]]:
    if isinstance(tickets, InMemoryTicketStore):
        return list(tickets.items.values())
    assert isinstance(tickets, DynamoTicketStore)
    client = boto3.client("dynamodb")
    return list(client.scan(TableName=tickets._table)["Items"])


def test_an_issued_ticket_is_43_urlsafe_characters_and_lives_at_most_60_seconds(tickets: TicketStore) -> None:
    issued = tickets.issue(GRANT)

    assert len(issued.ticket) == 43
    assert set(issued.ticket) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert issued.expires_at == NOW + MAX_TICKET_SECONDS


def test_a_longer_lifetime_is_cut_to_60_seconds(tickets: TicketStore) -> None:
    assert tickets.issue(GRANT, lifetime_seconds=3600).expires_at == NOW + 60


def test_a_ticket_never_outlives_its_credential(tickets: TicketStore) -> None:
    grant = TicketGrant(owner="owner-hash", kind="anonymous", session_id=SESSION, credential_exp=NOW + 20)

    assert tickets.issue(grant).expires_at == NOW + 20


def test_no_ticket_is_issued_for_an_expired_credential(tickets: TicketStore) -> None:
    grant = TicketGrant(owner="owner-hash", kind="user", session_id=SESSION, credential_exp=NOW)

    with pytest.raises(TicketNotIssued):
        tickets.issue(grant)


def test_a_ticket_is_consumed_once_and_gives_its_grant(tickets: TicketStore) -> None:
    issued = tickets.issue(GRANT)

    assert tickets.consume(issued.ticket) == GRANT
    assert tickets.consume(issued.ticket) is None


def test_two_tickets_are_different(tickets: TicketStore) -> None:
    assert tickets.issue(GRANT).ticket != tickets.issue(GRANT).ticket


def test_a_ticket_is_stored_only_as_its_sha256(tickets: TicketStore) -> None:
    issued = tickets.issue(GRANT)

    items = stored_items(tickets)

    assert [item["pk"]["S"] for item in items] == ["TICKET#" + hashlib.sha256(issued.ticket.encode()).hexdigest()]
    assert issued.ticket not in repr(items)
    assert items[0]["sk"]["S"] == "TICKET"
    assert items[0]["ttl"]["N"] == str(NOW + 60)


def test_an_expired_ticket_is_refused(tickets: TicketStore, clock: ManualClock) -> None:
    issued = tickets.issue(GRANT)
    clock.now = NOW + 60

    assert tickets.consume(issued.ticket) is None


def test_a_ticket_still_valid_a_second_before_expiry_is_accepted(tickets: TicketStore, clock: ManualClock) -> None:
    issued = tickets.issue(GRANT)
    clock.now = NOW + 59

    assert tickets.consume(issued.ticket) == GRANT


def test_an_unknown_ticket_is_refused(tickets: TicketStore) -> None:
    tickets.issue(GRANT)

    assert tickets.consume("A" * 43) is None


@pytest.mark.parametrize(
    "ticket",
    [None, 42, "", "A" * 42, "A" * 44, "A" * 10_000, "A" * 42 + "=", "A" * 42 + "/", "A" * 42 + "+", "Ä" * 43],
    ids=["none", "number", "empty", "short", "long", "oversized", "padding", "slash", "plus", "non-ascii"],
)
def test_a_malformed_ticket_is_refused(tickets: TicketStore, ticket: object) -> None:
    assert tickets.consume(ticket) is None


def test_the_grant_keeps_owner_kind_session_and_credential_expiry(tickets: TicketStore) -> None:
    grant = TicketGrant(owner="anon-owner-hash", kind="anonymous", session_id=SESSION, credential_exp=NOW + 45)

    assert tickets.consume(tickets.issue(grant).ticket) == grant


def test_of_concurrent_uses_exactly_one_gets_the_grant(tickets: TicketStore) -> None:
    issued = tickets.issue(GRANT)
    results: list[TicketGrant | None] = []
    start = threading.Barrier(4)

    def use() -> None:
        start.wait()
        results.append(tickets.consume(issued.ticket))

    threads = [threading.Thread(target=use) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results.count(GRANT) == 1
    assert results.count(None) == 3
