"""POST /v1/sessions/{session_id}/stream-tickets: authorised like every session route (the owner only;
an anonymous token only for its own session; an ended session is 404), answering a single-use ticket
that lives at most 60 seconds and is stored only as its hash."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import boto3
import pytest
from support.api import InProcessApi
from support.issuer_server import IssuerServer

from chatbot_security.storage.tickets import DynamoTicketStore

pytestmark = pytest.mark.usefixtures("aws")
TICKETS = "POST /v1/sessions/{session_id}/stream-tickets"
STREAM_URL = "wss://abc123.execute-api.eu-west-1.amazonaws.com/v1"


@pytest.fixture(autouse=True)
def _streaming_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAM_URL", STREAM_URL)


def ticket_for(api: InProcessApi, token: str | None, session_id: str) -> Any:
    return api.call(TICKETS, token, session_id=session_id)


def scan_table(aws: Any) -> list[dict[str, Any]]:
    return list(boto3.client("dynamodb").scan(TableName=aws.table_name)["Items"])


def test_the_owner_gets_a_ticket_and_the_url_to_connect_to(api: InProcessApi, alice: str) -> None:
    session_id = api.call("POST /v1/sessions", alice).body["session_id"]

    reply = ticket_for(api, alice, session_id)

    assert reply.status == 201
    assert set(reply.body) == {"ticket", "expires_at", "url"}
    assert reply.body["url"] == f"{STREAM_URL}?ticket={reply.body['ticket']}"
    assert reply.headers["Cache-Control"] == "no-store"


def test_the_ticket_expires_within_60_seconds(api: InProcessApi, alice: str) -> None:
    session_id = api.call("POST /v1/sessions", alice).body["session_id"]
    before = time.time()

    reply = ticket_for(api, alice, session_id)

    expires_at = datetime.fromisoformat(reply.body["expires_at"].replace("Z", "+00:00")).timestamp()
    assert before < expires_at <= time.time() + 60


def test_the_ticket_opens_the_owners_session_as_the_owner(api: InProcessApi, alice: str, aws: Any) -> None:
    session_id = api.call("POST /v1/sessions", alice).body["session_id"]
    ticket = ticket_for(api, alice, session_id).body["ticket"]
    client = boto3.client("dynamodb")

    grant = DynamoTicketStore(lambda: client, aws.table_name).consume(ticket)

    assert grant is not None
    assert (grant.kind, grant.session_id) == ("user", session_id)
    assert "alice" not in grant.owner  # the pseudonymous owner key, never the sub
    assert len(grant.owner) >= 32
    assert time.time() < grant.credential_exp <= time.time() + 3600  # the access token's exp


def test_the_ticket_is_stored_only_as_its_hash(api: InProcessApi, alice: str, aws: Any) -> None:
    session_id = api.call("POST /v1/sessions", alice).body["session_id"]

    ticket = ticket_for(api, alice, session_id).body["ticket"]

    items = scan_table(aws)
    assert ticket not in repr(items)
    assert sum(item["pk"]["S"].startswith("TICKET#") for item in items) == 1


def test_another_users_session_is_not_found(api: InProcessApi, alice: str, oidc_env: IssuerServer) -> None:
    bob = oidc_env.issuer.token(sub="bob")
    bobs = api.call("POST /v1/sessions", bob).body["session_id"]

    reply = ticket_for(api, alice, bobs)

    assert reply.status == 404
    assert reply.body["error"]["code"] == "not_found"


def test_no_ticket_is_stored_for_a_refused_request(
    api: InProcessApi, alice: str, oidc_env: IssuerServer, aws: Any
) -> None:
    bobs = api.call("POST /v1/sessions", oidc_env.issuer.token(sub="bob")).body["session_id"]

    ticket_for(api, alice, bobs)

    assert not [item for item in scan_table(aws) if item["pk"]["S"].startswith("TICKET#")]


def test_an_anonymous_token_gets_a_ticket_for_its_own_session(api: InProcessApi) -> None:
    anonymous = api.call("POST /v1/anonymous-sessions", None).body

    reply = ticket_for(api, anonymous["session_token"], anonymous["session_id"])

    assert reply.status == 201


def test_an_anonymous_token_is_refused_on_another_session(api: InProcessApi, alice: str) -> None:
    anonymous = api.call("POST /v1/anonymous-sessions", None).body
    other_anonymous = api.call("POST /v1/anonymous-sessions", None).body["session_id"]
    alices = api.call("POST /v1/sessions", alice).body["session_id"]

    for session_id in (other_anonymous, alices):
        reply = ticket_for(api, anonymous["session_token"], session_id)
        assert reply.status == 404


def test_the_anonymous_tickets_credential_ends_with_the_session_token(api: InProcessApi, aws: Any) -> None:
    anonymous = api.call("POST /v1/anonymous-sessions", None).body
    ticket = ticket_for(api, anonymous["session_token"], anonymous["session_id"]).body["ticket"]
    client = boto3.client("dynamodb")

    grant = DynamoTicketStore(lambda: client, aws.table_name).consume(ticket)

    assert grant is not None
    assert grant.kind == "anonymous"
    session_end = datetime.fromisoformat(anonymous["expires_at"].replace("Z", "+00:00")).timestamp()
    assert session_end <= grant.credential_exp <= time.time() + 86400  # the token's absolute expiry


def test_a_deleted_session_is_not_found(api: InProcessApi, alice: str) -> None:
    session_id = api.call("POST /v1/sessions", alice).body["session_id"]
    api.call("DELETE /v1/sessions/{session_id}", alice, session_id=session_id)

    assert ticket_for(api, alice, session_id).status == 404


def test_no_credentials_is_401_like_every_session_route(api: InProcessApi, alice: str) -> None:
    session_id = api.call("POST /v1/sessions", alice).body["session_id"]

    assert ticket_for(api, None, session_id).status == 401
    assert ticket_for(api, "not-a-token", session_id).status == 403


def test_a_body_is_refused(api: InProcessApi, alice: str) -> None:
    session_id = api.call("POST /v1/sessions", alice).body["session_id"]

    reply = api.call(TICKETS, alice, body={"session_id": "x"}, session_id=session_id)

    assert reply.status == 422


def test_a_session_id_that_is_not_a_uuid_is_refused(api: InProcessApi, alice: str) -> None:
    assert ticket_for(api, alice, "not-a-uuid").status == 422


def test_without_a_stream_url_the_route_is_not_found(
    api: InProcessApi, alice: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    session_id = api.call("POST /v1/sessions", alice).body["session_id"]
    monkeypatch.delenv("STREAM_URL")
    from chatbot_security.platform.settings import get_settings

    get_settings.cache_clear()
    from chat.dependencies import default_conversations

    default_conversations.cache_clear()

    assert ticket_for(api, alice, session_id).status == 404
