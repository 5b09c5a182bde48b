"""Someone with write access to the table but not the key (a leaked role, an operator, a restored
backup) must not be able to change what the API serves as the history: every message's ciphertext is
bound to its session, id, role, position and time. What they alter becomes one unreadable message
(`"unreadable": true`, empty content), never another message and never a failed page.

Through the real authorizer and chat handler, against moto."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from support.api import InProcessApi
from support.caches import reset_caches
from support.issuer_server import IssuerServer

from chat import dependencies
from chatbot_security.conversation.model_providers import ChatMessage, ModelAnswer

pytestmark = pytest.mark.usefixtures("aws")

MESSAGES = "POST /v1/sessions/{session_id}/messages"
HISTORY = "GET /v1/sessions/{session_id}/messages"


class RecordingModel:
    history_window = 20

    def __init__(self) -> None:
        self.seen: list[list[ChatMessage]] = []

    def reply(self, history: Sequence[ChatMessage], user_message: str) -> ModelAnswer:
        self.seen.append(list(history))
        return ModelAnswer(f"answer to {user_message}", 1, 1)


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch) -> RecordingModel:
    recording = RecordingModel()
    monkeypatch.setattr(dependencies, "build_model_provider", lambda settings: recording)
    reset_caches()
    return recording


@pytest.fixture
def api(lambda_context: Any, oidc_env: IssuerServer, model: RecordingModel) -> InProcessApi:
    return InProcessApi(lambda_context)


@pytest.fixture
def session_id(api: InProcessApi, alice: str) -> str:
    """A session with two turns: 1 user, 2 assistant, 3 user, 4 assistant."""
    session = str(api.call("POST /v1/sessions", alice).body["session_id"])
    for text in ("first question", "second question"):
        assert api.call(MESSAGES, alice, {"content": text}, session_id=session).status == 201
    return session


def items(table: str, session_id: str) -> dict[str, dict[str, Any]]:
    found = boto3.client("dynamodb").query(
        TableName=table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :msg)",
        ExpressionAttributeValues={":pk": {"S": f"SESSION#{session_id}"}, ":msg": {"S": "MSG#"}},
    )["Items"]
    return {item["sk"]["S"]: item for item in found}


def put(table: str, *written: dict[str, Any]) -> None:
    for item in written:
        boto3.client("dynamodb").put_item(TableName=table, Item=item)


def history(api: InProcessApi, alice: str, session_id: str) -> list[dict[str, Any]]:
    reply = api.call(HISTORY, alice, session_id=session_id)
    assert reply.status == 200, reply.body
    return list(reply.body["messages"])


def unreadable(message: dict[str, Any]) -> bool:
    return message.get("unreadable") is True and message["content"] == ""


def test_an_assistant_message_turned_into_a_user_message_is_detected(
    api: InProcessApi, alice: str, session_id: str, aws: Any
) -> None:
    # Given write access to the table: the first answer is relabelled as something the user said
    stored = items(aws.table_name, session_id)
    put(aws.table_name, {**stored["MSG#00000002"], "role": {"S": "user"}})
    # When the history is read
    messages = history(api, alice, session_id)
    # Then that message is unreadable (its text is not served under the new role), the others intact
    assert unreadable(messages[1])
    assert "answer to first question" not in json.dumps(messages)
    assert [m["content"] for m in (messages[0], messages[2], messages[3])] == [
        "first question",
        "second question",
        "answer to second question",
    ]
    assert not any("unreadable" in m for m in (messages[0], messages[2], messages[3]))


def test_two_messages_swapped_in_place_are_detected(api: InProcessApi, alice: str, session_id: str, aws: Any) -> None:
    # Given the two user messages exchanged, whole items (id, role, time, ciphertext) moved to each other's place
    stored = items(aws.table_name, session_id)
    first, second = stored["MSG#00000001"], stored["MSG#00000003"]
    put(aws.table_name, {**second, "sk": first["sk"]}, {**first, "sk": second["sk"]})
    # Then neither is served in the other's position
    messages = history(api, alice, session_id)
    assert unreadable(messages[0])
    assert unreadable(messages[2])
    assert [m["content"] for m in (messages[1], messages[3])] == [
        "answer to first question",
        "answer to second question",
    ]


def test_two_messages_swapped_ciphertexts_are_detected(
    api: InProcessApi, alice: str, session_id: str, aws: Any
) -> None:
    stored = items(aws.table_name, session_id)
    first, second = stored["MSG#00000001"], stored["MSG#00000003"]
    put(aws.table_name, {**first, "content": second["content"]}, {**second, "content": first["content"]})
    messages = history(api, alice, session_id)
    assert unreadable(messages[0])
    assert unreadable(messages[2])


def test_a_message_with_a_rewritten_time_is_detected(api: InProcessApi, alice: str, session_id: str, aws: Any) -> None:
    stored = items(aws.table_name, session_id)
    earlier = str(int(stored["MSG#00000004"]["created_ms"]["N"]) - 3_600_000)
    put(aws.table_name, {**stored["MSG#00000004"], "created_ms": {"N": earlier}})
    assert unreadable(history(api, alice, session_id)[3])


@pytest.mark.parametrize("role", ["system", "admin", ""])
def test_a_message_with_an_unknown_role_is_unreadable_not_a_failed_page(
    api: InProcessApi, alice: str, session_id: str, aws: Any, role: str
) -> None:
    stored = items(aws.table_name, session_id)
    put(aws.table_name, {**stored["MSG#00000002"], "role": {"S": role}})
    messages = history(api, alice, session_id)
    assert unreadable(messages[1])
    assert messages[1]["role"] in ("user", "assistant")


def test_the_session_goes_on_after_a_message_was_altered(
    api: InProcessApi, alice: str, session_id: str, aws: Any, model: RecordingModel
) -> None:
    # Given an altered answer in the history
    stored = items(aws.table_name, session_id)
    put(aws.table_name, {**stored["MSG#00000002"], "role": {"S": "user"}})
    # When the user posts again
    reply = api.call(MESSAGES, alice, {"content": "third question"}, session_id=session_id)
    # Then the turn works, and the model never sees the altered message
    assert reply.status == 201
    shown = [(m.role, m.content) for m in model.seen[-1]]
    assert shown == [
        ("user", "first question"),
        ("user", "second question"),
        ("assistant", "answer to second question"),
    ]


def test_messages_written_with_version_1_are_still_served(
    api: InProcessApi, alice: str, session_id: str, aws: Any
) -> None:
    # Given a message stored before version 2, sealed with the session's own data key
    service = dependencies.default_conversations()
    session = service.store.get_session(session_id)
    assert session is not None
    key = service.data_keys.unwrap(session_id, session.wrapped_key)
    stored = items(aws.table_name, session_id)["MSG#00000003"]
    nonce = os.urandom(12)
    aad = f"chatbot/content/v1\x00{session_id}\x00{stored['message_id']['S']}".encode()
    v1 = b"\x01" + nonce + AESGCM(key).encrypt(nonce, b"an old message", aad)
    put(aws.table_name, {**stored, "content": {"B": v1}})
    # Then it is served as it was written
    assert history(api, alice, session_id)[2]["content"] == "an old message"


def test_readable_messages_carry_no_unreadable_field(api: InProcessApi, alice: str, session_id: str) -> None:
    assert all(set(m) == {"message_id", "role", "content", "created_at"} for m in history(api, alice, session_id))
