"""Concurrent posts racing for an owner's last tokens, as several Lambda containers make them: the chat
logic with the real DynamoDB store and counters against moto, one service ("container") per thread.
DynamoDB evaluates the reservation's condition on the counter item itself, so no interleaving lets the
turns together pass the limit (the in-memory interleavings: tests/unit/test_token_quotas.py)."""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import boto3
import pytest
from support.caches import reset_caches
from support.moto_atomic import make_dynamodb_atomic
from support.parallel import in_parallel

from chat import dependencies
from chatbot_security.conversation.conversations import Conversations
from chatbot_security.conversation.errors import QuotaExceededError
from chatbot_security.conversation.model_providers import ChatMessage, ModelAnswer, ModelStream
from chatbot_security.conversation.models import MessageRequest
from chatbot_security.conversation.token_usage import worst_case
from chatbot_security.identity.principal import Principal
from chatbot_security.platform.settings import get_settings
from chatbot_security.storage.usage import BUDGET_SHARDS, budget_pk, usage_pk, utc_day

ALICE = Principal(kind="user", subject="alice", issuer="https://issuer.example.test")
CONTAINERS = 8
CONTENT = "racing for the last tokens"


class SlowModel:
    """Slow enough for the posts to overlap; counts its calls. It reports more usage than any turn
    reserved, so that every answered turn keeps its whole reservation (settling never raises it)."""

    history_window = 0

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def reply(self, history: Sequence[ChatMessage], user_message: str) -> ModelAnswer:
        with self._lock:
            self.calls += 1
        time.sleep(0.05)
        return ModelAnswer("ok", input_tokens=10**6, output_tokens=10**6)

    def stream(self, history: Sequence[ChatMessage], user_message: str) -> ModelStream:
        raise NotImplementedError


@pytest.fixture
def model() -> SlowModel:
    return SlowModel()


def containers(monkeypatch: pytest.MonkeyPatch, model: SlowModel, **env: str) -> list[Conversations]:
    make_dynamodb_atomic(monkeypatch)
    for name, value in {"RATE_LIMIT_PER_MINUTE": "10000", "MODEL_MAX_TOKENS": "200", **env}.items():
        monkeypatch.setenv(name, value)
    reset_caches()
    build: Callable[[], Conversations] = dependencies.default_conversations.__wrapped__
    return [replace(build(), model=model) for _ in range(CONTAINERS)]


def turn_cost() -> int:
    return worst_case(get_settings(), [], CONTENT)


def post(service: Conversations, principal: Principal, session_id: str) -> str:
    message = MessageRequest(content=CONTENT, client_message_id=uuid.uuid4())
    try:
        service.post_message(principal, session_id, message)
    except QuotaExceededError:
        return "refused"
    return "answered"


def counter(table: str, pk: str, sk: str) -> int:
    item = boto3.client("dynamodb").get_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": sk}}).get("Item")
    return int(item["tokens"]["N"]) if item else 0


def test_concurrent_posts_never_take_an_owner_past_its_daily_quota(
    aws: Any, monkeypatch: pytest.MonkeyPatch, model: SlowModel
) -> None:
    monkeypatch.setenv("MODEL_MAX_TOKENS", "200")
    reset_caches()
    limit = 3 * turn_cost() + turn_cost() // 2  # room for three turns, not four
    services = containers(monkeypatch, model, TOKENS_PER_DAY=str(limit))
    sessions = [service.create_session(ALICE).session_id for service in services]

    outcomes = in_parallel([
        functools.partial(post, service, ALICE, session_id)
        for service, session_id in zip(services, sessions, strict=True)
    ])  # fmt: skip

    assert outcomes.count("answered") == 3
    assert outcomes.count("refused") == CONTAINERS - 3
    assert model.calls == 3
    owner = services[0].identity.owner_of(ALICE)
    assert counter(aws.table_name, usage_pk(owner, utc_day(time.time())[0]), "USAGE") <= limit


def test_concurrent_posts_of_many_owners_never_take_the_deployment_past_its_budget(
    aws: Any, monkeypatch: pytest.MonkeyPatch, model: SlowModel
) -> None:
    monkeypatch.setenv("MODEL_MAX_TOKENS", "200")
    reset_caches()
    budget = BUDGET_SHARDS * turn_cost()  # one turn per shard: eight turns for the whole deployment
    services = containers(monkeypatch, model, DAILY_TOKEN_BUDGET=str(budget))
    users = [Principal(kind="user", subject=f"user-{n}", issuer=ALICE.issuer) for n in range(2 * CONTAINERS)]
    calls: list[Callable[[], str]] = []
    for n, user in enumerate(users):
        service = services[n % CONTAINERS]
        calls.append(functools.partial(post, service, user, service.create_session(user).session_id))

    outcomes = in_parallel(calls)

    assert outcomes.count("answered") == BUDGET_SHARDS
    assert model.calls == BUDGET_SHARDS
    day = utc_day(time.time())[0]
    shards = [counter(aws.table_name, budget_pk(day, n), "BUDGET") for n in range(BUDGET_SHARDS)]
    assert sum(shards) <= budget
