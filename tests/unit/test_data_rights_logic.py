"""The caller's own data rights in the logic layer, on in-memory fakes: the export returns everything held
about the caller and nothing of anyone else, one bounded page at a time, behind cursors that cannot be
bent to another owner; the erasure removes every session, message and idempotency record of the caller,
keeps the counters, keeps going past a failing step and is audited."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.flaky_store import FlakyStore

from chatbot_security.conversation.cursors import encode_cursor
from chatbot_security.conversation.data_rights import DataRights, ExportPage
from chatbot_security.conversation.errors import NotFoundError, SchemaError, ServiceUnavailableError
from chatbot_security.conversation.model_providers import EchoModel
from chatbot_security.conversation.models import MessageRequest, UsageReport
from chatbot_security.conversation.owner import Owner
from chatbot_security.identity.principal import Principal
from chatbot_security.platform import audit
from chatbot_security.platform.settings import Settings
from tools.fakes import InMemorySessionStore, in_memory_conversations

ISSUER = "https://issuer.example.test"
ALICE = Principal(kind="user", subject="alice", issuer=ISSUER)
BOB = Principal(kind="user", subject="bob", issuer=ISSUER)
LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024
ROOMY = {
    "RATE_LIMIT_PER_MINUTE": "10000",
    "SESSIONS_PER_HOUR": "10000",
    "MAX_MESSAGE_CHARS": "100000",
    "TOKENS_PER_DAY": "100000000",
}


class TickingClock:
    """Now, one millisecond later at every reading: no two sessions are created at the same time."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


def service(store: InMemorySessionStore | None = None) -> Any:
    settings = Settings.model_validate({"OIDC_ISSUER": ISSUER, **ROOMY})
    return in_memory_conversations(EchoModel(), settings, store=store or InMemorySessionStore(), clock=TickingClock())


@dataclass
class Rights:
    """The data-rights logic, called with the caller's principal as the front door does."""

    chat: Any
    logic: DataRights

    def export(self, principal: Principal, limit: int = 50, cursor: str | None = None) -> ExportPage:
        return self.logic.export(self.chat.owner(principal), limit, cursor)

    def erase(self, principal: Principal) -> int:
        return self.logic.erase(self.chat.owner(principal))


def rights_of(chat: Any, **overrides: Any) -> Rights:
    return Rights(chat, DataRights(chat.store, chat.data_keys, chat.identity, chat.erasure, chat.clock, **overrides))


def seed(chat: Any, principal: Principal, turns_per_session: list[int], text: str = "words of") -> dict[str, list[str]]:
    """Sessions of ``principal`` with the given number of turns each; {session id: its contents, in order}."""
    held: dict[str, list[str]] = {}
    for turns in turns_per_session:
        session_id = chat.create_session(principal).session_id
        held[session_id] = []
        for n in range(turns):
            turn = chat.post_message(principal, session_id, MessageRequest(content=f"{text} {principal.subject} {n}"))
            held[session_id] += [turn.user_message.content, turn.assistant_message.content]
    return held


def export_all(rights: Rights, principal: Principal, limit: int) -> tuple[dict[str, list[str]], list[ExportPage]]:
    """Every page of the export; {session id: its contents} joined across pages, and the pages."""
    pages: list[ExportPage] = []
    cursor: str | None = None
    while True:
        page = rights.export(principal, limit, cursor)
        pages.append(page)
        cursor = page.next_cursor
        if cursor is None:
            break
        assert len(pages) < 1000
    joined: dict[str, list[str]] = {}
    for page in pages:
        for session in page.sessions:
            joined.setdefault(session.session_id, []).extend(message.content for message in session.messages)
    return joined, pages


def audit_events(log_output: Any) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in log_output.getvalue().splitlines() if line.strip()]
    return [line["audit"] for line in lines if line.get("message") == audit.AUDIT_MESSAGE]


# -- export -----------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(turns=st.lists(st.integers(min_value=0, max_value=6), min_size=0, max_size=6), limit=st.integers(1, 7))
def test_the_union_of_the_export_pages_is_exactly_the_callers_data(turns: list[int], limit: int) -> None:
    chat = service()
    alices = seed(chat, ALICE, turns)
    seed(chat, BOB, [2, 1], text="bob's secret")

    joined, pages = export_all(rights_of(chat), ALICE, limit)

    assert joined == alices
    assert all(sum(len(session.messages) for session in page.sessions) <= limit for page in pages)
    assert all(len(page.sessions) <= limit for page in pages)


def test_a_user_with_many_sessions_and_messages_gets_them_all_across_pages_in_order() -> None:
    chat = service()
    alices = seed(chat, ALICE, [30, 0, 12, 45])

    joined, pages = export_all(rights_of(chat), ALICE, 50)

    assert list(joined) == list(alices)  # oldest session first
    assert joined == alices
    assert len(pages) == 1 + (2 * (30 + 12 + 45) - 1) // 50


def test_the_export_shows_nothing_of_another_user() -> None:
    chat = service()
    seed(chat, ALICE, [2])
    bobs = seed(chat, BOB, [3], text="bob's secret")

    joined, _ = export_all(rights_of(chat), ALICE, 100)

    assert not set(joined) & set(bobs)
    assert "bob's secret" not in json.dumps([page.model_dump() for page in export_all(rights_of(chat), ALICE, 1)[1]])


def test_an_exported_session_carries_its_fields_and_decrypted_messages() -> None:
    chat = service()
    session_id = next(iter(seed(chat, ALICE, [1])))

    page = rights_of(chat).export(ALICE)

    [session] = page.sessions
    assert session.model_dump(exclude={"messages"}) == chat.get_session(ALICE, session_id).model_dump()
    assert [message.role for message in session.messages] == ["user", "assistant"]
    assert session.messages[0].content == "words of alice 0"
    assert page.next_cursor is None


def test_a_user_without_sessions_exports_an_empty_page() -> None:
    assert rights_of(service()).export(ALICE) == ExportPage(sessions=[], next_cursor=None)


def test_an_anonymous_token_exports_its_own_session_only() -> None:
    chat = service()
    seed(chat, ALICE, [2])
    mine = chat.create_anonymous_session("198.51.100.7")
    other = chat.create_anonymous_session("198.51.100.8")
    visitor = Principal(kind="anonymous", subject=mine.session_id, session_id=mine.session_id)
    stranger = Principal(kind="anonymous", subject=other.session_id, session_id=other.session_id)
    chat.post_message(visitor, mine.session_id, MessageRequest(content="visitor words"))
    chat.post_message(stranger, other.session_id, MessageRequest(content="stranger words"))

    joined, pages = export_all(rights_of(chat), visitor, 1)

    assert list(joined) == [mine.session_id]
    assert joined[mine.session_id][0] == "visitor words"
    assert len(pages) == 2


def test_an_anonymous_token_whose_session_is_gone_is_refused() -> None:
    chat = service()
    mine = chat.create_anonymous_session("198.51.100.7")
    visitor = Principal(kind="anonymous", subject=mine.session_id, session_id=mine.session_id)
    chat.delete_session(visitor, mine.session_id)

    with pytest.raises(NotFoundError):
        rights_of(chat).export(visitor)


def test_another_users_cursor_is_refused() -> None:
    chat = service()
    seed(chat, ALICE, [3])
    seed(chat, BOB, [3])
    bobs_cursor = rights_of(chat).export(BOB, 1).next_cursor
    assert bobs_cursor is not None

    with pytest.raises(SchemaError):
        rights_of(chat).export(ALICE, 1, bobs_cursor)


def test_a_tampered_cursor_is_refused() -> None:
    chat = service()
    seed(chat, ALICE, [3])
    cursor = rights_of(chat).export(ALICE, 1).next_cursor
    assert cursor is not None
    flipped = cursor[:5] + ("A" if cursor[5] != "A" else "B") + cursor[6:]

    for forged in (flipped, cursor[:-2], cursor + "AA", "not-a-cursor"):
        with pytest.raises(SchemaError):
            rights_of(chat).export(ALICE, 1, forged)


def test_a_message_listing_cursor_is_no_export_cursor() -> None:
    chat = service()
    session_id = next(iter(seed(chat, ALICE, [3])))
    listing = encode_cursor(chat.identity.cursor_key, session_id, 2)

    with pytest.raises(SchemaError):
        rights_of(chat).export(ALICE, 1, listing)


def test_a_cursor_into_a_session_deleted_meanwhile_goes_on_with_the_next_one() -> None:
    chat = service()
    first, second = seed(chat, ALICE, [2, 1])
    cursor = rights_of(chat).export(ALICE, 1).next_cursor
    chat.delete_session(ALICE, first)

    page = rights_of(chat).export(ALICE, 100, cursor)

    assert [session.session_id for session in page.sessions] == [second]


def test_every_page_of_a_heavy_user_stays_under_the_lambda_response_limit() -> None:
    # Given messages as large as the API allows, of characters that take the most bytes once escaped
    chat = service()
    heavy = "\U0001f600" * 99_000
    seed(chat, ALICE, [12], text=heavy)

    _, pages = export_all(rights_of(chat), ALICE, 100)

    # Then each page, as the runtime writes it inside the response document, is under 6 MB
    for page in pages:
        response = {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": page.model_dump_json()}
        assert len(json.dumps(response).encode()) < LAMBDA_RESPONSE_LIMIT
    assert len(pages) > 1
    assert sum(len(session.messages) for page in pages for session in page.sessions) == 24


def test_a_single_message_larger_than_the_page_budget_still_makes_progress() -> None:
    chat = service()
    alices = seed(chat, ALICE, [3], text="x" * 500)

    joined, pages = export_all(rights_of(chat, page_bytes=100), ALICE, 100)

    assert joined == alices
    assert len(pages) == 6


# -- erasure ----------------------------------------------------------------------------------
def test_erasure_removes_every_session_message_and_idempotency_record_of_the_caller_only() -> None:
    chat = service()
    store: InMemorySessionStore = chat.store
    alices = seed(chat, ALICE, [2, 0, 1])
    chat.post_message(ALICE, next(iter(alices)), MessageRequest(content="hi", client_message_id=uuid.uuid4()))
    bobs = seed(chat, BOB, [1])

    assert rights_of(chat).erase(ALICE) == 3

    assert set(store.sessions) == set(bobs)
    assert not any(store.message_items.get(session_id) for session_id in alices)
    assert not any(session_id in alices for session_id, _ in store.turns)
    assert chat.identity.owner_of(ALICE) not in store.live


def test_erasure_keeps_the_rate_counters() -> None:
    chat = service()
    store: InMemorySessionStore = chat.store
    seed(chat, ALICE, [2])
    counters = dict(store.counters)

    rights_of(chat).erase(ALICE)

    assert store.counters == counters
    assert any(chat.identity.owner_of(ALICE) in pk for pk, _ in counters)


def test_an_anonymous_erasure_erases_its_session_and_the_token_is_refused_afterwards() -> None:
    chat = service()
    alices = seed(chat, ALICE, [1])
    mine = chat.create_anonymous_session("198.51.100.7")
    visitor = Principal(kind="anonymous", subject=mine.session_id, session_id=mine.session_id)
    chat.post_message(visitor, mine.session_id, MessageRequest(content="visitor words"))

    assert rights_of(chat).erase(visitor) == 1

    assert set(chat.store.sessions) == set(alices)
    for refused in (lambda: rights_of(chat).erase(visitor), lambda: rights_of(chat).export(visitor)):
        with pytest.raises(NotFoundError):
            refused()


def test_an_erasure_step_that_fails_leaves_the_others_done_and_is_a_503_a_retry_finishes(log_output: Any) -> None:
    store = FlakyStore()
    chat = service(store)
    alices = list(seed(chat, ALICE, [1, 1, 1]))
    store.failures[alices[1]] = 1

    with pytest.raises(ServiceUnavailableError):
        rights_of(chat).erase(ALICE)

    assert set(store.sessions) == {alices[1]}
    assert rights_of(chat).erase(ALICE) == 1
    assert store.sessions == {}
    outcomes = [(event["action"], event["count"], event["outcome"]) for event in audit_events(log_output)]
    assert outcomes == [("erase_own_data", 2, "incomplete"), ("erase_own_data", 1, "erased")]


def test_erasure_is_audited_with_the_callers_hash_only(log_output: Any) -> None:
    chat = service()
    seed(chat, ALICE, [1, 1])

    rights_of(chat).erase(ALICE)

    [event] = audit_events(log_output)
    owner = audit.pseudonym(chat.identity.owner_of(ALICE))
    assert event == {"action": "erase_own_data", "actor": owner, "target": owner, "count": 2, "outcome": "erased"}
    assert "alice" not in log_output.getvalue()


def test_each_export_page_carries_todays_usage_from_the_usage_source() -> None:
    chat = service()
    seed(chat, ALICE, [2])
    asked: list[Owner] = []

    def usage(owner: Owner) -> UsageReport:
        asked.append(owner)
        return UsageReport(period="2026-11-29", tokens_used=42, tokens_limit=200_000)

    _, pages = export_all(rights_of(chat, usage=usage), ALICE, 1)

    assert all(page.usage == UsageReport(period="2026-11-29", tokens_used=42, tokens_limit=200_000) for page in pages)
    assert asked[0] == chat.owner(ALICE)
    assert json.loads(pages[0].model_dump_json())["usage"]["tokens_used"] == 42
