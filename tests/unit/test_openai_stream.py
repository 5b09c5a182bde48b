"""The OpenAI-compatible provider streaming server-sent events from a loopback endpoint: the request asks
for usage, chunks arrive as written, usage falls back to an upper bound, retries only before the first
chunk, a stall mid-answer, cancellation."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from support.openai_server import OpenAiServer, Scripted, stream_events
from support.provider_models import openai_model as model
from support.stream_doubles import read_then_close

from chatbot_security.conversation.errors import ModelProviderError, ModelTimeoutError
from chatbot_security.conversation.model_providers import ModelAnswer


@pytest.fixture
def server() -> Iterator[OpenAiServer]:
    running = OpenAiServer().start()
    yield running
    running.stop()


def test_the_stream_request_asks_for_usage_and_yields_the_chunks_as_written(server: OpenAiServer) -> None:
    server.script.append(Scripted(events=stream_events("Hel", "lo", usage=(17, 2))))
    stream = model(server).stream([], "hi")

    assert list(stream) == ["Hel", "lo"]
    assert stream.result() == ModelAnswer("Hello", input_tokens=17, output_tokens=2)
    sent = server.requests[0]["json"]
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["messages"][-1] == {"role": "user", "content": "hi"}


def test_a_stream_without_usage_counts_utf8_bytes_as_an_upper_bound(server: OpenAiServer) -> None:
    server.script.append(Scripted(events=stream_events("ça ", "va", usage=None)))
    stream = model(server, MODEL_SYSTEM_PROMPT="Be brief.").stream([], "hi")
    list(stream)
    answer = stream.result()
    assert answer.input_tokens == len("Be brief.") + len("hi")
    assert answer.output_tokens == len("ça va".encode())


def test_the_loopback_endpoint_streams_its_echo_word_by_word(server: OpenAiServer) -> None:
    assert list(model(server).stream([], "one two")) == ["Model ", "says: ", "one ", "two"]


def test_a_server_error_before_the_first_chunk_is_retried(server: OpenAiServer) -> None:
    server.script.append(Scripted(status=503, body={"error": {"message": "busy"}}))
    server.script.append(Scripted(events=stream_events("after a retry")))
    assert list(model(server).stream([], "x")) == ["after a retry"]
    assert len(server.requests) == 2


def test_a_refused_stream_request_is_a_502_without_retry(server: OpenAiServer) -> None:
    server.script.append(Scripted(status=400, body={"error": {"message": "bad"}}))
    with pytest.raises(ModelProviderError):
        list(model(server).stream([], "x"))
    assert len(server.requests) == 1


def test_a_stream_that_stalls_mid_answer_is_a_504(server: OpenAiServer) -> None:
    events = stream_events("partial", "late")
    server.script.append(Scripted(events=[*events[:2], 3.0, *events[2:]]))
    chunks: list[str] = []
    with pytest.raises(ModelTimeoutError):
        chunks.extend(model(server, MODEL_TIMEOUT_SECONDS="1").stream([], "x"))
    assert chunks == ["partial"]


def test_closing_the_stream_closes_the_http_response(server: OpenAiServer) -> None:
    events = stream_events("first ", *["more "] * 40)
    paced: list[str | float] = [*events[:2]]
    for step in events[2:]:
        paced += [0.05, step]
    server.script.append(Scripted(events=paced))
    stream = model(server).stream([], "x")
    assert read_then_close(stream) == ["first "]
    assert server.disconnected.wait(5)
    answer = stream.result()
    assert (answer.text, answer.interrupted) == ("first ", True)


def test_a_filtered_stream_is_moderated(server: OpenAiServer) -> None:
    server.script.append(Scripted(events=stream_events(finish_reason="content_filter")))
    stream = model(server).stream([], "x")
    assert list(stream) == []
    assert stream.result().moderated


def test_a_stream_cut_before_its_end_is_a_502(server: OpenAiServer) -> None:
    server.script.append(Scripted(events=stream_events("cut", "here")[:2]))
    with pytest.raises(ModelProviderError):
        list(model(server).stream([], "x"))


@pytest.mark.parametrize("line", ["data: {not json\n\n", "data: [1, 2]\n\n", "data: " + "x" * 70_000 + "\n\n"])
def test_a_malformed_event_is_a_502(server: OpenAiServer, line: str) -> None:
    server.script.append(Scripted(events=[*stream_events("ok")[:2], line]))
    with pytest.raises(ModelProviderError):
        list(model(server).stream([], "x"))


def test_a_stream_that_ends_without_text_is_a_502(server: OpenAiServer) -> None:
    server.script.append(Scripted(events=stream_events()))
    stream = model(server).stream([], "x")
    list(stream)
    with pytest.raises(ModelProviderError):
        stream.result()


def test_closing_the_stream_from_another_thread_ends_a_waiting_read_quietly(server: OpenAiServer) -> None:
    events = stream_events("first ", "late")
    server.script.append(Scripted(events=[*events[:2], 5.0, *events[2:]]))
    stream = model(server, MODEL_TIMEOUT_SECONDS="10").stream([], "x")
    chunks = iter(stream)
    assert next(chunks) == "first "
    threading.Timer(0.2, stream.close).start()
    started = time.monotonic()
    assert list(chunks) == []
    assert time.monotonic() - started < 3
    assert stream.result().interrupted
