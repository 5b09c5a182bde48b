"""The stream function (``stream.handler``): ``$connect`` binds the connection from the authorizer's
context only, ``$disconnect`` forgets it, ``sendMessage`` validates, takes the connection for one turn,
claims the turn and hands it to the worker, ``$default`` answers frames it cannot route. Frames go
through the real management API client to a loopback stage; every refusal is an ``error`` frame with
the HTTP path's code and a generic message."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from support.stream_stage import StreamStage
from support.websocket_events import OWNER, SESSION, authorizer_context, ws_event

from chatbot_security.conversation.errors import (
    ChatbotError,
    IdempotencyConflictError,
    NotFoundError,
    RateLimitedError,
    SessionFullError,
)
from chatbot_security.conversation.models import Message, MessageRequest, Turn
from chatbot_security.conversation.owner import Owner
from stream.dependencies import default_callbacks, default_handoff
from stream.handler import handler
from stream.routes import StreamRoutes
from tools.connection_fakes import InMemoryConnectionStore
from tools.lambda_context import FakeLambdaContext

CONNECTION = "conn-A1b2C3d4="
SECRET = "my card is 4111 1111 1111 1111 zebra-quartz"


@dataclass
class FakeClaimed:
    owner: Owner
    session_id: str
    request: MessageRequest

    def to_event(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "owner": self.owner.key, "content": self.request.content}


@dataclass
class FakeEngine:
    """The turn engine's claim: records its calls and answers with ``outcome`` (a claim by default)."""

    outcome: ChatbotError | Exception | Turn | None = None
    claims: list[tuple[Owner, str, MessageRequest]] = field(default_factory=list)

    def claim(self, owner: Owner, session_id: str, request: MessageRequest) -> Any:
        self.claims.append((owner, session_id, request))
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome or FakeClaimed(owner, session_id, request)


@pytest.fixture
def stage(stage: StreamStage, monkeypatch: pytest.MonkeyPatch) -> StreamStage:
    """The stage, also answering the worker's asynchronous invocation."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", stage.url)
    monkeypatch.setenv("STREAM_WORKER_FUNCTION", "chatbot-stream-worker")
    return stage


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def connections() -> InMemoryConnectionStore:
    return InMemoryConnectionStore()


@pytest.fixture
def routes(stage: StreamStage, engine: FakeEngine, connections: InMemoryConnectionStore) -> StreamRoutes:
    return StreamRoutes(connections=connections, callbacks=default_callbacks(), engine=engine,
                        handoff=default_handoff(), max_message_chars=4000, model_timeout_seconds=25)  # fmt: skip


def call(routes: StreamRoutes, event: dict[str, Any]) -> dict[str, Any]:
    return handler(event, FakeLambdaContext(), routes=routes)


def connected(routes: StreamRoutes, **context: Any) -> None:
    assert call(routes, ws_event("$connect", CONNECTION, context=authorizer_context(**context))) == {"statusCode": 200}


def send(routes: StreamRoutes, body: Any, request_id: str = "req-1", **options: Any) -> dict[str, Any]:
    return call(routes, ws_event("sendMessage", CONNECTION, body=body, request_id=request_id, **options))


def error_of(stage: StreamStage) -> dict[str, Any]:
    frames = stage.frames_of(CONNECTION)
    assert [frame["type"] for frame in frames] == ["error"], frames
    return frames[0]["error"]


def a_turn() -> Turn:
    def message(role: str, content: str) -> Message:
        return Message(message_id=str(uuid.uuid4()), role=role, content=content,  # type: ignore[arg-type]
                       created_at="2026-11-29T18:00:00.000Z")  # fmt: skip

    return Turn(user_message=message("user", "hello"), assistant_message=message("assistant", "echo: hello"))


# -- $connect and $disconnect ------------------------------------------------------------------
def test_connect_binds_the_connection_to_the_authorizers_owner_session_and_expiry(
    routes: StreamRoutes, connections: InMemoryConnectionStore
) -> None:
    exp = int(time.time()) + 900

    connected(routes, credential_exp=exp)

    record = connections.get(CONNECTION)
    assert record is not None
    assert (record.owner, record.kind, record.session_id, record.credential_exp) == (OWNER, "anonymous", SESSION, exp)


@pytest.mark.parametrize(
    "context",
    [
        None,
        {},
        {**authorizer_context(), "kind": "admin"},
        {**authorizer_context(), "session_id": "not-a-uuid"},
        {**authorizer_context(), "credential_exp": "soon"},
        {**authorizer_context(), "credential_exp": "-5"},
        {key: value for key, value in authorizer_context().items() if key != "owner"},
    ],
)
def test_connect_without_a_valid_authorizer_context_is_refused(
    routes: StreamRoutes, connections: InMemoryConnectionStore, context: dict[str, Any] | None
) -> None:
    assert call(routes, ws_event("$connect", CONNECTION, context=context)) == {"statusCode": 403}
    assert connections.get(CONNECTION) is None


def test_connect_with_a_credential_already_expired_is_refused(
    routes: StreamRoutes, connections: InMemoryConnectionStore
) -> None:
    event = ws_event("$connect", CONNECTION, context=authorizer_context(credential_exp=int(time.time()) - 1))

    assert call(routes, event) == {"statusCode": 403}
    assert connections.get(CONNECTION) is None


def test_disconnect_forgets_the_connection(routes: StreamRoutes, connections: InMemoryConnectionStore) -> None:
    connected(routes)

    assert call(routes, ws_event("$disconnect", CONNECTION)) == {"statusCode": 200}
    assert connections.get(CONNECTION) is None


def test_disconnect_is_best_effort(routes: StreamRoutes, connections: InMemoryConnectionStore) -> None:
    def broken(connection_id: str) -> None:
        raise ConnectionError("table unavailable")

    connections.forget = broken  # type: ignore[method-assign]

    assert call(routes, ws_event("$disconnect", CONNECTION)) == {"statusCode": 200}


# -- sendMessage ------------------------------------------------------------------------------
def test_a_message_is_claimed_for_the_connections_owner_and_handed_to_the_worker(
    routes: StreamRoutes, engine: FakeEngine, stage: StreamStage, connections: InMemoryConnectionStore
) -> None:
    connected(routes)
    message_id = str(uuid.uuid4())

    send(routes, {"action": "sendMessage", "content": "hello", "client_message_id": message_id}, request_id="req-9")

    [(owner, session_id, request)] = engine.claims
    assert owner == Owner(key=OWNER, kind="anonymous", session_id=SESSION)
    assert session_id == SESSION
    assert (request.content, str(request.client_message_id)) == ("hello", message_id)
    [invocation] = stage.invocations
    assert invocation["function"] == "chatbot-stream-worker"
    assert invocation["type"] == "Event"
    assert invocation["payload"] == {
        "turn": {"session_id": SESSION, "owner": OWNER, "content": "hello"},
        "connection_id": CONNECTION,
        "request_id": "req-9",
    }
    assert stage.frames_of(CONNECTION) == []  # the worker streams the answer
    record = connections.get(CONNECTION)
    assert record is not None
    assert record.is_busy(int(time.time()))  # until the worker finishes the turn


def test_a_signed_in_users_connection_claims_as_that_user(routes: StreamRoutes, engine: FakeEngine) -> None:
    connected(routes, kind="user")

    send(routes, {"action": "sendMessage", "content": "hello"})

    assert engine.claims[0][0] == Owner(key=OWNER, kind="user", session_id=None)


def test_identity_or_session_named_in_a_frame_is_refused_not_used(
    routes: StreamRoutes, engine: FakeEngine, stage: StreamStage
) -> None:
    connected(routes)

    send(routes, {"action": "sendMessage", "content": "hi", "session_id": str(uuid.uuid4()), "owner": "someone"})

    assert error_of(stage)["code"] == "validation_error"
    assert error_of(stage)["message"] == "2 unknown fields in the body"
    assert engine.claims == []


def test_a_second_message_while_a_turn_streams_is_busy_and_the_turn_goes_on(
    routes: StreamRoutes, engine: FakeEngine, stage: StreamStage, connections: InMemoryConnectionStore
) -> None:
    connected(routes)
    send(routes, {"action": "sendMessage", "content": "first"})
    lease = connections.get(CONNECTION)

    send(routes, {"action": "sendMessage", "content": "second"}, request_id="req-2")

    assert error_of(stage) == {
        "code": "busy",
        "message": "A message is already being answered on this connection; wait for it to finish.",
        "request_id": "req-2",
    }
    assert len(engine.claims) == 1
    assert len(stage.invocations) == 1
    assert connections.get(CONNECTION) == lease  # still taken by the first turn
    assert stage.closed == set()


def test_a_message_after_the_credential_expired_is_refused_and_the_connection_closed(
    routes: StreamRoutes, engine: FakeEngine, stage: StreamStage, connections: InMemoryConnectionStore
) -> None:
    connected(routes)
    record = connections.get(CONNECTION)
    assert record is not None
    connections.records[CONNECTION] = type(record)(**{**record.__dict__, "credential_exp": int(time.time()) - 1})

    send(routes, {"action": "sendMessage", "content": "hello"})

    assert error_of(stage) == {"code": "forbidden", "message": "You are not allowed to do this.",
                               "request_id": "req-1"}  # fmt: skip
    assert stage.deleted == [CONNECTION]
    assert engine.claims == []


def test_a_message_on_a_connection_never_bound_is_refused_and_closed(
    routes: StreamRoutes, engine: FakeEngine, stage: StreamStage
) -> None:
    send(routes, {"action": "sendMessage", "content": "hello"})

    assert error_of(stage)["code"] == "forbidden"
    assert stage.deleted == [CONNECTION]
    assert engine.claims == []


@pytest.mark.parametrize(
    ("refusal", "code"),
    [
        (RateLimitedError(retry_after_seconds=30), "rate_limited"),
        (SessionFullError(), "session_full"),
        (IdempotencyConflictError(), "idempotency_conflict"),
    ],
)
def test_a_refused_claim_is_an_error_frame_with_the_http_paths_code_and_frees_the_connection(
    routes: StreamRoutes,
    engine: FakeEngine,
    stage: StreamStage,
    connections: InMemoryConnectionStore,
    refusal: ChatbotError,
    code: str,
) -> None:
    connected(routes)
    engine.outcome = refusal

    send(routes, {"action": "sendMessage", "content": "hello"})

    assert error_of(stage) == {"code": code, "message": refusal.message, "request_id": "req-1"}
    assert stage.invocations == []
    assert stage.closed == set()  # the connection stays open
    record = connections.get(CONNECTION)
    assert record is not None
    assert not record.is_busy(int(time.time()))


def test_a_message_to_a_session_deleted_or_expired_is_not_found_and_closes_the_connection(
    routes: StreamRoutes, engine: FakeEngine, stage: StreamStage
) -> None:
    connected(routes)
    engine.outcome = NotFoundError()

    send(routes, {"action": "sendMessage", "content": "hello"})

    assert error_of(stage)["code"] == "not_found"
    assert stage.deleted == [CONNECTION]


def test_a_replayed_finished_turn_gets_its_done_frame_at_once(
    routes: StreamRoutes, engine: FakeEngine, stage: StreamStage, connections: InMemoryConnectionStore
) -> None:
    connected(routes)
    turn = a_turn()
    engine.outcome = turn

    send(routes, {"action": "sendMessage", "content": "hello", "client_message_id": str(uuid.uuid4())})

    assert stage.frames_of(CONNECTION) == [{"type": "done", "turn": turn.model_dump(mode="json")}]
    assert stage.invocations == []
    record = connections.get(CONNECTION)
    assert record is not None
    assert not record.is_busy(int(time.time()))


def test_a_worker_that_cannot_be_started_is_an_error_frame_and_frees_the_connection(
    routes: StreamRoutes, stage: StreamStage, connections: InMemoryConnectionStore
) -> None:
    connected(routes)
    stage.invoke_status = 400

    send(routes, {"action": "sendMessage", "content": "hello"})

    assert error_of(stage) == {"code": "internal_error", "message": "The request could not be completed.",
                               "request_id": "req-1"}  # fmt: skip
    record = connections.get(CONNECTION)
    assert record is not None
    assert not record.is_busy(int(time.time()))


# -- malformed and oversized frames, unknown actions ------------------------------------------
@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ('{"action": "sendMessage", "content": "hi"', "bad_request", "The request body is not valid UTF-8 JSON."),
        ('{"action": "sendMessage", "content": NaN}', "bad_request", "The request body is not valid UTF-8 JSON."),
        (
            '{"action": "sendMessage", "content": "a", "content": "b"}',
            "bad_request",
            "The request body is not valid UTF-8 JSON.",
        ),
        ('{"action": "sendMessage", "content": "\\ud800"}', "validation_error", "content: must be a string"),
        ({"action": "sendMessage", "content": 42}, "validation_error", "content: must be a string"),
        ({"action": "sendMessage"}, "validation_error", "content: required"),
        (
            {"action": "sendMessage", "content": "hi", "client_message_id": "nope"},
            "validation_error",
            "client_message_id: must be a UUID",
        ),
        ({"action": "sendMessage", "content": "x" * 4001}, "validation_error", "content: at most 4000 characters"),
        (
            {"action": "sendMessage", "content": "hi\u202e"},
            "validation_error",
            "content: no control characters other than newline and tab, no bidirectional controls",
        ),
        ({"action": "sendMessage", "content": SECRET, SECRET: 1}, "validation_error", "1 unknown field in the body"),
        (
            '{"action": "sendMessage", "content": "' + "x" * (128 * 1024) + '"}',
            "payload_too_large",
            "The request body is too large.",
        ),
        (
            '{"action": "sendMessage", "content": "' + "\u00e9" * (64 * 1024) + '"}',
            "payload_too_large",
            "The request body is too large.",
        ),
        (
            '{"action": "sendMessage", "content": ' + "[" * 40 + "]" * 40 + "}",
            "bad_request",
            "The request body is not valid UTF-8 JSON.",
        ),
    ],
)
def test_a_malformed_or_oversized_frame_is_an_error_frame_and_the_connection_stays_open(
    routes: StreamRoutes, engine: FakeEngine, stage: StreamStage, body: Any, code: str, message: str
) -> None:
    connected(routes)

    assert send(routes, body) == {"statusCode": 200}

    error = error_of(stage)
    assert (error["code"], error["message"]) == (code, message)
    assert engine.claims == []
    assert stage.closed == set()


def test_a_binary_frame_is_refused(routes: StreamRoutes, stage: StreamStage) -> None:
    connected(routes)

    send(routes, "eyJhY3Rpb24iOiJzZW5kTWVzc2FnZSJ9", is_base64=True)

    assert error_of(stage)["code"] == "bad_request"


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        ({"action": "deleteEverything", "content": "hi"}, "validation_error", "action: must be sendMessage"),
        ({"content": "hi"}, "validation_error", "action: must be sendMessage"),
        ("not json at all", "bad_request", "The request body is not valid UTF-8 JSON."),
        ("[1, 2]", "validation_error", "body: must be a JSON object"),
        ("x" * (128 * 1024 + 1), "payload_too_large", "The request body is too large."),
    ],
)
def test_an_unknown_action_or_unroutable_frame_gets_an_error_frame_on_default(
    routes: StreamRoutes, engine: FakeEngine, stage: StreamStage, body: Any, code: str, message: str
) -> None:
    connected(routes)

    assert call(routes, ws_event("$default", CONNECTION, body=body)) == {"statusCode": 200}

    assert error_of(stage) == {"code": code, "message": message, "request_id": "req-1"}
    assert engine.claims == []


def test_refusals_log_no_content_and_no_identifier(
    routes: StreamRoutes, engine: FakeEngine, stage: StreamStage, log_output: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    connected(routes)
    send(routes, {"action": "sendMessage", "content": SECRET, SECRET: SECRET})
    send(routes, "{" + SECRET)
    call(routes, ws_event("$default", CONNECTION, body={"action": SECRET}))
    engine.outcome = RuntimeError(SECRET)
    send(routes, {"action": "sendMessage", "content": SECRET})
    send(routes, {"action": "sendMessage", "content": SECRET})

    captured = capsys.readouterr()
    logs = log_output.getvalue() + captured.out + captured.err
    assert "frame handled" in logs
    assert [value for value in ("4111", "zebra-quartz", OWNER, SESSION) if value in logs] == []
    assert [frame for frame in stage.frames_of(CONNECTION) if "4111" in str(frame)] == []


def test_a_connection_store_failure_is_a_generic_error_frame(
    routes: StreamRoutes, engine: FakeEngine, stage: StreamStage, connections: InMemoryConnectionStore
) -> None:
    connected(routes)

    def unavailable(connection_id: str, now: int, until: int) -> Any:
        raise RuntimeError("table unavailable")

    connections.start_turn = unavailable  # type: ignore[method-assign]

    send(routes, {"action": "sendMessage", "content": "hello"})

    assert error_of(stage)["code"] == "internal_error"
    assert engine.claims == []
