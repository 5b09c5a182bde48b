"""Bedrock ConverseStream against a loopback endpoint that speaks the AWS event-stream encoding (Stubber
cannot stream events): chunks, usage, guardrail in sync mode, retries only before the first chunk, a
stall mid-answer, cancellation."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from support.bedrock_stream_server import (
    BedrockStreamServer,
    Pause,
    ScriptedStream,
    answer_events,
    event,
    exception_event,
)
from support.stream_doubles import read_then_close

from chatbot_security.conversation.errors import ContentBlockedError, ModelProviderError, ModelTimeoutError
from chatbot_security.conversation.model_providers import BedrockConverseModel, ChatMessage, ModelAnswer
from chatbot_security.platform.settings import Settings

#: Moderation on with guardrail gr-1 (without MODERATION=guardrail, Converse gets no guardrail).
GUARDED = {"MODERATION": "guardrail", "BEDROCK_GUARDRAIL_ID": "gr-1"}


@pytest.fixture
def server() -> Iterator[BedrockStreamServer]:
    running = BedrockStreamServer().start()
    yield running
    running.stop()


def model(server: BedrockStreamServer, **env: str) -> BedrockConverseModel:
    settings = Settings.model_validate({"MODEL_PROVIDER": "bedrock", "MODEL_ID": "test-model", **env})

    def runtime(read_timeout: float) -> Any:
        config = Config(connect_timeout=1, read_timeout=read_timeout, retries={"total_max_attempts": 1})
        return boto3.client("bedrock-runtime", region_name="eu-west-1", endpoint_url=server.url, config=config)

    return BedrockConverseModel(settings, runtime=runtime, sleep=lambda seconds: None)


def trace(input_action: str = "NONE", output_action: str = "NONE") -> dict[str, Any]:
    def assessment(action: str) -> dict[str, Any]:
        return {"contentPolicy": {"filters": [{"type": "HATE", "confidence": "HIGH", "filterStrength": "HIGH",
                                               "action": action, "detected": action != "NONE"}]}}  # fmt: skip

    return {"guardrail": {"inputAssessment": {"gr-1": assessment(input_action)},
                          "outputAssessments": {"gr-1": [assessment(output_action)]}}}  # fmt: skip


def test_converse_stream_yields_the_text_chunks_then_the_answer_with_usage(server: BedrockStreamServer) -> None:
    server.script.append(ScriptedStream(answer_events("Hel", "lo ", "there", usage=(21, 4))))
    stream = model(server).stream([ChatMessage("user", "earlier"), ChatMessage("assistant", "answer")], "now")

    assert list(stream) == ["Hel", "lo ", "there"]
    assert stream.result() == ModelAnswer("Hello there", input_tokens=21, output_tokens=4)
    sent = server.requests[0]
    assert sent["path"] == "/model/test-model/converse-stream"
    assert [message["content"][0]["text"] for message in sent["json"]["messages"]] == ["earlier", "answer", "now"]
    assert sent["json"]["inferenceConfig"] == {"maxTokens": 1024}


def test_a_streamed_guardrail_checks_each_chunk_before_it_is_sent_and_traces(server: BedrockStreamServer) -> None:
    server.script.append(ScriptedStream(answer_events("fine")))
    list(model(server, **GUARDED, BEDROCK_GUARDRAIL_VERSION="2").stream([], "x"))
    assert server.requests[0]["json"]["guardrailConfig"] == {
        "guardrailIdentifier": "gr-1",
        "guardrailVersion": "2",
        "trace": "enabled",
        "streamProcessingMode": "sync",
    }


def test_a_streamed_answer_the_guardrail_replaced_is_moderated(server: BedrockStreamServer) -> None:
    events = answer_events("Sorry, I can't answer that.", stop_reason="guardrail_intervened",
                           trace=trace(output_action="BLOCKED"))  # fmt: skip
    server.script.append(ScriptedStream(events))
    stream = model(server, **GUARDED).stream([], "x")
    assert "".join(stream) == "Sorry, I can't answer that."
    assert stream.result().moderated


def test_a_streamed_input_the_guardrail_blocked_is_content_blocked(server: BedrockStreamServer) -> None:
    events = answer_events("Sorry.", stop_reason="guardrail_intervened", trace=trace(input_action="BLOCKED"))
    server.script.append(ScriptedStream(events))
    stream = model(server, **GUARDED).stream([], "x")
    list(stream)
    with pytest.raises(ContentBlockedError):
        stream.result()


def test_throttling_before_the_first_chunk_is_retried(server: BedrockStreamServer) -> None:
    server.script.append(ScriptedStream(status=429, error_code="ThrottlingException"))
    server.script.append(ScriptedStream(answer_events("after a retry")))
    assert list(model(server).stream([], "x")) == ["after a retry"]
    assert len(server.requests) == 2


def test_an_exception_event_before_the_first_chunk_is_retried(server: BedrockStreamServer) -> None:
    started = event("messageStart", {"role": "assistant"})
    server.script.append(ScriptedStream([started, exception_event("throttlingException")]))
    server.script.append(ScriptedStream(answer_events("second try")))
    assert list(model(server).stream([], "x")) == ["second try"]


def test_persistent_throttling_is_a_502_after_bounded_retries(server: BedrockStreamServer) -> None:
    for _ in range(3):
        server.script.append(ScriptedStream(status=429, error_code="ThrottlingException"))
    with pytest.raises(ModelProviderError):
        list(model(server).stream([], "x"))
    assert len(server.requests) == 3


def test_a_failure_after_the_first_chunk_is_a_502_without_retry(server: BedrockStreamServer) -> None:
    first = answer_events("partial")[:2]
    server.script.append(ScriptedStream([*first, exception_event("modelStreamErrorException")]))
    server.script.append(ScriptedStream(answer_events("never asked")))
    stream = model(server).stream([], "x")
    chunks: list[str] = []
    with pytest.raises(ModelProviderError):
        chunks.extend(stream)
    assert chunks == ["partial"]
    assert len(server.requests) == 1


def test_a_stream_that_stalls_mid_answer_is_a_504(server: BedrockStreamServer) -> None:
    first = answer_events("partial")[:2]
    server.script.append(ScriptedStream([*first, Pause(3.0), *answer_events("late")[1:]]))
    stream = model(server, MODEL_TIMEOUT_SECONDS="1").stream([], "x")
    chunks: list[str] = []
    with pytest.raises(ModelTimeoutError):
        chunks.extend(stream)
    assert chunks == ["partial"]


def test_closing_the_stream_stops_reading_and_closes_the_connection(server: BedrockStreamServer) -> None:
    steps: list[bytes | Pause] = [*answer_events("first ")[:2]]
    for _ in range(20):
        steps += [Pause(0.05), event("contentBlockDelta", {"delta": {"text": "more "}, "contentBlockIndex": 0})]
    server.script.append(ScriptedStream(steps))
    stream = model(server).stream([], "x")
    assert read_then_close(stream) == ["first "]
    assert server.disconnected.wait(5)
    answer = stream.result()
    assert answer.interrupted
    assert answer.text == "first "
    assert answer.output_tokens >= 1


def test_a_stream_without_text_is_a_502(server: BedrockStreamServer) -> None:
    server.script.append(ScriptedStream(answer_events()))
    stream = model(server).stream([], "x")
    assert list(stream) == []
    with pytest.raises(ModelProviderError):
        stream.result()


def test_closing_the_stream_from_another_thread_ends_a_waiting_read_quietly(server: BedrockStreamServer) -> None:
    server.script.append(ScriptedStream([*answer_events("first ")[:2], Pause(5.0), *answer_events("late")[1:]]))
    stream = model(server).stream([], "x")
    chunks = iter(stream)
    assert next(chunks) == "first "
    threading.Timer(0.2, stream.close).start()
    started = time.monotonic()
    assert list(chunks) == []
    assert time.monotonic() - started < 3
    assert stream.result().interrupted
