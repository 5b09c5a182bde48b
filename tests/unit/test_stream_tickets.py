"""Issuing stream tickets (the logic behind POST /v1/sessions/{session_id}/stream-tickets), on the
in-memory fakes: only for the caller's own live session, bound to the caller, never beyond the
caller's credential, and pointing at STREAM_URL."""

from __future__ import annotations

import time
from typing import Any

import pytest
from support.ticket_fakes import InMemoryTicketStore

from chatbot_security.conversation.errors import ForbiddenError, NotFoundError
from chatbot_security.conversation.model_providers import EchoModel
from chatbot_security.conversation.stream_tickets import issue_stream_ticket, ticket_url
from chatbot_security.identity.principal import Principal
from chatbot_security.platform.settings import Settings
from tools.fakes import in_memory_conversations

ISSUER = "https://issuer.example.test"
STREAM_URL = "wss://abc123.execute-api.eu-west-1.amazonaws.com/v1"


def user(sub: str, expires_in: int = 3600) -> Principal:
    return Principal(kind="user", subject=sub, issuer=ISSUER, expires_at=int(time.time()) + expires_in)


def service(stream_url: str | None = STREAM_URL) -> Any:
    values = {"OIDC_ISSUER": ISSUER, **({"STREAM_URL": stream_url} if stream_url else {})}
    return in_memory_conversations(EchoModel(), Settings.model_validate(values))


def test_the_owner_gets_a_ticket_bound_to_them_and_the_session() -> None:
    conversations, tickets = service(), InMemoryTicketStore()
    alice = user("alice")
    session_id = conversations.create_session(alice).session_id

    issued = issue_stream_ticket(conversations, tickets, alice, session_id)

    assert issued.url == f"{STREAM_URL}?ticket={issued.ticket}"
    grant = tickets.consume(issued.ticket)
    assert grant is not None
    assert (grant.owner, grant.kind, grant.session_id) == (conversations.identity.owner_of(alice), "user", session_id)
    assert grant.credential_exp == alice.expires_at


def test_another_users_session_is_not_found_and_no_ticket_is_stored() -> None:
    conversations, tickets = service(), InMemoryTicketStore()
    bobs = conversations.create_session(user("bob")).session_id

    with pytest.raises(NotFoundError):
        issue_stream_ticket(conversations, tickets, user("alice"), bobs)
    assert tickets.items == {}


def test_an_anonymous_principal_gets_no_ticket_for_another_session() -> None:
    conversations, tickets = service(), InMemoryTicketStore()
    alices = conversations.create_session(user("alice")).session_id
    anonymous = Principal(kind="anonymous", subject="s", session_id="s", expires_at=int(time.time()) + 60)

    with pytest.raises(NotFoundError):
        issue_stream_ticket(conversations, tickets, anonymous, alices)


def test_a_ticket_expires_with_a_credential_that_ends_sooner() -> None:
    conversations, tickets = service(), InMemoryTicketStore()
    alice = user("alice", expires_in=20)
    session_id = conversations.create_session(alice).session_id

    issued = issue_stream_ticket(conversations, tickets, alice, session_id)

    assert tickets.items[next(iter(tickets.items))]["expires_at"]["N"] == str(alice.expires_at)
    assert issued.expires_at.endswith("Z")


def test_a_credential_without_an_expiry_gets_no_ticket() -> None:
    conversations, tickets = service(), InMemoryTicketStore()
    alice = user("alice")
    session_id = conversations.create_session(alice).session_id

    with pytest.raises(ForbiddenError):
        issue_stream_ticket(conversations, tickets, alice.model_copy(update={"expires_at": None}), session_id)


def test_without_a_stream_url_there_are_no_tickets() -> None:
    conversations, tickets = service(stream_url=None), InMemoryTicketStore()
    alice = user("alice")
    session_id = conversations.create_session(alice).session_id

    with pytest.raises(NotFoundError):
        issue_stream_ticket(conversations, tickets, alice, session_id)


@pytest.mark.parametrize(
    ("stream_url", "expected"),
    [
        ("wss://a.example.test/v1", "wss://a.example.test/v1?ticket=T"),
        ("ws://127.0.0.1:3001", "ws://127.0.0.1:3001/?ticket=T"),
        ("ws://127.0.0.1:3001/", "ws://127.0.0.1:3001/?ticket=T"),
    ],
)
def test_the_url_is_the_stream_url_with_the_ticket_as_its_query(stream_url: str, expected: str) -> None:
    assert ticket_url(stream_url, "T") == expected
