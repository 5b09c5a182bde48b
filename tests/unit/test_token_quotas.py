"""Daily token quotas of a turn, on the in-memory fakes (the DynamoDB side: test_usage_store_contract.py
and test_quota_races.py): a turn reserves its worst case before the model call, in the claim, and no
owner can pass its daily limit, whatever it sends or repeats."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from support.clocks import ManualClock

from chatbot_security.conversation.errors import ModelProviderError, ModelTimeoutError, QuotaExceededError
from chatbot_security.conversation.model_providers import ChatMessage, ModelAnswer, ModelStream
from chatbot_security.conversation.models import MessageRequest
from chatbot_security.conversation.token_usage import worst_case
from chatbot_security.identity.principal import Principal
from chatbot_security.platform.settings import Settings
from tools.fakes import InMemorySessionStore, in_memory_conversations

ISSUER = "https://issuer.example.test"
ALICE = Principal(kind="user", subject="alice", issuer=ISSUER)
BOB = Principal(kind="user", subject="bob", issuer=ISSUER)
DAY = 1_800_057_600  # 2027-01-16T00:00:00Z
NOON = DAY + 12 * 3600


class CountingModel:
    """Answers at once (no history asked for) with the usage it is given, counting its calls; or raises
    ``error``."""

    history_window = 0

    def __init__(self, error: Exception | None = None, usage: tuple[int, int] | None = None) -> None:
        self.calls = 0
        self.error = error
        self.usage = usage

    def reply(self, history: Sequence[ChatMessage], user_message: str) -> ModelAnswer:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return self.answer()

    def answer(self) -> ModelAnswer:
        input_tokens, output_tokens = self.usage or (10**9, 10**9)  # no usage given: more than reserved
        return ModelAnswer("ok", input_tokens, output_tokens)

    def stream(self, history: Sequence[ChatMessage], user_message: str) -> ModelStream:
        raise NotImplementedError


def settings(**env: str) -> Settings:
    return Settings.model_validate({"OIDC_ISSUER": ISSUER, "MODEL_MAX_TOKENS": "100", **env})


def turn_cost(config: Settings, content: str = "hello") -> int:
    return worst_case(config, [], content)


def request(content: str = "hello", client_message_id: str | None = None) -> MessageRequest:
    return MessageRequest.model_validate({"content": content, "client_message_id": client_message_id})


def service_for(model: Any, config: Settings, clock: ManualClock | None = None, store: Any = None) -> Any:
    store = store or InMemorySessionStore()
    return in_memory_conversations(model, config, clock=clock or ManualClock(NOON), store=store)


def used_today(service: Any, principal: Principal) -> int:
    owner = service.identity.owner_of(principal)
    return int(service.quotas.report(owner, principal.kind).tokens_used)


def test_a_turn_past_the_daily_quota_is_429_quota_exceeded_and_calls_no_model() -> None:
    config = settings()
    config = settings(TOKENS_PER_DAY=str(2 * turn_cost(config)))
    model = CountingModel()
    service = service_for(model, config, ManualClock(DAY + 86400 - 3600.5))
    session_id = service.create_session(ALICE).session_id
    for _ in range(2):
        service.post_message(ALICE, session_id, request())

    with pytest.raises(QuotaExceededError) as refused:
        service.post_message(ALICE, session_id, request())

    assert (refused.value.status, refused.value.code) == (429, "quota_exceeded")
    assert refused.value.retry_after_seconds == 3601  # until the next UTC midnight
    assert model.calls == 2
    assert service.list_messages(ALICE, session_id, 10, None).messages[-1].content == "ok"
    assert len(service.list_messages(ALICE, session_id, 10, None).messages) == 4


def test_a_refused_turn_stores_nothing_and_charges_nothing() -> None:
    config = settings(TOKENS_PER_DAY=str(turn_cost(settings()) + 10))
    service = service_for(CountingModel(), config)
    session_id = service.create_session(ALICE).session_id
    service.post_message(ALICE, session_id, request())
    before = used_today(service, ALICE)

    with pytest.raises(QuotaExceededError):
        service.post_message(ALICE, session_id, request(client_message_id=str(uuid.uuid4())))

    assert used_today(service, ALICE) == before
    assert service.get_session(ALICE, session_id).message_count == 2
    assert not service.store.turns  # no claim was left behind


def test_a_message_whose_worst_case_exceeds_the_whole_quota_is_refused_at_once() -> None:
    config = settings(TOKENS_PER_DAY=str(turn_cost(settings(), "x") + 5))
    model = CountingModel()
    service = service_for(model, config)
    session_id = service.create_session(ALICE).session_id

    with pytest.raises(QuotaExceededError):
        service.post_message(ALICE, session_id, request("x" * 10))

    assert model.calls == 0
    assert used_today(service, ALICE) == 0


def test_anonymous_sessions_have_the_smaller_anonymous_quota() -> None:
    cost = turn_cost(settings())
    config = settings(TOKENS_PER_DAY=str(10 * cost), ANON_TOKENS_PER_DAY=str(cost), ALLOW_ANONYMOUS="true")
    service = service_for(CountingModel(), config)
    anonymous = service.create_anonymous_session("198.51.100.7")
    visitor = Principal(kind="anonymous", subject=anonymous.session_id, session_id=anonymous.session_id)
    service.post_message(visitor, anonymous.session_id, request())
    user_session = service.create_session(ALICE).session_id
    service.post_message(ALICE, user_session, request())

    with pytest.raises(QuotaExceededError):
        service.post_message(visitor, anonymous.session_id, request())
    service.post_message(ALICE, user_session, request())  # the signed-in user has room left


def test_each_owner_has_its_own_quota() -> None:
    config = settings(TOKENS_PER_DAY=str(turn_cost(settings())))
    service = service_for(CountingModel(), config)
    alice_session = service.create_session(ALICE).session_id
    service.post_message(ALICE, alice_session, request())

    bob_session = service.create_session(BOB).session_id
    service.post_message(BOB, bob_session, request())


def test_the_quota_counts_every_session_of_the_owner() -> None:
    config = settings(TOKENS_PER_DAY=str(turn_cost(settings())))
    service = service_for(CountingModel(), config)
    service.post_message(ALICE, service.create_session(ALICE).session_id, request())

    with pytest.raises(QuotaExceededError):
        service.post_message(ALICE, service.create_session(ALICE).session_id, request())


def test_a_new_utc_day_gives_the_quota_back() -> None:
    clock = ManualClock(DAY + 86400 - 1)
    config = settings(TOKENS_PER_DAY=str(turn_cost(settings())))
    service = service_for(CountingModel(), config, clock)
    session_id = service.create_session(ALICE).session_id
    service.post_message(ALICE, session_id, request())
    with pytest.raises(QuotaExceededError) as refused:
        service.post_message(ALICE, session_id, request())
    assert refused.value.retry_after_seconds == 1

    clock.now = DAY + 86400

    service.post_message(ALICE, session_id, request())


def test_repeating_a_finished_turn_costs_nothing_even_when_the_quota_is_spent() -> None:
    config = settings(TOKENS_PER_DAY=str(turn_cost(settings())))
    model = CountingModel()
    service = service_for(model, config)
    session_id = service.create_session(ALICE).session_id
    first = service.post_message(ALICE, session_id, request(client_message_id="8c6b1a52-3c1d-4f8e-9a2b-5d4c3e2f1a0b"))
    spent = used_today(service, ALICE)

    again = service.post_message(ALICE, session_id, request(client_message_id="8c6b1a52-3c1d-4f8e-9a2b-5d4c3e2f1a0b"))

    assert again == first
    assert used_today(service, ALICE) == spent
    assert model.calls == 1


def test_a_model_call_that_fails_without_answering_gives_the_reservation_back() -> None:
    service = service_for(CountingModel(ModelProviderError()), settings())
    session_id = service.create_session(ALICE).session_id

    with pytest.raises(ModelProviderError):
        service.post_message(ALICE, session_id, request(client_message_id=str(uuid.uuid4())))

    assert used_today(service, ALICE) == 0
    assert not service.store.turns  # the claim went with it


def test_a_model_call_that_timed_out_keeps_its_reservation() -> None:
    # The model may have spent the tokens before the answer was given up: never a free retry loop.
    config = settings()
    service = service_for(CountingModel(ModelTimeoutError()), config)
    session_id = service.create_session(ALICE).session_id

    with pytest.raises(ModelTimeoutError):
        service.post_message(ALICE, session_id, request())

    assert used_today(service, ALICE) == turn_cost(config)


def test_while_the_model_answers_the_turn_holds_its_worst_case() -> None:
    config = settings()
    seen: list[int] = []

    class Watching(CountingModel):
        def reply(self, history: Sequence[ChatMessage], user_message: str) -> ModelAnswer:
            seen.append(used_today(service, ALICE))
            return self.answer()

    service = service_for(Watching(), config)
    session_id = service.create_session(ALICE).session_id

    service.post_message(ALICE, session_id, request())

    assert seen == [turn_cost(config)]


def test_two_turns_racing_for_the_last_tokens_cannot_both_take_them() -> None:
    # A deterministic interleaving: the second turn claims while the first one's model is answering.
    config = settings()
    config = settings(TOKENS_PER_DAY=str(turn_cost(config) * 3 // 2))
    entered, release = threading.Event(), threading.Event()

    class Gated(CountingModel):
        def reply(self, history: Sequence[ChatMessage], user_message: str) -> ModelAnswer:
            self.calls += 1
            entered.set()
            assert release.wait(10)
            return self.answer()

    model = Gated()
    service = service_for(model, config)
    first_session, second_session = (service.create_session(ALICE).session_id for _ in range(2))
    outcome: list[Any] = []
    first = threading.Thread(target=lambda: outcome.append(service.post_message(ALICE, first_session, request())))
    first.start()
    assert entered.wait(10)

    with pytest.raises(QuotaExceededError):
        service.post_message(ALICE, second_session, request())

    release.set()
    first.join(10)
    assert len(outcome) == 1
    assert model.calls == 1
    assert used_today(service, ALICE) <= int(config.tokens_per_day)


def test_the_deployment_budget_stops_every_owner_once_spent() -> None:
    cost = turn_cost(settings())
    # 8 shards of two turns each: 16 turns in all, whoever asks.
    config = settings(TOKENS_PER_DAY=str(100 * cost), DAILY_TOKEN_BUDGET=str(8 * 2 * cost))
    service = service_for(CountingModel(), config)
    users = [Principal(kind="user", subject=f"user-{n}", issuer=ISSUER) for n in range(4)]
    sessions = {user.subject: service.create_session(user).session_id for user in users}
    answered = 0
    for _ in range(5):
        for user in users:
            try:
                service.post_message(user, sessions[user.subject], request())
            except QuotaExceededError:
                continue
            answered += 1

    assert answered == 16
    for user in users:
        with pytest.raises(QuotaExceededError):
            service.post_message(user, sessions[user.subject], request())


def test_a_claimed_turn_carries_its_reservation_to_the_worker_that_answers_it() -> None:
    from chatbot_security.conversation.turn_claims import ClaimedTurn

    service = service_for(CountingModel(), settings())
    session_id = service.create_session(ALICE).session_id
    claimed = service.turns.claim(service.owner(ALICE), session_id, request(client_message_id=str(uuid.uuid4())))

    again = ClaimedTurn.from_event(json.loads(json.dumps(claimed.to_event())))

    assert again.reservation == claimed.reservation is not None
    assert used_today(service, ALICE) == claimed.reservation.tokens


@pytest.mark.parametrize(
    "change",
    [
        lambda event: event.pop("reservation"),
        lambda event: event.update(reservation=None),
        lambda event: event["reservation"].update(tokens="1"),
        lambda event: event["reservation"].update(extra=1),
    ],
)
def test_a_claimed_turn_without_a_valid_reservation_is_never_answered(change: Any) -> None:
    from chatbot_security.conversation.turn_claims import ClaimedTurn

    service = service_for(CountingModel(), settings())
    session_id = service.create_session(ALICE).session_id
    event = service.turns.claim(service.owner(ALICE), session_id, request()).to_event()
    change(event)

    with pytest.raises(ValueError, match="not a reservation"):
        ClaimedTurn.from_event(event)


def test_a_stored_turn_settles_to_the_tokens_the_model_reported() -> None:
    service = service_for(CountingModel(usage=(30, 7)), settings())
    session_id = service.create_session(ALICE).session_id

    service.post_message(ALICE, session_id, request())

    assert used_today(service, ALICE) == 37


def test_the_answer_is_stored_with_its_token_counts() -> None:
    service = service_for(CountingModel(usage=(30, 7)), settings())
    session_id = service.create_session(ALICE).session_id

    service.post_message(ALICE, session_id, request())

    question, answer = sorted(service.store.message_items[session_id].values(), key=lambda record: record.seq)
    assert (question.tokens, answer.tokens) == (None, (30, 7))


def test_a_stored_turn_publishes_its_usage_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    service = service_for(CountingModel(usage=(30, 7)), settings(MODEL_ID="model-a"))
    session_id = service.create_session(ALICE).session_id

    service.post_message(ALICE, session_id, request())

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"Model"' in line]
    published = {name: line[name] for line in lines for name in line if name.startswith("Model") and name != "Model"}
    assert published["ModelInputTokens"] == [30.0]
    assert published["ModelOutputTokens"] == [7.0]
    assert {line["Model"] for line in lines} == {"model-a"}
