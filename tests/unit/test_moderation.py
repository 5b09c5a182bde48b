"""Moderation through ApplyGuardrail, at the SDK boundary (botocore Stubber with the API's response shapes)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.stub import Stubber
from support.guardrail_responses import (
    ACCESS_KEY_BLOCKED_WITH_A_NAME,
    DENIED_TOPIC_IN_ANSWER,
    INSULT_BLOCKED,
    METRICS,
    NAMES_ANONYMISED,
    PASSED,
)

from chatbot_security.conversation.errors import (
    ContentBlockedError,
    ModelProviderError,
    ModelTimeoutError,
    ServiceUnavailableError,
)
from chatbot_security.conversation.fake_guardrail import FakeGuardrail
from chatbot_security.conversation.moderation import (
    BedrockGuardrail,
    NoModeration,
    build_moderator,
    read_verdict,
)
from chatbot_security.platform.settings import Settings

GUARDRAIL = {"MODERATION": "guardrail", "BEDROCK_GUARDRAIL_ID": "abc123def456", "BEDROCK_GUARDRAIL_VERSION": "3"}
REFUSAL = "Sorry, I can't share that answer."


@pytest.fixture
def runtime() -> Any:
    return boto3.client("bedrock-runtime", region_name="eu-west-1")


def guardrail(runtime: Any, **env: str) -> BedrockGuardrail:
    settings = Settings.model_validate({**GUARDRAIL, **env})
    return BedrockGuardrail(settings, runtime=lambda _timeout: runtime)


def expected_call(source: str, text: str) -> dict[str, Any]:
    return {
        "guardrailIdentifier": "abc123def456",
        "guardrailVersion": "3",
        "source": source,
        "content": [{"text": {"text": text}}],
    }


# ------------------------------------------------------------------ the user's message


def test_a_message_the_guardrail_lets_through_is_sent_unchanged(runtime: Any) -> None:
    with Stubber(runtime) as stub:
        stub.add_response("apply_guardrail", PASSED, expected_call("INPUT", "What is DynamoDB?"))
        assert guardrail(runtime).check_input("What is DynamoDB?") == "What is DynamoDB?"
        stub.assert_no_pending_responses()


def test_a_blocked_message_is_refused_as_content_blocked(runtime: Any) -> None:
    with Stubber(runtime) as stub:
        stub.add_response("apply_guardrail", INSULT_BLOCKED, expected_call("INPUT", "you are an idiot"))
        with pytest.raises(ContentBlockedError) as refused:
            guardrail(runtime).check_input("you are an idiot")
    assert (refused.value.status, refused.value.code) == (422, "content_blocked")
    assert "idiot" not in refused.value.message


def test_names_and_addresses_in_a_message_are_anonymised(runtime: Any) -> None:
    text = "My name is Jane Doe and I live at 12 Rue de la Paix."
    with Stubber(runtime) as stub:
        stub.add_response("apply_guardrail", NAMES_ANONYMISED, expected_call("INPUT", text))
        assert guardrail(runtime).check_input(text) == "My name is {NAME} and I live at {ADDRESS}."


def test_a_credential_blocks_the_message_even_when_a_name_was_anonymised(runtime: Any) -> None:
    with Stubber(runtime) as stub:
        stub.add_response("apply_guardrail", ACCESS_KEY_BLOCKED_WITH_A_NAME)
        with pytest.raises(ContentBlockedError):
            guardrail(runtime).check_input("Jane Doe's key is AKIAIOSFODNN7EXAMPLE")


# ------------------------------------------------------------------ the model's answer


def test_a_blocked_answer_becomes_the_refusal_text_marked_moderated(runtime: Any) -> None:
    with Stubber(runtime) as stub:
        stub.add_response("apply_guardrail", DENIED_TOPIC_IN_ANSWER, expected_call("OUTPUT", "Buy these shares."))
        assert guardrail(runtime).check_output("Buy these shares.") == (REFUSAL, True)


def test_the_refusal_text_is_the_configured_one(runtime: Any) -> None:
    with Stubber(runtime) as stub:
        stub.add_response("apply_guardrail", INSULT_BLOCKED)
        moderator = guardrail(runtime, MODERATION_REFUSAL_TEXT="Not here.")
        assert moderator.check_output("rude") == ("Not here.", True)


def test_names_in_an_answer_are_anonymised_without_marking_it_moderated(runtime: Any) -> None:
    with Stubber(runtime) as stub:
        stub.add_response("apply_guardrail", NAMES_ANONYMISED, expected_call("OUTPUT", "Jane Doe, 12 Rue de la Paix"))
        text, moderated = guardrail(runtime).check_output("Jane Doe, 12 Rue de la Paix")
    assert text == "My name is {NAME} and I live at {ADDRESS}."
    assert moderated is False


def test_an_answer_the_guardrail_lets_through_is_unchanged(runtime: Any) -> None:
    with Stubber(runtime) as stub:
        stub.add_response("apply_guardrail", PASSED, expected_call("OUTPUT", "DynamoDB is a database."))
        assert guardrail(runtime).check_output("DynamoDB is a database.") == ("DynamoDB is a database.", False)


# ------------------------------------------------------------------ failing closed


def test_an_intervention_for_a_reason_this_code_does_not_know_is_a_block() -> None:
    response = {**INSULT_BLOCKED, "assessments": [{"invocationMetrics": METRICS}]}
    assert read_verdict(response, "text").blocked


def test_an_anonymisation_without_its_text_is_a_block() -> None:
    response = {**NAMES_ANONYMISED, "outputs": []}
    assert read_verdict(response, "Jane Doe").blocked


def test_a_guardrail_that_refuses_the_call_fails_the_turn(runtime: Any) -> None:
    with Stubber(runtime) as stub:
        stub.add_client_error("apply_guardrail", "AccessDeniedException", http_status_code=403)
        with pytest.raises(ModelProviderError):
            guardrail(runtime).check_input("hello")


def test_a_throttled_guardrail_is_a_temporary_failure(runtime: Any) -> None:
    with Stubber(runtime) as stub:
        stub.add_client_error("apply_guardrail", "ThrottlingException", http_status_code=429)
        with pytest.raises(ServiceUnavailableError):
            guardrail(runtime).check_output("hello")


def test_a_guardrail_that_does_not_answer_in_time_is_a_timeout(runtime: Any) -> None:
    def time_out(**kwargs: Any) -> None:
        raise ReadTimeoutError(endpoint_url="https://bedrock-runtime.eu-west-1.amazonaws.com")

    runtime.meta.events.register("before-send.bedrock-runtime.ApplyGuardrail", time_out)
    with pytest.raises(ModelTimeoutError):
        guardrail(runtime).check_input("hello")


def test_no_call_is_made_when_the_turn_has_no_time_left() -> None:
    calls: list[float] = []

    def runtime(timeout: float) -> Any:
        calls.append(timeout)
        raise AssertionError("no client should be needed")

    moderator = BedrockGuardrail(Settings.model_validate(GUARDRAIL), runtime=runtime)
    with pytest.raises(ModelTimeoutError):
        moderator.check_input("hello", time_left=0.2)
    assert calls == []


def test_a_call_never_reads_longer_than_the_turn_has_left(runtime: Any) -> None:
    timeouts: list[float] = []

    def runtime_for(timeout: float) -> Any:
        timeouts.append(timeout)
        return runtime

    moderator = BedrockGuardrail(Settings.model_validate(GUARDRAIL), runtime=runtime_for)
    with Stubber(runtime) as stub:
        stub.add_response("apply_guardrail", PASSED)
        moderator.check_input("hello", time_left=2.7)
    assert timeouts == [2.0]


def test_the_client_is_built_on_the_first_check_not_before() -> None:
    built: list[float] = []
    BedrockGuardrail(Settings.model_validate(GUARDRAIL), runtime=built.append)
    assert built == []


# ------------------------------------------------------------------ which moderator


def test_moderation_off_changes_nothing() -> None:
    moderator = build_moderator(Settings.model_validate({}))
    assert isinstance(moderator, NoModeration)
    assert moderator.check_input("Jane Doe, fake-guardrail:block-question") == "Jane Doe, fake-guardrail:block-question"
    assert moderator.check_output("anything") == ("anything", False)


def test_moderation_on_uses_the_configured_bedrock_guardrail() -> None:
    assert isinstance(build_moderator(Settings.model_validate(GUARDRAIL)), BedrockGuardrail)


def test_with_bedrock_as_the_provider_only_the_input_goes_through_apply_guardrail() -> None:
    def runtime(timeout: float) -> Any:
        raise AssertionError("Converse already applied the guardrail to the answer")

    settings = Settings.model_validate({**GUARDRAIL, "MODEL_PROVIDER": "bedrock"})
    moderator = build_moderator(settings)
    assert isinstance(moderator, BedrockGuardrail)
    moderator._runtime = runtime
    assert moderator.check_output("Jane Doe lives here") == ("Jane Doe lives here", False)


def test_the_local_fake_is_used_only_when_asked_for() -> None:
    settings = Settings.model_validate(
        {"MODERATION": "guardrail", "LOCAL_FAKE_GUARDRAIL": "true", "ALLOW_LOOPBACK_ISSUER": "true"}
    )
    assert isinstance(build_moderator(settings), FakeGuardrail)
