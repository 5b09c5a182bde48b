"""A streamed turn end to end in this process, on moto: a real stream ticket from the HTTP API, the real
``$connect`` authorizer, the stream function and its worker on the real turn engine, frames through the
real management API client to a loopback stage that runs the worker as Lambda's asynchronous invoke
would. The HTTP path's rules hold on the stream: the connection's session only, a deleted session is
not found, the rate limit, idempotent replays, and personal data split across chunks never reaches the
client unmasked."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from support.api import InProcessApi
from support.asyncapi import validate_frame
from support.caches import reset_caches
from support.stream_doubles import EachTextAFrame
from support.stream_events import connect_event
from support.stream_stage import StreamStage
from support.websocket_events import ws_event

from chatbot_security.conversation.fake_guardrail import BLOCK_ANSWER
from chatbot_security.conversation.model_providers import ChatMessage, ModelAnswer
from chatbot_security.privacy import pii
from chatbot_security.privacy.stream_masking import StreamMasker
from stream.dependencies import default_callbacks, default_connections
from stream.engine import default_engine
from stream.handler import handler as stream_handler
from stream.worker import HeldUntilDone, StreamWorker, default_worker
from stream.worker import handler as worker_handler
from stream_authorizer.handler import handler as authorizer_handler
from tools.aws_calls import counting_aws_calls
from tools.lambda_context import FakeLambdaContext

pytestmark = pytest.mark.usefixtures("aws")
TICKETS = "POST /v1/sessions/{session_id}/stream-tickets"
CARD = "4111 1111 1111 1111"
# A card number and an email, each split across chunks.
CHUNKS = ("my card is 4111 11", "11 1111 ", "1111, mail ja", "ne@exam", "ple.com ok")


class ChunkedStream:
    def __init__(self, chunks: Sequence[str]) -> None:
        self.chunks = list(chunks)
        self.closed = False

    def __iter__(self) -> Iterator[str]:
        yield from self.chunks

    def result(self) -> ModelAnswer:
        return ModelAnswer(text="".join(self.chunks), input_tokens=3, output_tokens=len(self.chunks))

    def close(self) -> None:
        self.closed = True


class ChunkedModel:
    """Answers every message with ``chunks`` (the user's message appended), and counts its calls."""

    def __init__(self, chunks: Sequence[str]) -> None:
        self.chunks = list(chunks)
        self.calls = 0

    def stream(self, history: Sequence[ChatMessage], user_message: str) -> ChunkedStream:
        self.calls += 1
        return ChunkedStream(self.chunks)


@pytest.fixture
def model() -> ChunkedModel:
    return ChunkedModel(CHUNKS)


@pytest.fixture
def stage(monkeypatch: pytest.MonkeyPatch, model: ChunkedModel) -> Iterator[StreamStage]:
    stage = StreamStage().start()
    stage.check = validate_frame  # every frame the product sends is one of the AsyncAPI document's messages
    monkeypatch.setenv("STREAM_URL", "wss://abc123.execute-api.eu-west-1.amazonaws.com/v1")
    monkeypatch.setenv("ALLOW_LOOPBACK_ISSUER", "true")
    monkeypatch.setenv("STREAM_CALLBACK_URL", stage.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", stage.url)
    monkeypatch.setenv("STREAM_WORKER_FUNCTION", "chatbot-stream-worker")
    monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "3")

    def run_worker(payload: dict[str, Any]) -> None:
        engine = default_engine()
        worker = StreamWorker(engine=engine, model=model, connections=default_connections(),
                              callbacks=default_callbacks(), masker=StreamMasker, sink=EachTextAFrame)  # fmt: skip
        worker_handler(payload, FakeLambdaContext(), worker=worker)

    stage.worker = run_worker
    yield stage
    assert not stage.invalid, stage.invalid  # a frame outside docs/asyncapi.yaml
    stage.stop()


def connect(api: InProcessApi, token: str, session_id: str, connection_id: str) -> dict[str, Any]:
    """Ask for a ticket over HTTP, pass the $connect authorizer with it, then $connect itself."""
    ticket = api.call(TICKETS, token, session_id=session_id).body["ticket"]
    decision = authorizer_handler(connect_event(ticket), FakeLambdaContext())
    assert decision["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    event = ws_event("$connect", connection_id, context=decision["context"])
    return stream_handler(event, FakeLambdaContext())


def send(stage: StreamStage, connection_id: str, body: Any, request_id: str = "req-1") -> list[dict[str, Any]]:
    """A sendMessage frame; the frames the client received once the worker (if any) has finished."""
    before = len(stage.frames_of(connection_id))
    stream_handler(ws_event("sendMessage", connection_id, body=body, request_id=request_id), FakeLambdaContext())
    stage.wait_for_workers()
    return stage.frames_of(connection_id)[before:]


@pytest.fixture
def anonymous(api: InProcessApi) -> tuple[str, str]:
    created = api.call("POST /v1/anonymous-sessions", None, content_type=None).body
    return created["session_token"], created["session_id"]


def test_a_streamed_turn_sends_masked_deltas_then_the_stored_turn(
    api: InProcessApi, stage: StreamStage, anonymous: tuple[str, str]
) -> None:
    token, session_id = anonymous
    assert connect(api, token, session_id, "conn-1=") == {"statusCode": 200}

    frames = send(stage, "conn-1=", {"action": "sendMessage", "content": f"hello, my card is {CARD}"})

    deltas, done = frames[:-1], frames[-1]
    assert deltas
    assert {frame["type"] for frame in deltas} == {"delta"}
    assert done["type"] == "done"
    streamed = "".join(frame["text"] for frame in deltas)
    stored = done["turn"]["assistant_message"]["content"]
    assert streamed == stored == pii.mask_pii("".join(CHUNKS))
    history = api.call("GET /v1/sessions/{session_id}/messages", token, session_id=session_id).body["messages"]
    assert history == [done["turn"]["user_message"], done["turn"]["assistant_message"]]
    assert "4111" not in json.dumps(frames)
    assert "ne@exam" not in json.dumps(frames)


def test_no_frame_carries_a_fragment_of_personal_data_split_across_chunks(
    api: InProcessApi, stage: StreamStage, anonymous: tuple[str, str]
) -> None:
    token, session_id = anonymous
    connect(api, token, session_id, "conn-1=")

    frames = send(stage, "conn-1=", {"action": "sendMessage", "content": "hello"})

    for fragment in ("4111", "1111", "ja", "ne@", "exam", "ple.com"):
        assert [frame for frame in frames if fragment in frame.get("text", "")] == []


def test_a_connection_used_after_its_session_was_deleted_is_not_found_and_closed(
    api: InProcessApi, stage: StreamStage, anonymous: tuple[str, str], model: ChunkedModel
) -> None:
    token, session_id = anonymous
    connect(api, token, session_id, "conn-1=")
    assert api.call("DELETE /v1/sessions/{session_id}", token, session_id=session_id).status == 204

    frames = send(stage, "conn-1=", {"action": "sendMessage", "content": "still there?"})

    assert [frame["error"]["code"] for frame in frames] == ["not_found"]
    assert stage.deleted == ["conn-1="]
    assert model.calls == 0


def test_a_flood_of_messages_is_rate_limited_with_an_error_frame(
    api: InProcessApi, stage: StreamStage, anonymous: tuple[str, str], model: ChunkedModel
) -> None:
    token, session_id = anonymous
    connect(api, token, session_id, "conn-1=")

    outcomes = [send(stage, "conn-1=", {"action": "sendMessage", "content": f"message {n}"})[-1] for n in range(4)]

    assert [frame["type"] for frame in outcomes] == ["done", "done", "done", "error"]
    assert outcomes[-1]["error"] == {"code": "rate_limited", "message": "Too many requests; retry later.",
                                     "request_id": "req-1"}  # fmt: skip
    assert model.calls == 3


def test_a_repeated_client_message_id_replays_the_turn_without_a_model_call(
    api: InProcessApi, stage: StreamStage, anonymous: tuple[str, str], model: ChunkedModel
) -> None:
    token, session_id = anonymous
    connect(api, token, session_id, "conn-1=")
    frame = {"action": "sendMessage", "content": "once", "client_message_id": str(uuid.uuid4())}
    first = send(stage, "conn-1=", frame)[-1]

    again = send(stage, "conn-1=", frame)

    assert again == [first]
    assert model.calls == 1


def test_a_users_connection_serves_only_the_session_of_its_ticket(
    api: InProcessApi, stage: StreamStage, alice: str, oidc_env: Any
) -> None:
    mine = api.call("POST /v1/sessions", alice).body["session_id"]
    bob = oidc_env.issuer.token(sub="bob")
    bobs = api.call("POST /v1/sessions", bob).body["session_id"]
    connect(api, alice, mine, "conn-1=")

    done = send(stage, "conn-1=", {"action": "sendMessage", "content": "hello", "session_id": bobs})

    assert [frame["error"]["code"] for frame in done] == ["validation_error"]  # no way to name another session
    assert api.call("GET /v1/sessions/{session_id}", bob, session_id=bobs).body["message_count"] == 0


def test_a_warm_streamed_turn_makes_the_http_turns_calls_plus_the_connections_and_the_hand_off(
    api: InProcessApi, stage: StreamStage, anonymous: tuple[str, str]
) -> None:
    token, session_id = anonymous
    with counting_aws_calls() as calls:  # counts on the clients built from here on: the caches start empty
        reset_caches()
        connect(api, token, session_id, "conn-1=")
        send(stage, "conn-1=", {"action": "sendMessage", "content": "a first turn warms the caches"})
        calls.clear()

        frames = send(stage, "conn-1=", {"action": "sendMessage", "content": "hello"}, request_id="req-2")

    assert frames[-1]["type"] == "done"
    # The HTTP turn's Query and two TransactWriteItems (rate charge with the token reservation, then the
    # turn with its settlement); the worker's own read of the session, in its own process; the
    # connection taken for the turn and freed after it. No KMS or Secrets Manager call once warm.
    assert calls.operations("dynamodb") == {"Query": 2, "TransactWriteItems": 2, "UpdateItem": 2}
    assert calls.operations("lambda") == {"Invoke": 1}
    assert set(calls.by_service()) <= {"dynamodb", "lambda", "apigatewaymanagementapi"}
    assert calls.operations("apigatewaymanagementapi") == {"PostToConnection": len(frames)}


def test_an_answer_moderated_only_once_whole_is_never_streamed_before_it_is_judged(
    api: InProcessApi, stage: StreamStage, anonymous: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Moderation that judges whole answers (the OpenAI-compatible provider; here the local fake guardrail),
    # and a model whose answer it refuses: no delta may carry any of it.
    monkeypatch.setenv("MODERATION", "guardrail")
    monkeypatch.setenv("LOCAL_FAKE_GUARDRAIL", "true")
    reset_caches()
    refused_answer = ("the secret plan ", "is ", BLOCK_ANSWER)

    def run_worker(payload: dict[str, Any]) -> None:
        engine = default_engine()
        assert engine.moderator.checks_answers
        worker = StreamWorker(engine=engine, model=ChunkedModel(refused_answer), connections=default_connections(),
                              callbacks=default_callbacks(), masker=StreamMasker, sink=HeldUntilDone)  # fmt: skip
        worker_handler(payload, FakeLambdaContext(), worker=worker)

    stage.worker = run_worker
    token, session_id = anonymous
    connect(api, token, session_id, "conn-1=")

    frames = send(stage, "conn-1=", {"action": "sendMessage", "content": "tell me"})

    assert [frame["type"] for frame in frames] == ["done"]
    answer = frames[0]["turn"]["assistant_message"]
    assert answer["moderated"] is True
    assert "secret plan" not in json.dumps(frames)
    default_worker.cache_clear()
    assert default_worker().sink is HeldUntilDone  # what the deployed worker picks for such moderation
