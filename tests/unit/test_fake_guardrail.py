"""The local fake guardrail: each outcome of moderation on documented examples, deterministically."""

from __future__ import annotations

import pytest

from chatbot_security.conversation.errors import ContentBlockedError
from chatbot_security.conversation.fake_guardrail import BLOCK_ANSWER, BLOCK_QUESTION, FakeGuardrail

REFUSAL = "Sorry, I can't share that answer."


@pytest.fixture
def fake() -> FakeGuardrail:
    return FakeGuardrail(REFUSAL)


def test_the_trigger_phrase_blocks_a_question(fake: FakeGuardrail) -> None:
    with pytest.raises(ContentBlockedError):
        fake.check_input(f"please {BLOCK_QUESTION.upper()} now")


@pytest.mark.parametrize("secret", ["my key is AKIAIOSFODNN7EXAMPLE", "Password: hunter2"])
def test_a_credential_blocks_a_question(fake: FakeGuardrail, secret: str) -> None:
    with pytest.raises(ContentBlockedError):
        fake.check_input(secret)


def test_known_names_and_the_known_address_are_anonymised(fake: FakeGuardrail) -> None:
    text = "jane doe and John Smith live at 221B Baker Street"
    assert fake.check_input(text) == "{NAME} and {NAME} live at {ADDRESS}"


def test_the_answer_trigger_passes_as_a_question_and_blocks_the_echoed_answer(fake: FakeGuardrail) -> None:
    question = fake.check_input(f"say {BLOCK_ANSWER}")
    assert question == f"say {BLOCK_ANSWER}"
    assert fake.check_output(f"You said: {question}") == (REFUSAL, True)


def test_an_ordinary_answer_is_unchanged(fake: FakeGuardrail) -> None:
    assert fake.check_output("DynamoDB is a database.") == ("DynamoDB is a database.", False)


def test_names_in_an_answer_are_anonymised_without_marking_it_moderated(fake: FakeGuardrail) -> None:
    assert fake.check_output("Hello Jane Doe") == ("Hello {NAME}", False)
