"""A chat turn in the logic layer, on in-memory fakes: masking (rule 9), idempotent posts, failures that
store nothing, and the model seeing only the caller's own session (rule 10)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from chatbot_security.conversation.errors import (
    IdempotencyConflictError,
    ModelProviderError,
    ModelTimeoutError,
    NotFoundError,
    RateLimitedError,
    SessionFullError,
)
from chatbot_security.conversation.model_providers import ChatMessage, EchoModel, ModelAnswer
from chatbot_security.conversation.models import MessageRequest
from chatbot_security.identity.principal import Principal
from chatbot_security.platform.settings import Settings
from chatbot_security.privacy import crypto
from chatbot_security.storage.records import TurnClaim
from tools.fakes import InMemorySessionStore, in_memory_conversations

ISSUER = "https://issuer.example.test"
ALICE = Principal(kind="user", subject="alice", issuer=ISSUER)
BOB = Principal(kind="user", subject="bob", issuer=ISSUER)


class RecordingModel:
    """Answers like echo and remembers what it was shown."""

    def __init__(self, history_window: int = 20) -> None:
        self.history_window = history_window
        self.seen: list[tuple[list[ChatMessage], str]] = []

    def reply(self, history: Sequence[ChatMessage], user_message: str) -> ModelAnswer:
        self.seen.append((list(history), user_message))
        return ModelAnswer(f"answer {len(self.seen)}", 1, 1)


class FailingModel:
    history_window = 0

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    def reply(self, history: Sequence[ChatMessage], user_message: str) -> ModelAnswer:
        self.calls += 1
        raise self.error


class GatedModel:
    """Blocks inside reply() until released, so a second request can arrive meanwhile."""

    history_window = 0

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def reply(self, history: Sequence[ChatMessage], user_message: str) -> ModelAnswer:
        self.calls += 1
        self.entered.set()
        assert self.release.wait(10)
        return ModelAnswer("the only answer", 1, 1)


def settings(**env: str) -> Settings:
    return Settings.model_validate({"OIDC_ISSUER": ISSUER, **env})


def request(content: str, client_message_id: str | None = None) -> MessageRequest:
    return MessageRequest.model_validate({"content": content, "client_message_id": client_message_id})


def stored_plaintexts(service: Any, session_id: str) -> list[str]:
    store: InMemorySessionStore = service.store
    key = service.data_keys.unwrap(session_id, store.sessions[session_id].wrapped_key)
    items = store.message_items[session_id]
    return [
        crypto.open_sealed(
            key,
            crypto.MessageBinding(session_id, items[seq].message_id, items[seq].role, seq, items[seq].created_at),
            items[seq].content,
        )
        for seq in sorted(items)
    ]


# -- rule 9: masking --------------------------------------------------------------------------
def test_pii_is_masked_before_the_model_sees_it_and_before_it_is_stored() -> None:
    model = RecordingModel()
    service = in_memory_conversations(model)
    session_id = service.create_session(ALICE).session_id

    turn = service.post_message(ALICE, session_id, request("mail jane@example.org or call +44 20 7946 0958"))

    assert model.seen[0][1] == "mail [EMAIL] or call [PHONE]"
    assert stored_plaintexts(service, session_id)[0] == "mail [EMAIL] or call [PHONE]"
    assert turn.user_message.content == "mail [EMAIL] or call [PHONE]"


def test_pii_in_the_model_answer_is_masked_before_it_is_stored() -> None:
    class Leaky(RecordingModel):
        def reply(self, history: Sequence[ChatMessage], user_message: str) -> ModelAnswer:
            return ModelAnswer("write to support@example.com", 1, 1)

    service = in_memory_conversations(Leaky())
    session_id = service.create_session(ALICE).session_id

    turn = service.post_message(ALICE, session_id, request("hi"))

    assert turn.assistant_message.content == "write to [EMAIL]"
    assert stored_plaintexts(service, session_id)[1] == "write to [EMAIL]"


def test_pii_masking_can_be_switched_off() -> None:
    model = RecordingModel()
    service = in_memory_conversations(model, settings(PII_MASKING="false"))
    session_id = service.create_session(ALICE).session_id

    service.post_message(ALICE, session_id, request("mail jane@example.org"))

    assert model.seen[0][1] == "mail jane@example.org"


# -- rule 10: the model sees the caller's own session only -------------------------------------
def test_the_model_sees_only_the_history_of_the_callers_session() -> None:
    model = RecordingModel()
    service = in_memory_conversations(model)
    mine = service.create_session(ALICE).session_id
    theirs = service.create_session(BOB).session_id
    service.post_message(BOB, theirs, request("bob's secret"))
    service.post_message(ALICE, mine, request("first"))

    service.post_message(ALICE, mine, request("second"))

    history, text = model.seen[-1]
    assert text == "second"
    assert [(m.role, m.content) for m in history] == [("user", "first"), ("assistant", "answer 2")]


def test_the_history_is_limited_to_the_providers_window() -> None:
    model = RecordingModel(history_window=4)
    service = in_memory_conversations(model)
    session_id = service.create_session(ALICE).session_id
    for n in range(5):
        service.post_message(ALICE, session_id, request(f"q{n}"))

    history, _ = model.seen[-1]

    assert [m.content for m in history] == ["q2", "answer 3", "q3", "answer 4"]


# -- idempotent posts -------------------------------------------------------------------------
def test_a_repeated_client_message_id_returns_the_first_answer_without_a_second_model_call() -> None:
    model = RecordingModel()
    service = in_memory_conversations(model)
    session_id = service.create_session(ALICE).session_id
    client_id = str(uuid.uuid4())

    first = service.post_message(ALICE, session_id, request("hello", client_id))
    again = service.post_message(ALICE, session_id, request("hello", client_id))

    assert again == first
    assert len(model.seen) == 1
    assert service.get_session(ALICE, session_id).message_count == 2


def test_a_client_message_id_reused_for_other_content_is_refused() -> None:
    service = in_memory_conversations(RecordingModel())
    session_id = service.create_session(ALICE).session_id
    client_id = str(uuid.uuid4())
    service.post_message(ALICE, session_id, request("hello", client_id))

    with pytest.raises(IdempotencyConflictError):
        service.post_message(ALICE, session_id, request("something else", client_id))


def test_the_idempotency_record_keeps_a_keyed_hash_of_the_masked_content_only() -> None:
    service = in_memory_conversations(RecordingModel())
    session_id = service.create_session(ALICE).session_id
    client_id = str(uuid.uuid4())

    service.post_message(ALICE, session_id, request("call me at 415-555-2671", client_id))

    [record] = service.store.turns.values()
    masked = service.identity.request_fingerprint(session_id, client_id, "call me at [PHONE]")
    assert record.fingerprint == masked
    assert "415" not in repr(record)


def test_the_same_client_message_id_in_another_session_is_a_new_message() -> None:
    model = RecordingModel()
    service = in_memory_conversations(model)
    first, second = (service.create_session(ALICE).session_id for _ in range(2))
    client_id = str(uuid.uuid4())

    one = service.post_message(ALICE, first, request("hello", client_id))
    two = service.post_message(ALICE, second, request("hello", client_id))

    assert one.user_message.message_id != two.user_message.message_id
    assert len(model.seen) == 2


def test_concurrent_retries_call_the_model_once_and_store_one_turn() -> None:
    model = GatedModel()
    service = in_memory_conversations(model)
    session_id = service.create_session(ALICE).session_id
    client_id = str(uuid.uuid4())
    results: list[Any] = []

    first = threading.Thread(
        target=lambda: results.append(service.post_message(ALICE, session_id, request("hi", client_id)))
    )
    first.start()
    assert model.entered.wait(5)
    second = threading.Thread(
        target=lambda: results.append(service.post_message(ALICE, session_id, request("hi", client_id)))
    )
    second.start()
    second.join(0.3)  # the retry is waiting for the first attempt, not calling the model
    model.release.set()
    first.join(10)
    second.join(10)

    assert model.calls == 1
    assert len(results) == 2
    assert results[0] == results[1]
    assert service.get_session(ALICE, session_id).message_count == 2


def test_a_retry_while_the_first_attempt_never_finishes_is_a_504() -> None:
    model = GatedModel()
    service = in_memory_conversations(model, settings(MODEL_TIMEOUT_SECONDS="1"), sleep=lambda seconds: None)
    session_id = service.create_session(ALICE).session_id
    client_id = str(uuid.uuid4())
    first = threading.Thread(target=lambda: service.post_message(ALICE, session_id, request("hi", client_id)))
    first.start()
    assert model.entered.wait(5)

    with pytest.raises(ModelTimeoutError):
        service.post_message(ALICE, session_id, request("hi", client_id))

    model.release.set()
    first.join(10)


def test_an_abandoned_claim_is_taken_over_after_its_lease() -> None:
    clock = [1_800_000_000.0]
    model = RecordingModel()
    service = in_memory_conversations(model, clock=lambda: clock[0])
    session_id = service.create_session(ALICE).session_id
    client_id = str(uuid.uuid4())
    charge = service.rate_limiter.charge("post", "x", 100, 60)
    claim = TurnClaim(session_id, client_id, service.identity.request_fingerprint(session_id, client_id, "hi"),
                      "dead-attempt", int(clock[0]), int(clock[0]) + 60, ttl=int(clock[0]) + 86400)  # fmt: skip
    session = service.store.sessions[session_id]
    service.store.claim_turn(claim, session, 198, charge)  # a container that died after claiming
    clock[0] += 61

    turn = service.post_message(ALICE, session_id, request("hi", client_id))

    assert turn.assistant_message.content == "answer 1"
    assert len(model.seen) == 1


def test_the_repeat_of_the_turn_that_filled_the_session_still_gets_its_answer() -> None:
    service = in_memory_conversations(RecordingModel(), settings(MAX_MESSAGES_PER_SESSION="2"))
    session_id = service.create_session(ALICE).session_id
    client_id = str(uuid.uuid4())
    first = service.post_message(ALICE, session_id, request("last one", client_id))

    assert service.post_message(ALICE, session_id, request("last one", client_id)) == first
    with pytest.raises(SessionFullError):
        service.post_message(ALICE, session_id, request("one more", str(uuid.uuid4())))


def test_a_repeat_is_not_counted_by_the_rate_limit() -> None:
    service = in_memory_conversations(RecordingModel(), settings(RATE_LIMIT_PER_MINUTE="1"))
    session_id = service.create_session(ALICE).session_id
    client_id = str(uuid.uuid4())
    first = service.post_message(ALICE, session_id, request("hello", client_id))

    assert service.post_message(ALICE, session_id, request("hello", client_id)) == first
    with pytest.raises(RateLimitedError):
        service.post_message(ALICE, session_id, request("new", str(uuid.uuid4())))


# -- failures store nothing -------------------------------------------------------------------
@pytest.mark.parametrize("error", [ModelProviderError(), ModelTimeoutError()], ids=["502", "504"])
def test_a_failed_model_call_stores_nothing(error: Exception) -> None:
    service = in_memory_conversations(FailingModel(error))
    session_id = service.create_session(ALICE).session_id

    with pytest.raises(type(error)):
        service.post_message(ALICE, session_id, request("hello"))

    assert service.store.message_items[session_id] == {}
    assert service.get_session(ALICE, session_id).message_count == 0


def test_a_retry_after_a_failed_model_call_asks_the_model_again() -> None:
    failing = FailingModel(ModelProviderError())
    service = in_memory_conversations(failing)
    session_id = service.create_session(ALICE).session_id
    client_id = str(uuid.uuid4())
    with pytest.raises(ModelProviderError):
        service.post_message(ALICE, session_id, request("hello", client_id))

    service.model = RecordingModel()
    turn = service.post_message(ALICE, session_id, request("hello", client_id))

    assert turn.assistant_message.content == "answer 1"
    assert service.get_session(ALICE, session_id).message_count == 2


def test_a_turn_racing_another_turn_is_written_after_it() -> None:
    service = in_memory_conversations(EchoModel())
    session_id = service.create_session(ALICE).session_id
    store: InMemorySessionStore = service.store
    real_append = store.append_turn
    raced: list[bool] = []

    def append_after_a_rival(session: Any, messages: Any, now: int, claim: Any = None, settlement: Any = None) -> Any:
        if not raced:
            raced.append(True)
            rival = service.post_message  # another container's turn lands first
            rival(ALICE, session_id, request("rival"))
        return real_append(session, messages, now, claim, settlement)

    store.append_turn = append_after_a_rival  # type: ignore[method-assign]
    turn = service.post_message(ALICE, session_id, request("mine"))

    page = service.list_messages(ALICE, session_id, 10, None)
    assert [m.content for m in page.messages] == ["rival", "You said: rival", "mine", "You said: mine"]
    assert page.messages[2].message_id == turn.user_message.message_id


# -- ownership --------------------------------------------------------------------------------
def test_posting_to_another_users_session_is_404_and_reaches_no_model() -> None:
    model = RecordingModel()
    service = in_memory_conversations(model)
    session_id = service.create_session(ALICE).session_id

    with pytest.raises(NotFoundError):
        service.post_message(BOB, session_id, request("hijack", str(uuid.uuid4())))
    assert model.seen == []


def test_an_anonymous_token_looks_up_no_other_session() -> None:
    service = in_memory_conversations(RecordingModel())
    other = service.create_session(ALICE).session_id
    visitor = Principal(kind="anonymous", subject=str(uuid.uuid4()), session_id=str(uuid.uuid4()))
    service.store.calls.clear()

    with pytest.raises(NotFoundError):
        service.post_message(visitor, other, request("hi"))
    assert service.store.calls == []
