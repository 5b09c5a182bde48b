"""Concurrent posts, as several Lambda containers make them: the chat logic with the real DynamoDB store
against moto, one Conversations service (one "container") per thread (docs/resilience.md).

moto evaluates a request's conditions and applies its writes without a lock, so two of its threads
could interleave where DynamoDB never would; the fixture below makes each DynamoDB request atomic in
moto, which is the guarantee the store relies on (single-item writes and transactions are serialisable).
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import pytest
from support.moto_atomic import make_dynamodb_atomic
from support.parallel import in_parallel

from chat import dependencies
from chatbot_security.conversation.conversations import Conversations
from chatbot_security.conversation.model_providers import ChatMessage, EchoModel, ModelAnswer, ModelStream
from chatbot_security.conversation.models import MessageRequest, Turn
from chatbot_security.identity.principal import Principal
from chatbot_security.platform.transient_errors import is_transient

ALICE = Principal(kind="user", subject="alice", issuer="https://issuer.example.test")
CONTAINERS = 10


class SlowEcho:
    """The echo model, slow enough for requests to overlap, counting its calls."""

    history_window = 20

    def __init__(self, seconds: float = 0.05) -> None:
        self.seconds = seconds
        self.calls = 0
        self._lock = threading.Lock()

    def reply(self, history: Sequence[ChatMessage], user_message: str) -> ModelAnswer:
        with self._lock:
            self.calls += 1
        time.sleep(self.seconds)
        return ModelAnswer(f"You said: {user_message}", 1, 1)

    def stream(self, history: Sequence[ChatMessage], user_message: str) -> ModelStream:
        return EchoModel(sleep=time.sleep).stream(history, user_message)


@pytest.fixture
def atomic_dynamodb(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    make_dynamodb_atomic(monkeypatch)


@pytest.fixture
def model() -> SlowEcho:
    return SlowEcho()


@pytest.fixture
def containers(atomic_dynamodb: None, model: SlowEcho, monkeypatch: pytest.MonkeyPatch) -> list[Conversations]:
    monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "10000")
    build: Callable[[], Conversations] = dependencies.default_conversations.__wrapped__
    return [replace(build(), model=model) for _ in range(CONTAINERS)]


@pytest.fixture
def session_id(containers: list[Conversations]) -> str:
    return containers[0].create_session(ALICE).session_id


def request(content: str, client_message_id: str) -> MessageRequest:
    return MessageRequest(content=content, client_message_id=uuid.UUID(client_message_id))


def post_until_stored(service: Conversations, session_id: str, message: MessageRequest) -> tuple[Turn, int]:
    """Post; repeat with the same client_message_id while the API would answer 503. Returns the turn and
    how many 503s it took."""
    for attempt in range(10):
        try:
            return service.post_message(ALICE, session_id, message), attempt
        except Exception as error:
            if not is_transient(error):
                raise
    raise AssertionError("still unavailable after 10 attempts")


@pytest.fixture(autouse=True)
def _bounded() -> Iterator[None]:
    started = time.monotonic()
    yield
    assert time.monotonic() - started < 60


def test_ten_concurrent_posts_with_one_client_message_id_store_one_turn_and_answer_alike(
    containers: list[Conversations], session_id: str, model: SlowEcho
) -> None:
    # Given ten containers receiving the same post (a client retrying impatiently) at the same moment
    message = request("only once, please", str(uuid.uuid4()))
    # When they all handle it
    results = in_parallel(
        [functools.partial(post_until_stored, service, session_id, message) for service in containers]
    )
    # Then every answer is the same turn, the model was asked once, and one turn is stored
    turns = [turn for turn, _ in results]
    assert all(turn == turns[0] for turn in turns)
    assert model.calls == 1
    page = containers[0].list_messages(ALICE, session_id, 100, None)
    assert [m.message_id for m in page.messages] == [turns[0].user_message.message_id,
                                                     turns[0].assistant_message.message_id]  # fmt: skip
    assert containers[0].get_session(ALICE, session_id).message_count == 2


def test_concurrent_posts_to_one_session_are_all_stored_once_in_order_with_the_counts_right(
    containers: list[Conversations], session_id: str, model: SlowEcho
) -> None:
    # Given ten containers each receiving a different message for the same session at the same moment
    messages = [request(f"message {n}", str(uuid.uuid4())) for n in range(CONTAINERS)]
    # When they all handle theirs (a 503 is retried with the same client_message_id, as a client would)
    results = in_parallel([functools.partial(post_until_stored, service, session_id, message)
                           for service, message in zip(containers, messages, strict=True)])  # fmt: skip
    # Then every message is stored exactly once, each followed by its own answer, and the count is right
    page = containers[0].list_messages(ALICE, session_id, 100, None)
    stored = [(m.role, m.content) for m in page.messages]
    assert sorted(content for role, content in stored if role == "user") == sorted(m.content for m in messages)
    assert all(
        stored[i] == ("user", stored[i][1]) and stored[i + 1] == ("assistant", f"You said: {stored[i][1]}")
        for i in range(0, len(stored), 2)
    )
    ids = [m.message_id for m in page.messages]
    assert len(set(ids)) == len(ids) == 2 * CONTAINERS
    for (turn, _), message in zip(results, messages, strict=True):
        position = ids.index(turn.user_message.message_id)
        assert ids[position + 1] == turn.assistant_message.message_id
        assert page.messages[position].content == message.content
    assert containers[0].get_session(ALICE, session_id).message_count == 2 * CONTAINERS
    retries = sum(attempts for _, attempts in results)
    assert model.calls == CONTAINERS + retries  # a 503 after the model answered costs one more model call
    print(f"503s retried: {retries}")


def test_concurrent_creates_never_exceed_max_live_sessions(
    atomic_dynamodb: None, model: SlowEcho, monkeypatch: pytest.MonkeyPatch
) -> None:
    from support.caches import reset_caches

    from chatbot_security.conversation.errors import TooManySessionsError

    monkeypatch.setenv("MAX_LIVE_SESSIONS", "5")
    monkeypatch.setenv("SESSIONS_PER_HOUR", "1000")
    reset_caches()
    build: Callable[[], Conversations] = dependencies.default_conversations.__wrapped__
    containers = [replace(build(), model=model) for _ in range(CONTAINERS)]
    start = threading.Barrier(CONTAINERS * 2)

    def create(index: int) -> str:
        start.wait(10)
        try:
            return containers[index % CONTAINERS].create_session(ALICE).session_id
        except TooManySessionsError:
            return "refused"

    with ThreadPoolExecutor(CONTAINERS * 2) as pool:
        outcomes = list(pool.map(create, range(CONTAINERS * 2)))

    assert outcomes.count("refused") == CONTAINERS * 2 - 5
    assert len(containers[0].list_sessions(ALICE).sessions) == 5
