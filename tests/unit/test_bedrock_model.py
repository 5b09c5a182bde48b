"""The Bedrock Converse provider at its boundary, with botocore's Stubber (Bedrock is not in moto)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from botocore.stub import ANY, Stubber
from support.guardrail_responses import converse_reply
from support.guardrail_responses import converse_trace as guardrail_trace

from chatbot_security.conversation.errors import ContentBlockedError, ModelProviderError, ModelTimeoutError
from chatbot_security.conversation.model_providers import (
    DEFAULT_SYSTEM_PROMPT,
    GUARDRAIL_FALLBACK,
    MIN_ATTEMPT_SECONDS,
    BedrockConverseModel,
    ChatMessage,
    ModelAnswer,
    _bedrock_runtime,
    _retry_read_timeout,
)
from chatbot_security.platform.settings import Settings

#: Moderation on with guardrail gr-1 (without MODERATION=guardrail, Converse gets no guardrail).
GUARDED = {"MODERATION": "guardrail", "BEDROCK_GUARDRAIL_ID": "gr-1"}


@pytest.fixture
def runtime() -> Any:
    return boto3.client("bedrock-runtime", region_name="eu-west-1")


def model(runtime: Any, **env: str) -> BedrockConverseModel:
    settings = Settings.model_validate({"MODEL_PROVIDER": "bedrock", "MODEL_ID": "test-model", **env})
    return BedrockConverseModel(settings, runtime=lambda _timeout: runtime, sleep=lambda seconds: None)


def test_converse_gets_the_system_prompt_history_and_token_cap(runtime: Any) -> None:
    history = [ChatMessage("user", "earlier"), ChatMessage("assistant", "answer")]
    expected = {
        "modelId": "test-model",
        "system": [{"text": DEFAULT_SYSTEM_PROMPT}],
        "messages": [
            {"role": "user", "content": [{"text": "earlier"}]},
            {"role": "assistant", "content": [{"text": "answer"}]},
            {"role": "user", "content": [{"text": "now"}]},
        ],
        "inferenceConfig": {"maxTokens": 256},
    }
    with Stubber(runtime) as stub:
        stub.add_response("converse", converse_reply("hello"), expected)
        assert model(runtime, MODEL_MAX_TOKENS="256").reply(history, "now").text == "hello"


def test_guardrail_is_passed_when_configured(runtime: Any) -> None:
    with Stubber(runtime) as stub:
        stub.add_response(
            "converse",
            converse_reply("blocked by policy"),
            {"modelId": ANY, "system": ANY, "messages": ANY, "inferenceConfig": ANY,
             "guardrailConfig": {"guardrailIdentifier": "gr-1", "guardrailVersion": "3", "trace": "enabled"}},
        )  # fmt: skip
        text = model(runtime, **GUARDED, BEDROCK_GUARDRAIL_VERSION="3").reply([], "x").text
        assert text == "blocked by policy"


def test_the_guardrail_is_not_passed_when_moderation_is_off(runtime: Any) -> None:
    # A guardrail id left over from another configuration must not moderate silently what MODERATION=off says
    # is not moderated (and whose answers would then never be marked).
    bedrock = model(runtime, MODERATION="off", BEDROCK_GUARDRAIL_ID="gr-1", BEDROCK_GUARDRAIL_VERSION="3")

    assert "guardrailConfig" not in bedrock.request([], "x")
    assert "guardrailConfig" not in bedrock.request([], "x", streaming=True)


def test_an_answer_the_guardrail_only_anonymised_is_not_moderated(runtime: Any) -> None:
    anonymised = {**converse_reply("Ask {NAME} at the front desk."), "stopReason": "guardrail_intervened",
                  "trace": guardrail_trace(output_action="ANONYMIZED")}  # fmt: skip
    with Stubber(runtime) as stub:
        stub.add_response("converse", anonymised)
        answer = model(runtime, **GUARDED).reply([], "x")
    assert answer == ModelAnswer("Ask {NAME} at the front desk.", 10, 5, moderated=False)


def test_the_system_prompt_comes_from_configuration(runtime: Any) -> None:
    with Stubber(runtime) as stub:
        stub.add_response(
            "converse",
            converse_reply("bonjour"),
            {"modelId": ANY, "messages": ANY, "inferenceConfig": ANY, "system": [{"text": "Answer in French."}]},
        )
        assert model(runtime, MODEL_SYSTEM_PROMPT="Answer in French.").reply([], "hi").text == "bonjour"


def test_throttling_is_retried_within_the_time_budget(runtime: Any) -> None:
    with Stubber(runtime) as stub:
        stub.add_client_error("converse", "ThrottlingException", http_status_code=429)
        stub.add_response("converse", converse_reply("after a retry"))
        assert model(runtime).reply([], "x").text == "after a retry"
        stub.assert_no_pending_responses()


def test_persistent_throttling_is_a_502(runtime: Any) -> None:
    with Stubber(runtime) as stub:
        for _ in range(3):
            stub.add_client_error("converse", "ThrottlingException", http_status_code=429)
        with pytest.raises(ModelProviderError):
            model(runtime).reply([], "x")
        stub.assert_no_pending_responses()


def test_a_validation_error_is_a_502_without_retry(runtime: Any) -> None:
    with Stubber(runtime) as stub:
        stub.add_client_error("converse", "ValidationException", http_status_code=400)
        stub.add_response("converse", converse_reply("never asked"))
        with pytest.raises(ModelProviderError):
            model(runtime).reply([], "x")


def test_guardrail_intervention_returns_the_guardrails_message(runtime: Any) -> None:
    blocked = {**converse_reply("Sorry, the model cannot answer this."), "stopReason": "guardrail_intervened"}
    with Stubber(runtime) as stub:
        stub.add_response("converse", blocked)
        text = model(runtime, **GUARDED, BEDROCK_GUARDRAIL_VERSION="3").reply([], "x").text
    assert text == "Sorry, the model cannot answer this."


def test_guardrail_intervention_without_a_message_gets_a_fixed_refusal(runtime: Any) -> None:
    blocked = {**converse_reply(""), "stopReason": "guardrail_intervened"}
    with Stubber(runtime) as stub:
        stub.add_response("converse", blocked)
        assert model(runtime, **GUARDED).reply([], "x").text == GUARDRAIL_FALLBACK


def test_a_connection_failure_is_retried() -> None:
    class FlakyRuntime:
        calls = 0

        def converse(self, **kwargs: Any) -> dict[str, Any]:
            self.calls += 1
            if self.calls == 1:
                raise EndpointConnectionError(endpoint_url="https://bedrock-runtime.eu-west-1.amazonaws.com")
            return converse_reply("connected")

    runtime = FlakyRuntime()
    settings = Settings.model_validate({"MODEL_PROVIDER": "bedrock"})
    assert (
        BedrockConverseModel(settings, runtime=lambda _timeout: runtime, sleep=lambda s: None).reply([], "x").text
        == "connected"
    )
    assert runtime.calls == 2


def test_model_timeout_is_a_504(runtime: Any) -> None:
    with Stubber(runtime) as stub:
        stub.add_client_error("converse", "ModelTimeoutException", http_status_code=408)
        with pytest.raises(ModelTimeoutError):
            model(runtime).reply([], "x")


def test_read_timeout_is_a_504() -> None:
    class TimingOut:
        def converse(self, **kwargs: Any) -> None:
            raise ReadTimeoutError(endpoint_url="https://bedrock-runtime.eu-west-1.amazonaws.com")

    settings = Settings.model_validate({"MODEL_PROVIDER": "bedrock"})
    with pytest.raises(ModelTimeoutError):
        BedrockConverseModel(settings, runtime=lambda _timeout: TimingOut()).reply([], "x")


def test_empty_answer_is_a_502(runtime: Any) -> None:
    with Stubber(runtime) as stub:
        stub.add_response("converse", converse_reply(""))
        with pytest.raises(ModelProviderError):
            model(runtime).reply([], "x")


def test_history_is_trimmed_to_alternating_turns(runtime: Any) -> None:
    history = [ChatMessage("assistant", "orphan"), ChatMessage("user", "q"), ChatMessage("assistant", "a"),
               ChatMessage("user", "unanswered")]  # fmt: skip
    with Stubber(runtime) as stub:
        stub.add_response(
            "converse",
            converse_reply("ok"),
            {"modelId": ANY, "system": ANY, "inferenceConfig": ANY, "messages": [
                {"role": "user", "content": [{"text": "q"}]},
                {"role": "assistant", "content": [{"text": "a"}]},
                {"role": "user", "content": [{"text": "now"}]},
            ]},
        )  # fmt: skip
        assert model(runtime).reply(history, "now").text == "ok"


class SlowBedrock:
    """A Converse double on an injected clock: each call takes ``durations[n]`` seconds, answers with
    ``outcomes[n]`` and, like botocore, gives up with ReadTimeoutError once its read timeout is spent."""

    def __init__(self, durations: list[float], outcomes: list[Any]) -> None:
        self.now = 0.0
        self.read_timeouts: list[float] = []
        self._durations = durations
        self._outcomes = outcomes

    def clock(self) -> float:
        return self.now

    def client(self, read_timeout: float) -> SlowBedrock:
        self.read_timeouts.append(read_timeout)
        return self

    def converse(self, **kwargs: Any) -> dict[str, Any]:
        duration, outcome = self._durations.pop(0), self._outcomes.pop(0)
        read_timeout = self.read_timeouts[-1]
        if duration > read_timeout:
            self.now += read_timeout
            raise ReadTimeoutError(endpoint_url="https://bedrock-runtime.eu-west-1.amazonaws.com")
        self.now += duration
        if isinstance(outcome, Exception):
            raise outcome
        return dict(outcome)


def _unavailable() -> ClientError:
    return ClientError({"Error": {"Code": "ServiceUnavailableException", "Message": "busy"}}, "Converse")


def _slow_model(bedrock: SlowBedrock, timeout: str = "25") -> BedrockConverseModel:
    settings = Settings.model_validate({"MODEL_PROVIDER": "bedrock", "MODEL_TIMEOUT_SECONDS": timeout})
    return BedrockConverseModel(settings, runtime=bedrock.client, clock=bedrock.clock, sleep=lambda s: None)


def test_the_first_attempt_reads_for_the_whole_budget() -> None:
    bedrock = SlowBedrock([3.0], [converse_reply("hi")])
    assert _slow_model(bedrock).reply([], "x").text == "hi"
    assert bedrock.read_timeouts == [25.0]


def test_a_late_retry_reads_only_for_what_is_left_of_the_budget() -> None:
    bedrock = SlowBedrock([20.0, 1.0], [_unavailable(), converse_reply("hi")])
    assert _slow_model(bedrock).reply([], "x").text == "hi"
    first, retry = bedrock.read_timeouts
    assert first == 25.0
    assert retry <= 25.0 - 20.0


def test_a_slow_late_retry_is_a_504_within_the_budget_not_a_function_timeout() -> None:
    # The function has 29 s and the model 25: a retry reading for the full 25 s would end at 45 s, killed by
    # Lambda (API Gateway then answers a bare 5xx). Reading only for what is left, it ends as a 504 in time.
    bedrock = SlowBedrock([20.0, 60.0], [_unavailable(), converse_reply("too late")])
    with pytest.raises(ModelTimeoutError):
        _slow_model(bedrock).reply([], "x")
    assert bedrock.now <= 25.0


def test_no_retry_starts_with_less_than_the_minimum_attempt_time_left() -> None:
    bedrock = SlowBedrock([24.5], [_unavailable()])
    with pytest.raises(ModelProviderError):
        _slow_model(bedrock).reply([], "x")
    assert bedrock.read_timeouts == [25.0]


def test_the_retry_client_is_built_with_the_remaining_budget_as_read_timeout() -> None:
    assert _retry_read_timeout(5.7) == 5.0
    assert _retry_read_timeout(1.2) == MIN_ATTEMPT_SECONDS
    assert _bedrock_runtime(5.0).meta.config.read_timeout == 5.0
    assert _bedrock_runtime(5.0).meta.config.connect_timeout <= 5.0


def test_an_answer_carries_the_token_usage_converse_reports(runtime: Any) -> None:
    response = {**converse_reply("hello"), "usage": {"inputTokens": 42, "outputTokens": 7, "totalTokens": 49}}
    with Stubber(runtime) as stub:
        stub.add_response("converse", response)
        answer = model(runtime).reply([], "x")
    assert answer == ModelAnswer("hello", input_tokens=42, output_tokens=7, moderated=False)


def test_an_output_the_guardrail_replaced_is_moderated(runtime: Any) -> None:
    blocked = {**converse_reply("Sorry, the model cannot answer this."), "stopReason": "guardrail_intervened",
               "trace": guardrail_trace(output_action="BLOCKED")}  # fmt: skip
    with Stubber(runtime) as stub:
        stub.add_response("converse", blocked)
        answer = model(runtime, **GUARDED).reply([], "x")
    assert answer.moderated
    assert answer.text == "Sorry, the model cannot answer this."
    assert (answer.input_tokens, answer.output_tokens) == (10, 5)


def test_an_input_the_guardrail_blocked_is_content_blocked(runtime: Any) -> None:
    blocked = {**converse_reply("Sorry, the model cannot answer this."), "stopReason": "guardrail_intervened",
               "trace": guardrail_trace(input_action="BLOCKED")}  # fmt: skip
    with Stubber(runtime) as stub:
        stub.add_response("converse", blocked)
        with pytest.raises(ContentBlockedError) as raised:
            model(runtime, **GUARDED).reply([], "x")
    assert (raised.value.status, raised.value.code) == (422, "content_blocked")


def test_an_input_the_guardrail_only_anonymised_is_not_blocked(runtime: Any) -> None:
    replaced = {**converse_reply("Sorry, the model cannot answer this."), "stopReason": "guardrail_intervened",
                "trace": guardrail_trace(input_action="ANONYMIZED", output_action="BLOCKED")}  # fmt: skip
    with Stubber(runtime) as stub:
        stub.add_response("converse", replaced)
        assert model(runtime, **GUARDED).reply([], "x").moderated
