"""The OpenAI-compatible provider against a loopback fake endpoint: request shape, retries within the
time budget, failures mapped to 502/504, no redirects."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import ValidationError
from support.openai_server import OpenAiServer, Scripted, completion
from support.provider_models import openai_model as model

from chatbot_security.conversation.errors import ModelProviderError, ModelTimeoutError
from chatbot_security.conversation.model_providers import (
    DEFAULT_SYSTEM_PROMPT,
    GUARDRAIL_FALLBACK,
    ChatMessage,
    ModelAnswer,
    OpenAiCompatibleModel,
)
from chatbot_security.platform.settings import Settings


@pytest.fixture
def server() -> Iterator[OpenAiServer]:
    running = OpenAiServer().start()
    yield running
    running.stop()


def test_the_request_carries_the_system_prompt_history_token_cap_and_key(server: OpenAiServer) -> None:
    server.script.append(Scripted(body=completion("hello back")))
    history = [ChatMessage("user", "earlier"), ChatMessage("assistant", "answer")]

    assert model(server, MODEL_MAX_TOKENS="256").reply(history, "now").text == "hello back"

    sent = server.requests[0]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["Authorization"] == "Bearer sk-test-key"
    assert sent["json"] == {
        "model": "test-model",
        "messages": [
            {"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
            {"role": "user", "content": "earlier"},
            {"role": "assistant", "content": "answer"},
            {"role": "user", "content": "now"},
        ],
        "max_tokens": 256,
    }


def test_the_system_prompt_comes_from_configuration(server: OpenAiServer) -> None:
    model(server, MODEL_SYSTEM_PROMPT="You answer in French.").reply([], "hi")

    assert server.requests[0]["json"]["messages"][0] == {"role": "system", "content": "You answer in French."}


def test_throttling_is_retried_within_the_time_budget(server: OpenAiServer) -> None:
    server.script.extend([Scripted(status=429, body={"error": {}}), Scripted(body=completion("finally"))])

    assert model(server).reply([], "x").text == "finally"
    assert len(server.requests) == 2


def test_a_provider_that_keeps_failing_is_a_502_after_bounded_retries(server: OpenAiServer) -> None:
    server.script.extend(Scripted(status=503, body={"error": {}}) for _ in range(5))

    with pytest.raises(ModelProviderError):
        model(server).reply([], "x")
    assert len(server.requests) == 3


def test_a_refused_request_is_a_502_without_retry(server: OpenAiServer) -> None:
    server.script.append(Scripted(status=401, body={"error": {"message": "bad key"}}))

    with pytest.raises(ModelProviderError):
        model(server).reply([], "x")
    assert len(server.requests) == 1


def test_a_slow_provider_is_a_504(server: OpenAiServer) -> None:
    server.script.append(Scripted(body=completion("late"), delay=3))

    with pytest.raises(ModelTimeoutError):
        model(server, MODEL_TIMEOUT_SECONDS="1").reply([], "x")


def test_a_redirect_is_not_followed(server: OpenAiServer) -> None:
    server.script.append(Scripted(status=307, body={}, headers={"Location": server.base_url + "/elsewhere"}))

    with pytest.raises(ModelProviderError):
        model(server).reply([], "x")
    assert [r["path"] for r in server.requests] == ["/v1/chat/completions"]


@pytest.mark.parametrize(
    "body",
    [b"not json", {"choices": []}, {"choices": [{"message": {"content": ""}}]}, {"choices": [{"message": {}}]}],
    ids=["not-json", "no-choices", "empty", "no-content"],
)
def test_an_unusable_answer_is_a_502(server: OpenAiServer, body: object) -> None:
    server.script.append(Scripted(body=body))

    with pytest.raises(ModelProviderError):
        model(server).reply([], "x")


def test_a_filtered_answer_becomes_a_fixed_refusal(server: OpenAiServer) -> None:
    server.script.append(Scripted(body=completion("", finish_reason="content_filter")))

    assert model(server).reply([], "x").text == GUARDRAIL_FALLBACK


def test_an_unreachable_endpoint_is_a_502(server: OpenAiServer) -> None:
    unreachable = model(server)
    server.stop()

    with pytest.raises(ModelProviderError):
        unreachable.reply([], "x")


def test_model_id_is_required() -> None:
    settings = Settings.model_validate({"MODEL_PROVIDER": "openai", "OPENAI_BASE_URL": "https://llm.example.com/v1"})
    with pytest.raises(RuntimeError, match="MODEL_ID"):
        OpenAiCompatibleModel(settings, "https://llm.example.com/v1", api_key=lambda: "k")


@pytest.mark.parametrize(
    ("url", "loopback_allowed"),
    [("http://llm.example.com/v1", "true"), ("http://127.0.0.1:8000/v1", "false"), ("ftp://llm.example.com", "true"),
     ("https://user:pw@llm.example.com/v1", "false")],
)  # fmt: skip
def test_the_endpoint_must_be_https(url: str, loopback_allowed: str) -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate({"OPENAI_BASE_URL": url, "ALLOW_LOOPBACK_ISSUER": loopback_allowed})


def test_an_https_endpoint_is_accepted() -> None:
    settings = Settings.model_validate({"OPENAI_BASE_URL": "https://llm.example.com/v1"})
    assert settings.openai_base_url == "https://llm.example.com/v1"


def test_an_answer_carries_the_token_usage_the_endpoint_reports(server: OpenAiServer) -> None:
    body = {**completion("hello"), "usage": {"prompt_tokens": 31, "completion_tokens": 4, "total_tokens": 35}}
    server.script.append(Scripted(body=body))
    assert model(server).reply([], "x") == ModelAnswer("hello", input_tokens=31, output_tokens=4)


def test_an_answer_without_usage_counts_utf8_bytes_as_an_upper_bound(server: OpenAiServer) -> None:
    body = completion("héllo")
    del body["usage"]
    server.script.append(Scripted(body=body))
    answer = model(server, MODEL_SYSTEM_PROMPT="Be brief.").reply([ChatMessage("user", "earlier")], "now ✓")
    assert answer.input_tokens == len("Be brief.") + len("earlier") + len("now ✓".encode())
    assert answer.output_tokens == len("héllo".encode()) == 6


def test_a_filtered_answer_is_moderated(server: OpenAiServer) -> None:
    server.script.append(Scripted(body=completion("", finish_reason="content_filter")))
    assert model(server).reply([], "x").moderated
