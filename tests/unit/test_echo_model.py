"""The echo model: its token counts (whitespace-separated words) and its word-by-word stream."""

from __future__ import annotations

from chatbot_security.conversation.model_providers import EchoModel, ModelAnswer
from chatbot_security.platform.settings import Settings


def test_the_echo_model_counts_whitespace_separated_words() -> None:
    answer = EchoModel().reply([], "two  words\n")
    assert answer == ModelAnswer("You said: two  words\n", input_tokens=2, output_tokens=4)


def test_the_echo_model_streams_word_by_word_with_a_pause_before_each_later_word() -> None:
    pauses: list[float] = []
    stream = EchoModel(word_delay_seconds=0.06, sleep=pauses.append).stream([], "hello big world")
    assert list(stream) == ["You ", "said: ", "hello ", "big ", "world"]
    assert pauses == [0.06] * 4
    assert stream.result() == EchoModel().reply([], "hello big world")


def test_a_closed_echo_stream_stops_and_its_answer_is_interrupted() -> None:
    stream = EchoModel(sleep=lambda seconds: None).stream([], "one two three")
    chunks = []
    for chunk in stream:
        chunks.append(chunk)
        if len(chunks) == 2:
            stream.close()
    assert chunks == ["You ", "said: "]
    answer = stream.result()
    assert (answer.text, answer.output_tokens, answer.interrupted) == ("You said: ", 2, True)


def test_the_echo_word_delay_is_configured_and_defaults_to_60_ms() -> None:
    assert Settings.model_validate({}).echo_word_delay_ms == 60
    assert Settings.model_validate({"ECHO_WORD_DELAY_MS": "0"}).echo_word_delay_ms == 0
