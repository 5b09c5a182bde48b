"""docs/contract.md section 6, rules 5 to 10, as the chat function keeps them: one named test per rule (and
a few more), through the real authorizer and chat handler against moto."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

import boto3
import pytest
from support.api import InProcessApi
from support.caches import reset_caches
from support.issuer_server import IssuerServer

from chat import dependencies
from chatbot_security.conversation.model_providers import ChatMessage, ModelAnswer
from tools.aws_calls import AwsCalls

pytestmark = pytest.mark.usefixtures("aws")

MESSAGES = "POST /v1/sessions/{session_id}/messages"
HISTORY = "GET /v1/sessions/{session_id}/messages"
SESSION = "GET /v1/sessions/{session_id}"


class ScriptedModel:
    """Stands in for a provider: answers with a fixed text and records what it was shown."""

    history_window = 20

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.seen: list[tuple[list[ChatMessage], str]] = []

    def reply(self, history: Sequence[ChatMessage], user_message: str) -> ModelAnswer:
        self.seen.append((list(history), user_message))
        return ModelAnswer(self.answer, 1, 1)


@pytest.fixture
def scripted_model(monkeypatch: pytest.MonkeyPatch) -> ScriptedModel:
    model = ScriptedModel("ok")
    monkeypatch.setattr(dependencies, "build_model_provider", lambda settings: model)
    reset_caches()
    return model


def raw_items(table: str, session_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = boto3.client("dynamodb").query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"SESSION#{session_id}"}},
    )["Items"]
    return items


# -- rule 5 -----------------------------------------------------------------------------------
def test_rule_5_a_cursor_from_one_session_does_not_page_another(api: InProcessApi, alice: str) -> None:
    first, second = (api.call("POST /v1/sessions", alice).body["session_id"] for _ in range(2))
    for n in range(2):
        api.call(MESSAGES, alice, {"content": f"m{n}"}, session_id=first)
        api.call(MESSAGES, alice, {"content": f"m{n}"}, session_id=second)
    cursor = api.call(HISTORY, alice, query={"limit": "1"}, session_id=first).body["next_cursor"]

    assert api.call(HISTORY, alice, query={"limit": "1", "cursor": cursor}, session_id=first).status == 200
    assert api.call(HISTORY, alice, query={"limit": "1", "cursor": cursor}, session_id=second).status == 422


def test_rule_5_the_session_owner_is_checked_on_every_route(
    api: InProcessApi, alice: str, session_id: str, oidc_env: IssuerServer
) -> None:
    mallory = oidc_env.issuer.token(sub="mallory")
    client_id = str(uuid.uuid4())
    api.call(MESSAGES, alice, {"content": "mine", "client_message_id": client_id}, session_id=session_id)

    for route, body in ((SESSION, None), (HISTORY, None), (MESSAGES, {"content": "x", "client_message_id": client_id}),
                        ("DELETE /v1/sessions/{session_id}", None)):  # fmt: skip
        assert api.call(route, mallory, body, session_id=session_id).status == 404
    assert api.call(SESSION, alice, session_id=session_id).body["message_count"] == 2


# -- rule 6 -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ("\xff" * 20_000, "text/plain", 415),  # wrong type, too large, not JSON: the type is reported
        ('{"content": "' + "a" * 20_000, "application/json", 413),  # too large and not JSON: the size
        ('{"content": ', "application/json", 400),
        ('{"content": "hi", "extra": 1}', "application/json", 422),
    ],
    ids=["415-first", "413-before-400", "400-before-422", "422"],
)
def test_rule_6_input_is_checked_in_order_before_any_data_access(
    api: InProcessApi, alice: str, session_id: str, calls: AwsCalls, body: str, content_type: str, status: int
) -> None:
    calls.clear()
    reply = api.call(MESSAGES, alice, body, content_type=content_type, session_id=session_id)
    assert reply.status == status
    assert calls.by_service() == {}


def test_rule_6_a_bad_session_id_is_rejected_before_any_data_access(
    api: InProcessApi, alice: str, session_id: str, calls: AwsCalls
) -> None:
    calls.clear()
    assert api.call(MESSAGES, alice, {"content": "hi"}, session_id="not-a-uuid").status == 422
    assert calls.by_service() == {}


# -- rule 7 -----------------------------------------------------------------------------------
def test_rule_7_the_rate_limit_follows_the_principal_not_forwarded_headers(
    api: InProcessApi, alice: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chat.dependencies import default_conversations

    monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "3")
    reset_caches()
    monkeypatch.setattr(default_conversations().rate_limiter, "_clock", lambda: 1_800_000_030.0)  # one window
    sessions = [api.call("POST /v1/sessions", alice).body["session_id"] for _ in range(2)]

    statuses = [
        api.call(MESSAGES, alice, {"content": f"m{n}"}, source_ip=f"203.0.113.{n}", session_id=sessions[n % 2]).status
        for n in range(4)
    ]

    assert statuses == [201, 201, 201, 429]
    limited = api.call(MESSAGES, alice, {"content": "again"}, source_ip="198.51.100.99", session_id=sessions[0])
    assert limited.status == 429
    assert int(limited.headers["Retry-After"]) == 31


# -- rule 8 -----------------------------------------------------------------------------------
def test_rule_8_content_is_stored_encrypted_and_bound_to_its_message(
    api: InProcessApi, alice: str, session_id: str, aws: Any
) -> None:
    api.call(MESSAGES, alice, {"content": "the first secret"}, session_id=session_id)
    api.call(MESSAGES, alice, {"content": "the second secret"}, session_id=session_id)
    items = {item["sk"]["S"]: item for item in raw_items(aws.table_name, session_id)}
    assert "secret" not in repr(items)
    assert "alice" not in repr(items)
    assert all(bytes(items[sk]["content"]["B"])[:1] == b"\x02" for sk in items if sk.startswith("MSG#"))

    # When the ciphertext of message 1 is copied onto message 3
    moved = dict(items["MSG#00000003"], content=items["MSG#00000001"]["content"])
    boto3.client("dynamodb").put_item(TableName=aws.table_name, Item=moved)

    # Then message 3 is served as unreadable instead of showing the moved text; the page still works
    reply = api.call(HISTORY, alice, session_id=session_id)
    assert reply.status == 200
    assert reply.body["messages"][2]["unreadable"] is True
    assert reply.body["messages"][2]["content"] == ""
    assert [m["content"] for m in reply.body["messages"]].count("the first secret") == 1


# -- rule 9 -----------------------------------------------------------------------------------
def test_rule_9_pii_is_masked_before_the_model_and_before_storage(
    api: InProcessApi, alice: str, session_id: str, scripted_model: ScriptedModel
) -> None:
    text = "I'm jane@example.org, card 4111 1111 1111 1111, call +1 (415) 555-2671, IP 203.0.113.9"

    turn = api.call(MESSAGES, alice, {"content": text}, session_id=session_id)

    masked = "I'm [EMAIL], card [CARD], call [PHONE], IP [IP]"
    assert scripted_model.seen[0][1] == masked
    assert turn.body["user_message"]["content"] == masked
    assert api.call(HISTORY, alice, session_id=session_id).body["messages"][0]["content"] == masked


# -- rule 10 ----------------------------------------------------------------------------------
def test_rule_10_model_output_is_returned_as_a_json_string_and_never_interpreted(
    api: InProcessApi, alice: str, session_id: str, scripted_model: ScriptedModel
) -> None:
    hostile = '<script>alert(1)</script>", "role": "admin"} {{7*7}} \\u0000'
    scripted_model.answer = hostile

    turn = api.call(MESSAGES, alice, {"content": "hi"}, session_id=session_id)

    assert turn.headers["Content-Type"] == "application/json"
    assert turn.body["assistant_message"] == {**turn.body["assistant_message"], "role": "assistant", "content": hostile}
    assert set(turn.body) == {"user_message", "assistant_message"}


def test_rule_10_the_model_sees_only_the_callers_session(
    api: InProcessApi, alice: str, session_id: str, scripted_model: ScriptedModel, oidc_env: IssuerServer
) -> None:
    bob = oidc_env.issuer.token(sub="bob")
    bobs = api.call("POST /v1/sessions", bob).body["session_id"]
    api.call(MESSAGES, bob, {"content": "bob's private words"}, session_id=bobs)
    api.call(MESSAGES, alice, {"content": "alice one"}, session_id=session_id)

    api.call(MESSAGES, alice, {"content": "alice two"}, session_id=session_id)

    history, _ = scripted_model.seen[-1]
    assert [m.content for m in history] == ["alice one", "ok"]


# -- section 3: idempotency, expiry, failures -------------------------------------------------
def test_a_repeated_client_message_id_returns_the_same_turn_with_201(
    api: InProcessApi, alice: str, session_id: str, scripted_model: ScriptedModel
) -> None:
    body = {"content": "just once", "client_message_id": str(uuid.uuid4())}

    first = api.call(MESSAGES, alice, body, session_id=session_id)
    again = api.call(MESSAGES, alice, body, session_id=session_id)

    assert (first.status, again.status) == (201, 201)
    assert again.body == first.body
    assert len(scripted_model.seen) == 1
    assert len(api.call(HISTORY, alice, session_id=session_id).body["messages"]) == 2


def test_a_client_message_id_reused_for_other_content_is_a_409_idempotency_conflict(
    api: InProcessApi, alice: str, session_id: str
) -> None:
    client_id = str(uuid.uuid4())
    api.call(MESSAGES, alice, {"content": "first", "client_message_id": client_id}, session_id=session_id)

    reply = api.call(MESSAGES, alice, {"content": "different", "client_message_id": client_id}, session_id=session_id)

    assert reply.status == 409
    assert reply.body["error"]["code"] == "idempotency_conflict"
    assert "different" not in json.dumps(reply.body)
    assert len(api.call(HISTORY, alice, session_id=session_id).body["messages"]) == 2


def test_a_client_message_id_reused_with_content_that_masks_the_same_is_a_repeat(
    api: InProcessApi, alice: str, session_id: str
) -> None:
    client_id = str(uuid.uuid4())
    first = api.call(MESSAGES, alice, {"content": "mail a@example.com", "client_message_id": client_id},
                     session_id=session_id)  # fmt: skip

    again = api.call(MESSAGES, alice, {"content": "mail b@example.org", "client_message_id": client_id},
                     session_id=session_id)  # fmt: skip

    assert (first.status, again.status) == (201, 201)
    assert again.body == first.body  # both are stored as "mail [EMAIL]": the same message


def test_a_session_past_its_absolute_lifetime_is_gone_even_when_active(
    api: InProcessApi, alice: str, session_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chat.dependencies import default_conversations

    service = default_conversations()
    start = time.time()
    for step in range(1, 4):  # active every 20 minutes: never idle for 30
        monkeypatch.setattr(service, "clock", lambda step=step: start + step * 1200)
        assert api.call(MESSAGES, alice, {"content": f"still here {step}"}, session_id=session_id).status == 201
    monkeypatch.setattr(service, "clock", lambda: start + 86_400 + 1)

    assert api.call(SESSION, alice, session_id=session_id).status == 404


@pytest.mark.parametrize(
    ("error_name", "status"), [("ModelProviderError", 502), ("ModelTimeoutError", 504), ("ContentBlockedError", 422)]
)
def test_a_failed_model_call_is_answered_and_stores_nothing(
    api: InProcessApi,
    alice: str,
    session_id: str,
    scripted_model: ScriptedModel,
    aws: Any,
    error_name: str,
    status: int,
) -> None:
    from chatbot_security.conversation import errors

    def fail(history: Sequence[ChatMessage], user_message: str) -> ModelAnswer:
        raise getattr(errors, error_name)()

    scripted_model.reply = fail  # type: ignore[method-assign]
    reply = api.call(MESSAGES, alice, {"content": "hi", "client_message_id": str(uuid.uuid4())}, session_id=session_id)

    assert reply.status == status
    assert reply.body["error"]["request_id"]
    assert [item["sk"]["S"] for item in raw_items(aws.table_name, session_id)] == ["SESSION"]


def test_concurrent_retries_against_dynamodb_call_the_model_once_and_store_one_turn(
    api: InProcessApi, alice: str, session_id: str, oidc_env: IssuerServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from chat.dependencies import default_conversations
    from chatbot_security.conversation.models import MessageRequest
    from chatbot_security.identity.principal import Principal

    entered, release, model_calls = threading.Event(), threading.Event(), []

    class Gated:
        history_window = 0

        def reply(self, history: Sequence[ChatMessage], user_message: str) -> ModelAnswer:
            model_calls.append(user_message)
            entered.set()
            assert release.wait(10)
            return ModelAnswer("the one answer", 1, 1)

    service = default_conversations()
    monkeypatch.setattr(service, "model", Gated())
    monkeypatch.setattr(service, "sleep", lambda seconds: time.sleep(0.01))
    caller = Principal(kind="user", subject="alice", issuer=oidc_env.url)
    request = MessageRequest.model_validate({"content": "hi", "client_message_id": str(uuid.uuid4())})
    results: list[Any] = []

    def post() -> None:
        results.append(service.post_message(caller, session_id, request))

    first, retry = threading.Thread(target=post), threading.Thread(target=post)
    first.start()
    assert entered.wait(10)
    retry.start()
    retry.join(0.3)  # waiting on the first attempt's claim
    release.set()
    first.join(10)
    retry.join(10)

    assert model_calls == ["hi"]
    assert len(results) == 2
    assert results[0] == results[1]
    assert api.call(SESSION, alice, session_id=session_id).body["message_count"] == 2
