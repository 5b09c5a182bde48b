"""A whole conversation through the real authorizer and chat handler, against moto."""

from __future__ import annotations

import uuid
from typing import Any

import boto3
import pytest
from support.api import InProcessApi
from support.issuer_server import IssuerServer

pytestmark = pytest.mark.usefixtures("aws")

MESSAGES = "POST /v1/sessions/{session_id}/messages"
HISTORY = "GET /v1/sessions/{session_id}/messages"
SESSION = "GET /v1/sessions/{session_id}"


@pytest.fixture
def bob(oidc_env: IssuerServer) -> str:
    return oidc_env.issuer.token(sub="bob")


def test_user_creates_session_posts_and_reads_back(api: InProcessApi, alice: str) -> None:
    # Given a signed-in user with a new session
    created = api.call("POST /v1/sessions", alice)
    assert created.status == 201
    session_id = created.body["session_id"]
    assert uuid.UUID(session_id).version == 4
    # When they post a message
    turn = api.call(MESSAGES, alice, {"content": "hello there"}, session_id=session_id)
    # Then the echo model answers and both messages come back, oldest first
    assert turn.status == 201
    assert turn.body["user_message"]["content"] == "hello there"
    assert turn.body["assistant_message"]["role"] == "assistant"
    history = api.call(HISTORY, alice, session_id=session_id)
    assert history.status == 200
    assert [m["role"] for m in history.body["messages"]] == ["user", "assistant"]
    assert history.body["messages"][0]["content"] == "hello there"
    assert history.body["next_cursor"] is None
    assert api.call(SESSION, alice, session_id=session_id).body["message_count"] == 2


def test_every_chat_response_carries_the_security_headers(api: InProcessApi, alice: str) -> None:
    created = api.call("POST /v1/sessions", alice)
    missing = api.call(SESSION, alice, session_id=str(uuid.uuid4()))
    for reply in (created, missing):
        assert reply.headers["Cache-Control"] == "no-store"
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
        assert reply.headers["Content-Type"] == "application/json"


def test_another_users_session_is_a_404_like_a_missing_one(api: InProcessApi, alice: str, bob: str) -> None:
    session_id = api.call("POST /v1/sessions", alice).body["session_id"]
    api.call(MESSAGES, alice, {"content": "private"}, session_id=session_id)

    for route, body in ((SESSION, None), (HISTORY, None), (MESSAGES, {"content": "hijack"})):
        stolen = api.call(route, bob, body, session_id=session_id)
        missing = api.call(route, bob, body, session_id=str(uuid.uuid4()))
        assert stolen.status == missing.status == 404
        assert stolen.body["error"]["code"] == missing.body["error"]["code"] == "not_found"
    assert api.call("DELETE /v1/sessions/{session_id}", bob, session_id=session_id).status == 404
    # And Alice's session is untouched
    assert api.call(SESSION, alice, session_id=session_id).body["message_count"] == 2


def test_history_pages_with_cursors_that_only_work_on_their_own_session(api: InProcessApi, alice: str) -> None:
    first = api.call("POST /v1/sessions", alice).body["session_id"]
    second = api.call("POST /v1/sessions", alice).body["session_id"]
    for n in range(3):
        api.call(MESSAGES, alice, {"content": f"message {n}"}, session_id=first)
    page = api.call(HISTORY, alice, query={"limit": "4"}, session_id=first)
    assert len(page.body["messages"]) == 4
    cursor = page.body["next_cursor"]
    rest = api.call(HISTORY, alice, query={"limit": "4", "cursor": cursor}, session_id=first)
    assert [m["content"] for m in rest.body["messages"]] == ["message 2", "You said: message 2"]
    assert rest.body["next_cursor"] is None
    bent = api.call(HISTORY, alice, query={"cursor": cursor}, session_id=second)
    assert bent.status == 422


def test_deleted_session_is_gone_with_all_its_items(api: InProcessApi, alice: str, aws: Any) -> None:
    session_id = api.call("POST /v1/sessions", alice).body["session_id"]
    api.call(MESSAGES, alice, {"content": "to be erased"}, session_id=session_id)
    assert api.call("DELETE /v1/sessions/{session_id}", alice, session_id=session_id).status == 204
    assert api.call(SESSION, alice, session_id=session_id).status == 404
    items = boto3.client("dynamodb").query(
        TableName=aws.table_name,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"SESSION#{session_id}"}},
    )["Items"]
    assert items == []


def test_stored_items_hold_no_plaintext_and_no_raw_identifier(api: InProcessApi, alice: str, aws: Any) -> None:
    session_id = api.call("POST /v1/sessions", alice).body["session_id"]
    api.call(MESSAGES, alice, {"content": "very secret words"}, session_id=session_id)
    items = boto3.client("dynamodb").scan(TableName=aws.table_name)["Items"]
    dump = repr(items)
    assert "very secret words" not in dump
    assert "alice" not in dump


def test_anonymous_visitor_chats_in_its_own_session_only(api: InProcessApi, alice: str) -> None:
    created = api.call("POST /v1/anonymous-sessions", None, content_type=None)
    assert created.status == 201
    token, session_id = created.body["session_token"], created.body["session_id"]
    other = api.call("POST /v1/sessions", alice).body["session_id"]

    assert api.call(MESSAGES, token, {"content": "hi"}, session_id=session_id).status == 201
    assert api.call(SESSION, token, session_id=other).status == 404
    assert api.call("POST /v1/sessions", token).status == 403
    listed = api.call("GET /v1/sessions", token)
    assert [s["session_id"] for s in listed.body["sessions"]] == [session_id]


def test_anonymous_sessions_answer_404_when_disabled(api: InProcessApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOW_ANONYMOUS", "false")
    reply = api.call("POST /v1/anonymous-sessions", None, content_type=None)
    assert reply.status == 404
    assert reply.body == {"message": "Not Found"}


def test_users_list_only_their_own_live_sessions(api: InProcessApi, alice: str, bob: str) -> None:
    mine = [api.call("POST /v1/sessions", alice).body["session_id"] for _ in range(2)]
    api.call("POST /v1/sessions", bob)
    deleted = api.call("POST /v1/sessions", alice).body["session_id"]
    api.call("DELETE /v1/sessions/{session_id}", alice, session_id=deleted)
    listed = api.call("GET /v1/sessions", alice)
    assert listed.status == 200
    assert [s["session_id"] for s in listed.body["sessions"]] == mine
