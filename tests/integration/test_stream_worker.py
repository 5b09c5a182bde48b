"""The stream worker (``stream.worker``): the claimed turn's answer streams as delta frames through the
real management API client to a loopback stage, then one done frame with the stored turn, or one error
frame when the model fails (nothing stored). A client that goes away cancels the model stream and
nothing is stored. The connection is freed in every case."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from support.stream_doubles import EachTextAFrame
from support.stream_stage import StreamStage
from support.websocket_events import OWNER, SESSION

from chatbot_security.conversation.errors import ModelProviderError, ModelTimeoutError
from chatbot_security.conversation.model_providers import ChatMessage, ModelAnswer
from chatbot_security.conversation.models import Message, Turn
from chatbot_security.privacy import pii
from stream.dependencies import default_callbacks
from stream.worker import StreamWorker, handler
from tools.connection_fakes import InMemoryConnectionStore
from tools.lambda_context import FakeLambdaContext

CONNECTION = "conn-W0rker=="


class ScriptedStream:
    """A model stream that yields its chunks, or fails after them; records whether it was closed."""

    def __init__(self, chunks: Sequence[str], failure: Exception | None = None, usage: tuple[int, int] = (7, 9)):
        self.chunks, self.failure, self.usage = list(chunks), failure, usage
        self.read = 0
        self.closed = False

    def __iter__(self) -> Iterator[str]:
        for chunk in self.chunks:
            if self.closed:
                return
            self.read += 1
            yield chunk
        if self.failure is not None:
            raise self.failure

    def result(self) -> ModelAnswer:
        if self.closed:
            raise RuntimeError("cancelled")
        return ModelAnswer(text="".join(self.chunks), input_tokens=self.usage[0], output_tokens=self.usage[1])

    def close(self) -> None:
        self.closed = True


@dataclass
class ScriptedModel:
    stream_of: Callable[[], ScriptedStream]
    streams: list[ScriptedStream] = field(default_factory=list)

    def stream(self, history: Sequence[ChatMessage], user_message: str) -> ScriptedStream:
        self.streams.append(self.stream_of())
        return self.streams[-1]


@dataclass
class FakeEngine:
    """The engine's answer: calls the model with the masked input, masks the output, stores the turn;
    stores nothing when the call raises."""

    stored: list[tuple[Turn, ModelAnswer]] = field(default_factory=list)
    released: list[Any] = field(default_factory=list)

    def answer(self, claimed: Any, call: Callable[[Sequence[ChatMessage], str], ModelAnswer]) -> Turn:
        try:
            answer = call([], pii.mask_pii(claimed["content"]))
        except BaseException:
            self.released.append(claimed)
            raise
        now = "2026-11-29T18:00:00.000Z"
        turn = Turn(
            user_message=Message(message_id=str(uuid.uuid4()), role="user", content=pii.mask_pii(claimed["content"]),
                                 created_at=now),
            assistant_message=Message(message_id=str(uuid.uuid4()), role="assistant",
                                      content=pii.mask_pii(answer.text), created_at=now),
        )  # fmt: skip
        self.stored.append((turn, answer))
        return turn


class PassThrough:
    def feed(self, chunk: str) -> str:
        return chunk

    def finish(self) -> str:
        return ""


@pytest.fixture
def connections() -> InMemoryConnectionStore:
    store = InMemoryConnectionStore()
    store.bind(CONNECTION, OWNER, SESSION, int(time.time()) + 3600, kind="anonymous")
    store.start_turn(CONNECTION, int(time.time()), int(time.time()) + 70)
    return store


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


def worker_for(stage: StreamStage, engine: FakeEngine, connections: InMemoryConnectionStore,
               model: ScriptedModel) -> StreamWorker:  # fmt: skip
    return StreamWorker(engine=engine, model=model, connections=connections, callbacks=default_callbacks(),
                        claimed_turn=lambda event: event, masker=PassThrough, sink=EachTextAFrame)  # fmt: skip


def run(worker: StreamWorker, content: str = "hello") -> dict[str, str]:
    event = {"turn": {"content": content}, "connection_id": CONNECTION, "request_id": "req-7"}
    return handler(event, FakeLambdaContext(), worker=worker)


def is_free(connections: InMemoryConnectionStore) -> bool:
    record = connections.get(CONNECTION)
    return record is not None and not record.is_busy(int(time.time()))


def test_the_answer_streams_as_deltas_then_the_stored_turn_as_done(
    stage: StreamStage, engine: FakeEngine, connections: InMemoryConnectionStore
) -> None:
    model = ScriptedModel(lambda: ScriptedStream(["You ", "said: ", "hello"]))

    assert run(worker_for(stage, engine, connections, model)) == {"outcome": "done"}

    frames = stage.frames_of(CONNECTION)
    assert frames[:-1] == [{"type": "delta", "text": text} for text in ("You ", "said: ", "hello")]
    [(turn, answer)] = engine.stored
    assert frames[-1] == {"type": "done", "turn": turn.model_dump(mode="json")}
    assert answer == ModelAnswer(text="You said: hello", input_tokens=7, output_tokens=9)
    assert is_free(connections)


@pytest.mark.parametrize("failure", [ModelProviderError(), ModelTimeoutError()])
def test_a_model_that_fails_or_times_out_gives_an_error_frame_and_stores_nothing(
    stage: StreamStage, engine: FakeEngine, connections: InMemoryConnectionStore, failure: Exception
) -> None:
    model = ScriptedModel(lambda: ScriptedStream(["partial "], failure=failure))

    assert run(worker_for(stage, engine, connections, model)) == {"outcome": failure.code}  # type: ignore[attr-defined]

    frames = stage.frames_of(CONNECTION)
    assert frames == [
        {"type": "delta", "text": "partial "},
        {"type": "error", "error": {"code": failure.code, "message": failure.message,  # type: ignore[attr-defined]
                                    "request_id": "req-7"}},
    ]  # fmt: skip
    assert engine.stored == []
    assert len(engine.released) == 1
    assert model.streams[0].closed
    assert is_free(connections)


def test_an_unexpected_failure_is_a_generic_error_frame(
    stage: StreamStage, engine: FakeEngine, connections: InMemoryConnectionStore
) -> None:
    model = ScriptedModel(lambda: ScriptedStream([], failure=RuntimeError("secret internals")))

    run(worker_for(stage, engine, connections, model))

    error = {"code": "internal_error", "message": "The request could not be completed.", "request_id": "req-7"}
    assert stage.frames_of(CONNECTION) == [{"type": "error", "error": error}]
    assert engine.stored == []


def test_a_client_that_leaves_cancels_the_model_and_nothing_is_stored(
    stage: StreamStage, engine: FakeEngine, connections: InMemoryConnectionStore
) -> None:
    model = ScriptedModel(lambda: ScriptedStream(["one ", "two ", "three ", "four ", "five "]))
    stage.gone_after[CONNECTION] = 2

    assert run(worker_for(stage, engine, connections, model)) == {"outcome": "gone"}

    stream = model.streams[0]
    assert stream.closed
    assert stream.read == 3  # the chunk whose frame found the client gone was the last one read
    assert engine.stored == []
    assert len(engine.released) == 1  # a retry with the same client_message_id runs the turn again
    assert [frame["text"] for frame in stage.frames_of(CONNECTION)] == ["one ", "two "]  # nothing after it left
    assert is_free(connections)


def test_a_client_gone_at_the_first_frame_stops_the_model_at_its_first_chunk(
    stage: StreamStage, engine: FakeEngine, connections: InMemoryConnectionStore
) -> None:
    model = ScriptedModel(lambda: ScriptedStream(["one ", "two "]))
    stage.gone_after[CONNECTION] = 0

    assert run(worker_for(stage, engine, connections, model)) == {"outcome": "gone"}

    assert model.streams[0].read == 1
    assert engine.stored == []
    assert stage.frames_of(CONNECTION) == []


def test_a_malformed_worker_event_is_refused_without_a_frame(
    stage: StreamStage, engine: FakeEngine, connections: InMemoryConnectionStore
) -> None:
    model = ScriptedModel(lambda: ScriptedStream(["x"]))

    outcome = handler({"turn": {}, "connection_id": CONNECTION}, FakeLambdaContext(),
                      worker=worker_for(stage, engine, connections, model))  # fmt: skip

    assert outcome == {"outcome": "refused"}
    assert model.streams == []
    assert stage.frames_of(CONNECTION) == []
