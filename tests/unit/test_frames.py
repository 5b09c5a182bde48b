"""The WebSocket server frames and the frame batcher, on a fake clock: contract shapes, compact JSON, the
32 KB frame limit, and how many PostToConnection calls an answer costs."""

from __future__ import annotations

import json
import math

import pytest
from support.clocks import ManualClock

from chatbot_security.conversation.frames import (
    BATCH_INTERVAL_SECONDS,
    BATCH_THRESHOLD_BYTES,
    MAX_FRAME_BYTES,
    FrameBatcher,
    delta_frames,
    done_frame,
    error_frame,
    frame_size,
)


class Connection:
    """Records what a batcher sends, as PostToConnection would receive it."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def send(self, frame: bytes) -> None:
        self.frames.append(frame)

    def text(self) -> str:
        return "".join(json.loads(frame)["text"] for frame in self.frames)


MESSAGE = {"message_id": "m1", "role": "user", "content": "hi", "created_at": "2026-01-01T00:00:00Z"}


def test_frames_are_compact_json_in_the_contracts_shapes() -> None:
    assert delta_frames('say "hé"') == ['{"type":"delta","text":"say \\"hé\\""}'.encode()]
    turn = {"user_message": MESSAGE, "assistant_message": {**MESSAGE, "role": "assistant", "moderated": True}}
    assert json.loads(done_frame(turn)) == {"type": "done", "turn": turn}
    assert b" " not in done_frame({"user_message": {"a": 1}})
    assert json.loads(error_frame("busy", "A turn is already streaming.", "req-1")) == {
        "type": "error",
        "error": {"code": "busy", "message": "A turn is already streaming.", "request_id": "req-1"},
    }


def test_a_long_delta_is_split_into_frames_of_at_most_32_kb_that_rejoin() -> None:
    text = ('quote " backslash \\ control \x01 tab \t é 😀 \u2028 ' * 4000)[:150_000]
    frames = delta_frames(text)
    assert len(frames) > 1
    assert all(len(frame) <= MAX_FRAME_BYTES for frame in frames)
    assert "".join(json.loads(frame)["text"] for frame in frames) == text


def test_a_delta_of_only_escaped_characters_still_fits_the_limit() -> None:
    frames = delta_frames("\x00" * 20_000)
    assert all(len(frame) <= MAX_FRAME_BYTES for frame in frames)
    assert sum(len(json.loads(frame)["text"]) for frame in frames) == 20_000


def test_a_lone_surrogate_in_model_text_cannot_break_a_frame() -> None:
    (frame,) = delta_frames("a\ud800b")
    assert json.loads(frame.decode("utf-8")) == {"type": "delta", "text": "a?b"}


def test_a_done_frame_over_32_kb_is_refused_and_frame_size_says_so_first() -> None:
    turn = {"user_message": MESSAGE, "assistant_message": {**MESSAGE, "content": "x" * MAX_FRAME_BYTES}}
    assert frame_size({"type": "done", "turn": turn}) > MAX_FRAME_BYTES
    with pytest.raises(ValueError, match="frame limit"):
        done_frame(turn)


def test_the_first_text_is_sent_at_once() -> None:
    connection, clock = Connection(), ManualClock(1000.0)
    batcher = FrameBatcher(connection.send, clock)
    batcher.add("Hello ")
    assert connection.text() == "Hello "


def test_text_within_a_window_waits_until_the_window_has_passed() -> None:
    connection, clock = Connection(), ManualClock(1000.0)
    batcher = FrameBatcher(connection.send, clock)
    batcher.add("one ")
    clock.now += 0.01
    batcher.add("two ")
    clock.now += 0.02
    batcher.add("three ")
    assert len(connection.frames) == 1
    clock.now += BATCH_INTERVAL_SECONDS
    batcher.add("four")
    assert len(connection.frames) == 2
    assert connection.text() == "one two three four"


def test_text_reaching_the_threshold_is_sent_within_the_window() -> None:
    connection, clock = Connection(), ManualClock(1000.0)
    batcher = FrameBatcher(connection.send, clock)
    batcher.add("start ")
    batcher.add("x" * (BATCH_THRESHOLD_BYTES - 1))
    assert len(connection.frames) == 1
    batcher.add("y")
    assert len(connection.frames) == 2


def test_flush_sends_what_is_left() -> None:
    connection, clock = Connection(), ManualClock(1000.0)
    batcher = FrameBatcher(connection.send, clock)
    batcher.add("a ")
    batcher.add("b")
    batcher.flush()
    batcher.flush()
    assert connection.text() == "a b"
    assert batcher.frames_sent == len(connection.frames) == 2


def stream_answer(length: int, chunk: int = 16, seconds_per_chunk: float = 0.01) -> Connection:
    """An answer of ``length`` characters arriving in chunks at a steady pace, batched then flushed."""
    connection, clock = Connection(), ManualClock(1000.0)
    batcher = FrameBatcher(connection.send, clock)
    text = ("lorem ipsum dolor " * (length // 18 + 1))[:length]
    for start in range(0, length, chunk):
        batcher.add(text[start : start + chunk])
        clock.now += seconds_per_chunk
    batcher.flush()
    assert connection.text() == text
    return connection


@pytest.mark.parametrize("length", [1_000, 10_000, 100_000])
def test_calls_per_answer_follow_its_duration_in_windows_not_its_chunks(length: int) -> None:
    chunks = math.ceil(length / 16)
    duration = chunks * 0.01
    calls = len(stream_answer(length).frames)
    assert calls <= math.ceil(duration / BATCH_INTERVAL_SECONDS) + 2
    assert calls <= chunks / 4  # five chunks a window: batched


@pytest.mark.parametrize("length", [1_000, 10_000, 100_000])
def test_an_answer_arriving_at_once_costs_one_call_per_threshold(length: int) -> None:
    connection = stream_answer(length, seconds_per_chunk=0.0)
    assert len(connection.frames) <= length // BATCH_THRESHOLD_BYTES + 2
    assert all(len(frame) <= MAX_FRAME_BYTES for frame in connection.frames)


def test_one_huge_chunk_is_sent_in_frames_under_the_limit() -> None:
    connection = Connection()
    batcher = FrameBatcher(connection.send, ManualClock(1000.0))
    batcher.add("z" * 100_000)
    assert len(connection.frames) == math.ceil(100_000 / (MAX_FRAME_BYTES - 26))
    assert all(len(frame) <= MAX_FRAME_BYTES for frame in connection.frames)
