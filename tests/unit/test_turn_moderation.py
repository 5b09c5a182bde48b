"""Moderation inside the turn engine, on in-memory fakes: a refused message stores nothing and reaches no
model, the anonymised text is what the model sees and what is stored, a replaced answer becomes the
refusal text, and every moderation call is bounded by what is left of the turn."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from chatbot_security.conversation.errors import ContentBlockedError, ModelTimeoutError
from chatbot_security.conversation.fake_guardrail import BLOCK_ANSWER, BLOCK_QUESTION, FakeGuardrail
from chatbot_security.conversation.model_providers import ChatMessage, ModelAnswer
from chatbot_security.conversation.models import MessageRequest
from chatbot_security.identity.principal import Principal
from chatbot_security.platform.settings import Settings
from tools.fakes import InMemorySessionStore, in_memory_conversations

ISSUER = "https://issuer.example.test"
ALICE = Principal(kind="user", subject="alice", issuer=ISSUER)
REFUSAL = "That answer was withheld."


class RecordingModel:
    """Answers with a fixed text (or the question) and remembers what it was shown."""

    history_window = 20

    def __init__(self, answer: str | None = None, *, moderated: bool = False) -> None:
        self.answer, self.moderated = answer, moderated
        self.seen: list[str] = []

    def reply(self, history: Sequence[ChatMessage], user_message: str) -> ModelAnswer:
        self.seen.append(user_message)
        return ModelAnswer(self.answer or user_message, 3, 2, moderated=self.moderated)


class RecordingModerator:
    """Lets everything through and remembers the time it was given for each check."""

    def __init__(self) -> None:
        self.time_left: list[float | None] = []

    def check_input(self, text: str, time_left: float | None = None) -> str:
        self.time_left.append(time_left)
        return text

    def check_output(self, text: str, time_left: float | None = None) -> tuple[str, bool]:
        self.time_left.append(time_left)
        return text, False


def settings(**env: str) -> Settings:
    return Settings.model_validate({"OIDC_ISSUER": ISSUER, "MODERATION_REFUSAL_TEXT": REFUSAL, **env})


def request(content: str, client_message_id: str | None = None) -> MessageRequest:
    return MessageRequest.model_validate({"content": content, "client_message_id": client_message_id})


def moderated_service(model: RecordingModel, **overrides: Any) -> Any:
    return in_memory_conversations(model, settings(), moderator=FakeGuardrail(REFUSAL), **overrides)


def test_a_refused_message_stores_nothing_releases_its_claim_and_reaches_no_model() -> None:
    model, store = RecordingModel(), InMemorySessionStore()
    service = moderated_service(model, store=store)
    session_id = service.create_session(ALICE).session_id
    client_message_id = str(uuid.uuid4())

    with pytest.raises(ContentBlockedError) as refused:
        service.post_message(ALICE, session_id, request(f"{BLOCK_QUESTION} now", client_message_id))

    assert (refused.value.status, refused.value.code) == (422, "content_blocked")
    assert model.seen == []
    assert store.message_items.get(session_id, {}) == {}
    assert store.sessions[session_id].message_count == 0
    assert (session_id, client_message_id) not in store.turns  # released: the id may carry another message


def test_the_model_sees_and_the_store_keeps_the_anonymised_message() -> None:
    model = RecordingModel(answer="noted")
    service = moderated_service(model)
    session_id = service.create_session(ALICE).session_id

    turn = service.post_message(ALICE, session_id, request("Jane Doe lives at 221B Baker Street"))

    assert model.seen == ["{NAME} lives at {ADDRESS}"]
    assert turn.user_message.content == "{NAME} lives at {ADDRESS}"
    listed = service.list_messages(ALICE, session_id, 10, None).messages
    assert [message.content for message in listed] == ["{NAME} lives at {ADDRESS}", "noted"]


def test_an_answer_moderation_replaces_is_stored_and_returned_as_the_refusal_text() -> None:
    service = moderated_service(RecordingModel(answer=f"here: {BLOCK_ANSWER}"))
    session_id = service.create_session(ALICE).session_id

    turn = service.post_message(ALICE, session_id, request("tell me"))

    assert turn.assistant_message.content == REFUSAL
    listed = service.list_messages(ALICE, session_id, 10, None).messages
    assert listed[1].content == REFUSAL


def test_an_answer_the_providers_guardrail_replaced_becomes_the_configured_refusal_text() -> None:
    # Converse applies the guardrail itself and returns the guardrail's own message: the turn stores the
    # configured refusal text instead, the same whatever the provider or the guardrail.
    moderator = RecordingModerator()
    model = RecordingModel(answer="Sorry, the model cannot answer this.", moderated=True)
    service = in_memory_conversations(model, settings(), moderator=moderator)
    session_id = service.create_session(ALICE).session_id

    turn = service.post_message(ALICE, session_id, request("tell me"))

    assert turn.assistant_message.content == REFUSAL
    assert len(moderator.time_left) == 1  # the input only: the provider already checked the answer


def test_names_in_an_answer_are_anonymised_before_they_are_stored() -> None:
    service = moderated_service(RecordingModel(answer="Ask John Smith"))
    session_id = service.create_session(ALICE).session_id

    turn = service.post_message(ALICE, session_id, request("who?"))

    assert turn.assistant_message.content == "Ask {NAME}"


def test_each_moderation_call_gets_what_is_left_of_the_turn() -> None:
    now = [1_000.0]

    class SlowModel(RecordingModel):
        def reply(self, history: Sequence[ChatMessage], user_message: str) -> ModelAnswer:
            now[0] += 7.5  # the model takes 7.5 s of the turn
            return super().reply(history, user_message)

    moderator = RecordingModerator()
    service = in_memory_conversations(
        SlowModel("ok"), settings(MODEL_TIMEOUT_SECONDS="25"), moderator=moderator, clock=lambda: now[0]
    )
    session_id = service.create_session(ALICE).session_id

    service.post_message(ALICE, session_id, request("hello"))

    assert moderator.time_left == [25.0, 17.5]


def test_an_answer_that_leaves_no_time_to_check_it_stores_nothing() -> None:
    # The moderator refuses to start a call without time for it: the turn is a 504, not an unchecked answer.
    now = [1_000.0]

    class TimeEater(RecordingModel):
        def reply(self, history: Sequence[ChatMessage], user_message: str) -> ModelAnswer:
            now[0] += 25
            return super().reply(history, user_message)

    class Guardrail(FakeGuardrail):
        def check_output(self, text: str, time_left: float | None = None) -> tuple[str, bool]:
            if time_left is not None and time_left < 0.5:
                raise ModelTimeoutError()
            return super().check_output(text, time_left)

    store = InMemorySessionStore()
    service = in_memory_conversations(TimeEater("late"), settings(MODEL_TIMEOUT_SECONDS="25"), store=store,
                                      moderator=Guardrail(REFUSAL), clock=lambda: now[0])  # fmt: skip
    session_id = service.create_session(ALICE).session_id

    with pytest.raises(ModelTimeoutError):
        service.post_message(ALICE, session_id, request("hello"))
    assert store.message_items.get(session_id, {}) == {}


def test_a_replaced_answer_is_marked_moderated_in_the_turn_the_listing_and_a_replay() -> None:
    service = moderated_service(RecordingModel(answer=f"here: {BLOCK_ANSWER}"))
    session_id = service.create_session(ALICE).session_id
    client_message_id = str(uuid.uuid4())

    turn = service.post_message(ALICE, session_id, request("tell me", client_message_id))
    replayed = service.post_message(ALICE, session_id, request("tell me", client_message_id))
    listed = service.list_messages(ALICE, session_id, 10, None).messages

    assert turn.assistant_message.moderated
    assert replayed == turn
    assert [message.model_dump() for message in listed] == [
        turn.user_message.model_dump(),
        turn.assistant_message.model_dump(),
    ]
    assert turn.assistant_message.model_dump()["moderated"] is True
    assert "moderated" not in turn.user_message.model_dump()


def test_an_ordinary_answer_carries_no_mark() -> None:
    service = moderated_service(RecordingModel(answer="fine"))
    session_id = service.create_session(ALICE).session_id

    shown = service.post_message(ALICE, session_id, request("hello")).assistant_message.model_dump()

    assert "moderated" not in shown
    assert "interrupted" not in shown


def test_an_answer_cut_short_is_stored_marked_interrupted() -> None:
    class CutShort(RecordingModel):
        def reply(self, history: Sequence[ChatMessage], user_message: str) -> ModelAnswer:
            return ModelAnswer("half an ans", 3, 2, interrupted=True)

    service = moderated_service(CutShort())
    session_id = service.create_session(ALICE).session_id

    turn = service.post_message(ALICE, session_id, request("hello"))

    listed = service.list_messages(ALICE, session_id, 10, None).messages
    assert turn.assistant_message.interrupted
    assert listed[1].interrupted
    assert listed[1].content == "half an ans"
    assert not listed[1].moderated


@pytest.mark.parametrize("change", [{"moderated": True}, {"moderated": False}])
def test_a_mark_rewritten_in_the_table_makes_the_message_unreadable_not_relabelled(change: dict[str, bool]) -> None:
    store = InMemorySessionStore()
    answer = f"here: {BLOCK_ANSWER}" if change["moderated"] is False else "an ordinary answer"
    service = moderated_service(RecordingModel(answer=answer), store=store)
    session_id = service.create_session(ALICE).session_id
    service.post_message(ALICE, session_id, request("tell me"))

    stored = store.message_items[session_id][2]
    store.message_items[session_id][2] = dataclasses.replace(stored, moderated=change["moderated"])

    shown = service.list_messages(ALICE, session_id, 10, None).messages[1]
    assert shown.unreadable
    assert shown.content == ""
    assert not shown.moderated
