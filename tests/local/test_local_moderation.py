"""`chatbot-local --moderation fake`: a developer sees each outcome of moderation without AWS, through the
real handlers (the fake guardrail's triggers are documented in docs/local-development.md)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chatbot_security.conversation.fake_guardrail import BLOCK_ANSWER, BLOCK_QUESTION
from chatbot_security.platform.settings import DEFAULT_REFUSAL_TEXT
from tools.local_api import RunningApi, running_chatbot_local

pytestmark = pytest.mark.local_api


@pytest.fixture(scope="module")
def moderated_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    with running_chatbot_local(tmp_path_factory.mktemp("moderation"), arguments=["--moderation", "fake"]) as api:
        yield api


@pytest.fixture
def session(moderated_api: RunningApi) -> tuple[str, str]:
    token = moderated_api.token("alice")
    status, body, _ = moderated_api.call("POST", "/v1/sessions", token)
    assert status == 201, body
    return token, f"/v1/sessions/{body['session_id']}/messages"


def test_a_blocked_message_is_422_and_leaves_the_session_empty(
    moderated_api: RunningApi, session: tuple[str, str]
) -> None:
    token, messages = session

    status, body, _ = moderated_api.call("POST", messages, token, {"content": f"please {BLOCK_QUESTION}"})

    assert status == 422
    assert body["error"]["code"] == "content_blocked"
    assert moderated_api.call("GET", messages, token)[1]["messages"] == []


def test_a_blocked_answer_is_the_refusal_text_marked_moderated_in_the_history(
    moderated_api: RunningApi, session: tuple[str, str]
) -> None:
    token, messages = session

    status, body, _ = moderated_api.call("POST", messages, token, {"content": f"repeat {BLOCK_ANSWER}"})

    assert status == 201, body
    assert body["assistant_message"]["content"] == DEFAULT_REFUSAL_TEXT
    assert body["assistant_message"]["moderated"] is True
    assert moderated_api.call("GET", messages, token)[1]["messages"][-1] == body["assistant_message"]


def test_names_and_the_known_address_are_stored_anonymised(moderated_api: RunningApi, session: tuple[str, str]) -> None:
    token, messages = session

    status, body, _ = moderated_api.call("POST", messages, token, {"content": "Jane Doe, 221B Baker Street"})

    assert status == 201, body
    assert body["user_message"]["content"] == "{NAME}, {ADDRESS}"
    assert body["assistant_message"]["content"] == "You said: {NAME}, {ADDRESS}"
    assert "moderated" not in body["assistant_message"]
    listed = moderated_api.call("GET", messages, token)[1]["messages"]
    assert [message["content"] for message in listed] == ["{NAME}, {ADDRESS}", "You said: {NAME}, {ADDRESS}"]
