"""Stream worker entry point (StreamWorkerFunction): answers a turn the stream function has claimed.

It runs the engine's ``answer`` with a model call that streams: chunks go through the stream masker
into batched ``delta`` frames (``stream.relay``). Then exactly one more frame: ``done`` with the stored
turn (the HTTP 201 body), or ``error`` when the model failed or timed out (nothing stored, the claim
released). A client that went away stops the model and nothing is stored. Whatever happens, the
connection is freed for its next turn.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chatbot_security.conversation.failures import as_chatbot_error
from chatbot_security.conversation.model_providers import ChatMessage, ModelAnswer, ModelStream
from chatbot_security.conversation.models import Turn
from chatbot_security.conversation.turn_claims import ClaimedTurn
from chatbot_security.platform.observability import logger, metrics, tracer
from chatbot_security.storage.connections import ConnectionStore
from stream import outbound, relay
from stream.callbacks import ConnectionApi, ConnectionGone


class WorkerEvent(BaseModel):
    """What the stream function hands over: the claimed turn, and where to stream its answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    turn: dict[str, Any]
    connection_id: str = Field(min_length=1, max_length=128)
    request_id: str = Field(min_length=1, max_length=128)


class TurnAnswerer(Protocol):
    def answer(self, claimed: Any, call: Callable[[Sequence[ChatMessage], str], ModelAnswer]) -> Turn: ...


class StreamingModel(Protocol):
    def stream(self, history: Sequence[ChatMessage], user_message: str) -> ModelStream: ...


@dataclass
class StreamWorker:
    engine: TurnAnswerer
    model: StreamingModel
    connections: ConnectionStore
    callbacks: ConnectionApi
    masker: Callable[[], relay.Masker]
    sink: Callable[[Callable[[bytes], None]], relay.DeltaSink]  # the frame batcher, around a sender of frames
    claimed_turn: Callable[[dict[str, Any]], Any] = ClaimedTurn.from_event

    def run(self, event: WorkerEvent) -> str:
        """Answer the turn on its connection; the outcome (``done``, ``gone`` or an error code)."""
        frames = _Frames(self.callbacks, event.connection_id)

        def call(history: Sequence[ChatMessage], user_text: str) -> ModelAnswer:
            stream = self.model.stream(history, user_text)
            return relay.relay(stream, self.masker(), self.sink(frames.delta))

        try:
            turn = self.engine.answer(self.claimed_turn(event.turn), call)
        except relay.ClientGone:
            return "gone"  # nothing stored, nobody to tell
        except Exception as error:  # the model failed or timed out, the session ended meanwhile, or worse
            failure = as_chatbot_error(error)
            frames.send(outbound.error_frame(failure, event.request_id))
            return failure.code
        finally:
            self._finish(event.connection_id)
        frames.send(outbound.done_frame(turn))
        return "done"

    def _finish(self, connection_id: str) -> None:
        try:
            self.connections.finish_turn(connection_id)
        except Exception as error:  # the lease runs out by itself
            logger.warning("connection not freed", extra={"error_type": type(error).__name__})


class _Frames:
    """Sends frames to one connection; once the client has gone, nothing more is sent."""

    def __init__(self, callbacks: ConnectionApi, connection_id: str) -> None:
        self._callbacks = callbacks
        self._connection_id = connection_id
        self.gone = False

    def delta(self, frame: bytes) -> None:
        """A delta frame; raises :class:`ConnectionGone` so that the model stream is cancelled."""
        if self.gone:
            raise ConnectionGone()
        try:
            self._callbacks.post(self._connection_id, frame)
        except ConnectionGone:
            self.gone = True
            raise

    def send(self, frame: bytes) -> None:
        if self.gone:
            return
        try:
            self._callbacks.post(self._connection_id, frame)
        except ConnectionGone:
            self.gone = True


@logger.inject_lambda_context(correlation_id_path="request_id", log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
def handler(event: dict[str, Any], context: LambdaContext, worker: StreamWorker | None = None) -> dict[str, str]:
    try:
        parsed = WorkerEvent.model_validate(event)
    except ValidationError:
        logger.error("worker event refused")
        return {"outcome": "refused"}
    if worker is None:
        worker = default_worker()
    outcome = worker.run(parsed)
    logger.info("turn streamed", extra={"outcome": outcome})
    return {"outcome": outcome}


@functools.cache
def default_worker() -> StreamWorker:
    from chatbot_security.conversation.frames import FrameBatcher
    from chatbot_security.privacy.stream_masking import StreamMasker
    from stream.dependencies import default_callbacks, default_connections
    from stream.engine import default_engine

    engine = default_engine()
    masking = engine.settings.pii_masking
    return StreamWorker(
        engine=engine,
        model=engine.model,
        connections=default_connections(),
        callbacks=default_callbacks(),
        masker=lambda: StreamMasker(enabled=masking),
        sink=FrameBatcher if not engine.moderator.checks_answers else HeldUntilDone,
    )


class HeldUntilDone:
    """The sink of a stream whose answer is moderated only once it is whole (an OpenAI-compatible
    provider with a guardrail): no delta frame at all, so nothing of an answer reaches the client before
    the guardrail has judged it; the ``done`` frame then carries the moderated answer."""

    def __init__(self, send: Callable[[bytes], None]) -> None:
        self._send = send

    def add(self, text: str) -> None:
        return

    def flush(self) -> None:
        return
