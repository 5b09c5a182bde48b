"""Moderation through the HTTP API: the real authorizer and chat handler against moto, Bedrock through
botocore's Stubber (ApplyGuardrail and Converse share one bedrock-runtime client, so the stub also checks
their order), the OpenAI-compatible provider on a loopback server.

A blocked message is 422 ``content_blocked`` with nothing stored and no model call; a blocked answer is 201
with the refusal text and ``"moderated": true``, stored so; anonymised text is what is stored; and the
AWS calls of a turn are counted (Bedrock: 1 ApplyGuardrail + 1 Converse; OpenAI-compatible: 2
ApplyGuardrail + 1 model request)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from support.api import InProcessApi
from support.caches import reset_caches
from support.guardrail_responses import (
    DENIED_TOPIC_IN_ANSWER,
    INSULT_BLOCKED,
    NAMES_ANONYMISED,
    PASSED,
    converse_reply,
    converse_trace,
)
from support.openai_server import OpenAiServer, Scripted, completion
from support.provider_models import use_openai

from chatbot_security.conversation import moderation
from chatbot_security.conversation.model_providers import BedrockConverseModel, configured
from chatbot_security.storage.records import TURN_PREFIX
from tools.aws_calls import AwsCalls

pytestmark = pytest.mark.usefixtures("aws")

MESSAGES = "POST /v1/sessions/{session_id}/messages"
HISTORY = "GET /v1/sessions/{session_id}/messages"
REFUSAL = "That answer was withheld by moderation."
GUARDRAIL_ID, GUARDRAIL_VERSION = "gr-1", "1"
WITH_NAMES = "My name is Jane Doe and I live at 12 Rue de la Paix."
ANONYMISED = "My name is {NAME} and I live at {ADDRESS}."


@pytest.fixture
def runtime(calls: AwsCalls, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    """Moderation on with guardrail gr-1; every bedrock-runtime call (ApplyGuardrail, and Converse with the
    Bedrock provider) through one stubbed client, counted like the other AWS calls."""
    monkeypatch.setenv("MODERATION", "guardrail")
    monkeypatch.setenv("BEDROCK_GUARDRAIL_ID", GUARDRAIL_ID)
    monkeypatch.setenv("BEDROCK_GUARDRAIL_VERSION", GUARDRAIL_VERSION)
    monkeypatch.setenv("MODERATION_REFUSAL_TEXT", REFUSAL)
    client = boto3.client("bedrock-runtime")
    monkeypatch.setattr(moderation, "_guardrail_runtime", lambda _timeout: client)
    monkeypatch.setattr(
        configured,
        "BedrockConverseModel",
        lambda settings: BedrockConverseModel(settings, runtime=lambda _timeout: client),
    )
    reset_caches()
    with Stubber(client) as stub:
        yield stub


@pytest.fixture
def bedrock(runtime: Stubber, monkeypatch: pytest.MonkeyPatch) -> Stubber:
    monkeypatch.setenv("MODEL_PROVIDER", "bedrock")
    monkeypatch.setenv("MODEL_ID", "test-model")
    reset_caches()
    return runtime


@pytest.fixture
def openai(runtime: Stubber, openai_server: OpenAiServer, monkeypatch: pytest.MonkeyPatch) -> OpenAiServer:
    use_openai(openai_server, monkeypatch)
    return openai_server


def apply_guardrail(source: str, text: str) -> dict[str, Any]:
    """The ApplyGuardrail request the chat function must make."""
    return {
        "guardrailIdentifier": GUARDRAIL_ID,
        "guardrailVersion": GUARDRAIL_VERSION,
        "source": source,
        "content": [{"text": {"text": text}}],
    }


def converse_with(user_text: str) -> dict[str, Any]:
    """The Converse request: the guardrail with its trace, and the user's (anonymised) text last."""
    return {
        "modelId": "test-model",
        "system": ANY,
        "inferenceConfig": ANY,
        "messages": [{"role": "user", "content": [{"text": user_text}]}],
        "guardrailConfig": {"guardrailIdentifier": GUARDRAIL_ID, "guardrailVersion": GUARDRAIL_VERSION,
                            "trace": "enabled"},
    }  # fmt: skip


def message_items(table: str) -> list[dict[str, Any]]:
    items = boto3.client("dynamodb").scan(TableName=table)["Items"]
    return [item for item in items if item["sk"]["S"].startswith("MSG#")]


def history(api: InProcessApi, token: str, session_id: str) -> list[dict[str, Any]]:
    reply = api.call(HISTORY, token, session_id=session_id)
    assert reply.status == 200, reply.body
    return list(reply.body["messages"])


# ------------------------------------------------------------------ Bedrock provider
@pytest.mark.parametrize("client_message_id", [None, "5d0c2a3e-1f7b-4e8a-9c6d-2b4a8e1f3c57"], ids=["plain", "claimed"])
def test_a_blocked_message_is_422_content_blocked_stores_nothing_and_calls_no_model(
    bedrock: Stubber, api: InProcessApi, alice: str, session_id: str, calls: AwsCalls, aws: Any,
    client_message_id: str | None,
) -> None:  # fmt: skip
    bedrock.add_response("apply_guardrail", INSULT_BLOCKED, apply_guardrail("INPUT", "you are worthless"))
    body = {"content": "you are worthless"}
    if client_message_id is not None:
        body["client_message_id"] = client_message_id
    calls.clear()

    reply = api.call(MESSAGES, alice, body, session_id=session_id)

    assert reply.status == 422
    assert reply.body["error"]["code"] == "content_blocked"
    assert "worthless" not in str(reply.body)
    bedrock.assert_no_pending_responses()
    assert calls.operations("bedrock-runtime") == {"ApplyGuardrail": 1}  # no Converse
    # The Query, the charge with the token reservation, the reservation given back; with a
    # client_message_id the charge rides in the claim, and the claim is released too.
    assert calls.by_service().get("dynamodb", 0) <= (3 if client_message_id is None else 4)
    assert message_items(aws.table_name) == []
    assert api.call("GET /v1/sessions/{session_id}", alice, session_id=session_id).body["message_count"] == 0
    items = boto3.client("dynamodb").scan(TableName=aws.table_name)["Items"]
    assert not [item for item in items if item["sk"]["S"].startswith(TURN_PREFIX)]  # the claim was released


def test_a_blocked_answer_is_201_with_the_refusal_text_marked_moderated_and_stored_so(
    bedrock: Stubber, api: InProcessApi, alice: str, session_id: str, aws: Any
) -> None:
    bedrock.add_response("apply_guardrail", PASSED, apply_guardrail("INPUT", "tell me a secret"))
    replaced = converse_reply("Sorry, the model cannot answer this.", "guardrail_intervened",
                              converse_trace(output_action="BLOCKED"))  # fmt: skip
    bedrock.add_response("converse", replaced, converse_with("tell me a secret"))

    reply = api.call(MESSAGES, alice, {"content": "tell me a secret"}, session_id=session_id)

    assert reply.status == 201, reply.body
    assert reply.body["assistant_message"]["content"] == REFUSAL
    assert reply.body["assistant_message"]["moderated"] is True
    assert "moderated" not in reply.body["user_message"]
    reset_caches()  # another container: what the table holds, read again
    listed = history(api, alice, session_id)
    assert listed == [reply.body["user_message"], reply.body["assistant_message"]]
    answer_item = next(item for item in message_items(aws.table_name) if item["role"]["S"] == "assistant")
    assert answer_item["moderated"] == {"BOOL": True}


def test_an_idempotent_repeat_of_a_moderated_turn_replays_its_mark(
    bedrock: Stubber, api: InProcessApi, alice: str, session_id: str
) -> None:
    body = {"content": "tell me a secret", "client_message_id": "9b2f6f0e-8a43-4c1e-9d7a-3f5b2f9e6a11"}
    bedrock.add_response("apply_guardrail", PASSED, apply_guardrail("INPUT", "tell me a secret"))
    replaced = converse_reply("blocked", "guardrail_intervened", converse_trace(output_action="BLOCKED"))
    bedrock.add_response("converse", replaced)
    first = api.call(MESSAGES, alice, body, session_id=session_id)

    again = api.call(MESSAGES, alice, body, session_id=session_id)

    assert first.status == 201, first.body
    assert again.status == 201
    assert again.body == first.body
    assert again.body["assistant_message"]["moderated"] is True
    bedrock.assert_no_pending_responses()  # the repeat asked neither the guardrail nor the model


def test_anonymised_names_are_what_the_model_sees_and_what_is_stored(
    bedrock: Stubber, api: InProcessApi, alice: str, session_id: str
) -> None:
    bedrock.add_response("apply_guardrail", NAMES_ANONYMISED, apply_guardrail("INPUT", WITH_NAMES))
    bedrock.add_response("converse", converse_reply("Nice to meet you."), converse_with(ANONYMISED))

    reply = api.call(MESSAGES, alice, {"content": WITH_NAMES}, session_id=session_id)

    assert reply.status == 201, reply.body
    assert reply.body["user_message"]["content"] == ANONYMISED
    assert [message["content"] for message in history(api, alice, session_id)] == [ANONYMISED, "Nice to meet you."]
    assert "moderated" not in reply.body["assistant_message"]


def test_a_bedrock_turn_makes_one_apply_guardrail_and_one_converse_call(
    bedrock: Stubber, api: InProcessApi, alice: str, session_id: str, calls: AwsCalls
) -> None:
    for turn in range(3):  # warm: the container has seen the session
        bedrock.add_response("apply_guardrail", PASSED)
        bedrock.add_response("converse", converse_reply(f"answer {turn}"))
        api.call(MESSAGES, alice, {"content": f"question {turn}"}, session_id=session_id)
    bedrock.add_response("apply_guardrail", PASSED, apply_guardrail("INPUT", "and now?"))
    bedrock.add_response("converse", converse_reply("here you go"))
    calls.clear()

    assert api.call(MESSAGES, alice, {"content": "and now?"}, session_id=session_id).status == 201

    counts = calls.by_service()
    print(f"bedrock moderated turn: {counts} {calls.operations('bedrock-runtime')}")
    assert calls.operations("bedrock-runtime") == {"ApplyGuardrail": 1, "Converse": 1}
    assert counts.get("dynamodb", 0) <= 3
    assert counts.get("kms", 0) == counts.get("secrets-manager", 0) == 0


def test_a_moderated_mark_added_in_the_table_makes_the_answer_unreadable_not_moderated(
    bedrock: Stubber, api: InProcessApi, alice: str, session_id: str, aws: Any
) -> None:
    bedrock.add_response("apply_guardrail", PASSED)
    bedrock.add_response("converse", converse_reply("an ordinary answer"))
    assert api.call(MESSAGES, alice, {"content": "hello"}, session_id=session_id).status == 201
    # Given write access to the table: the ordinary answer is marked as moderated
    answer_item = next(item for item in message_items(aws.table_name) if item["role"]["S"] == "assistant")
    boto3.client("dynamodb").put_item(TableName=aws.table_name, Item={**answer_item, "moderated": {"BOOL": True}})

    shown = history(api, alice, session_id)[1]

    assert shown["unreadable"] is True
    assert shown["content"] == ""
    assert "moderated" not in shown


# ------------------------------------------------------------------ OpenAI-compatible provider
def test_an_openai_answer_the_guardrail_blocks_is_the_refusal_text_after_two_guardrail_calls(
    openai: OpenAiServer, runtime: Stubber, api: InProcessApi, alice: str, session_id: str, calls: AwsCalls
) -> None:
    for turn in range(3):  # warm: the API key and the data key are cached
        runtime.add_response("apply_guardrail", PASSED)
        runtime.add_response("apply_guardrail", PASSED)
        api.call(MESSAGES, alice, {"content": f"question {turn}"}, session_id=session_id)
    openai.script.append(Scripted(body=completion("buy ACME shares now")))
    runtime.add_response("apply_guardrail", PASSED, apply_guardrail("INPUT", "what should I buy?"))
    runtime.add_response("apply_guardrail", DENIED_TOPIC_IN_ANSWER, apply_guardrail("OUTPUT", "buy ACME shares now"))
    calls.clear()
    requests_before = len(openai.requests)

    reply = api.call(MESSAGES, alice, {"content": "what should I buy?"}, session_id=session_id)

    counts, guardrail_calls = calls.by_service(), calls.operations("bedrock-runtime")
    print(f"openai moderated turn: {counts} model requests: {len(openai.requests) - requests_before}")
    assert reply.status == 201, reply.body
    assert reply.body["assistant_message"]["content"] == REFUSAL
    assert reply.body["assistant_message"]["moderated"] is True
    assert history(api, alice, session_id)[-1] == reply.body["assistant_message"]
    assert guardrail_calls == {"ApplyGuardrail": 2}
    assert len(openai.requests) - requests_before == 1
    assert counts.get("dynamodb", 0) <= 3
    assert counts.get("kms", 0) == counts.get("secrets-manager", 0) == 0


def test_an_openai_turn_with_a_blocked_message_sends_nothing_to_the_model(
    openai: OpenAiServer, runtime: Stubber, api: InProcessApi, alice: str, session_id: str, aws: Any
) -> None:
    runtime.add_response("apply_guardrail", INSULT_BLOCKED, apply_guardrail("INPUT", "you are worthless"))

    reply = api.call(MESSAGES, alice, {"content": "you are worthless"}, session_id=session_id)

    assert reply.status == 422
    assert reply.body["error"]["code"] == "content_blocked"
    assert openai.requests == []
    assert message_items(aws.table_name) == []


def test_names_in_an_openai_answer_are_stored_anonymised(
    openai: OpenAiServer, runtime: Stubber, api: InProcessApi, alice: str, session_id: str
) -> None:
    openai.script.append(Scripted(body=completion(WITH_NAMES)))
    runtime.add_response("apply_guardrail", PASSED)
    runtime.add_response("apply_guardrail", NAMES_ANONYMISED, apply_guardrail("OUTPUT", WITH_NAMES))

    reply = api.call(MESSAGES, alice, {"content": "who are you?"}, session_id=session_id)

    assert reply.status == 201, reply.body
    assert reply.body["assistant_message"]["content"] == ANONYMISED
    assert "moderated" not in reply.body["assistant_message"]
    assert history(api, alice, session_id)[-1]["content"] == ANONYMISED
