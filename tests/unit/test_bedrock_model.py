"""The Bedrock Converse provider at its boundary, with botocore's Stubber (Bedrock is not in moto)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.stub import ANY, Stubber

from chat.model_providers import DEFAULT_SYSTEM_PROMPT, BedrockConverseModel, ChatMessage
from chatbot_security.errors import ModelProviderError, ModelTimeoutError
from chatbot_security.settings import Settings


@pytest.fixture
def runtime() -> Any:
    return boto3.client("bedrock-runtime", region_name="eu-west-1")


def reply_of(text: str) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15},
        "metrics": {"latencyMs": 100},
    }


def model(runtime: Any, **env: str) -> BedrockConverseModel:
    settings = Settings.model_validate({"MODEL_PROVIDER": "bedrock", "MODEL_ID": "test-model", **env})
    return BedrockConverseModel(settings, runtime=lambda: runtime)


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
        stub.add_response("converse", reply_of("hello"), expected)
        assert model(runtime, MODEL_MAX_TOKENS="256").reply(history, "now") == "hello"


def test_guardrail_is_passed_when_configured(runtime: Any) -> None:
    with Stubber(runtime) as stub:
        stub.add_response(
            "converse",
            reply_of("blocked by policy"),
            {"modelId": ANY, "system": ANY, "messages": ANY, "inferenceConfig": ANY,
             "guardrailConfig": {"guardrailIdentifier": "gr-1", "guardrailVersion": "3"}},
        )  # fmt: skip
        text = model(runtime, BEDROCK_GUARDRAIL_ID="gr-1", BEDROCK_GUARDRAIL_VERSION="3").reply([], "x")
        assert text == "blocked by policy"


def test_throttling_is_a_502(runtime: Any) -> None:
    with Stubber(runtime) as stub:
        stub.add_client_error("converse", "ThrottlingException", http_status_code=429)
        with pytest.raises(ModelProviderError):
            model(runtime).reply([], "x")


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
        BedrockConverseModel(settings, runtime=TimingOut).reply([], "x")


def test_empty_answer_is_a_502(runtime: Any) -> None:
    with Stubber(runtime) as stub:
        stub.add_response("converse", reply_of(""))
        with pytest.raises(ModelProviderError):
            model(runtime).reply([], "x")


def test_history_is_trimmed_to_alternating_turns(runtime: Any) -> None:
    history = [ChatMessage("assistant", "orphan"), ChatMessage("user", "q"), ChatMessage("assistant", "a"),
               ChatMessage("user", "unanswered")]  # fmt: skip
    with Stubber(runtime) as stub:
        stub.add_response(
            "converse",
            reply_of("ok"),
            {"modelId": ANY, "system": ANY, "inferenceConfig": ANY, "messages": [
                {"role": "user", "content": [{"text": "q"}]},
                {"role": "assistant", "content": [{"text": "a"}]},
                {"role": "user", "content": [{"text": "now"}]},
            ]},
        )  # fmt: skip
        assert model(runtime).reply(history, "now") == "ok"
