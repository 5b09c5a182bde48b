"""Session creation is limited per principal (SESSIONS_PER_HOUR, 429) and live sessions per owner
(MAX_LIVE_SESSIONS, 409 too_many_sessions), and the list of sessions is paginated with cursors bound to
their owner: the logic layer on in-memory fakes."""

from __future__ import annotations

import time
from typing import Any

import pytest
from support.clocks import ManualClock

from chatbot_security.conversation.errors import (
    RateLimitedError,
    SchemaError,
    ServiceUnavailableError,
    TooManySessionsError,
)
from chatbot_security.conversation.model_providers import EchoModel
from chatbot_security.identity.principal import Principal
from chatbot_security.platform.settings import Settings
from chatbot_security.storage.records import SessionRecord
from session_cleanup.cleanup import purge_expired_sessions
from tools.fakes import InMemorySessionStore, in_memory_conversations

ISSUER = "https://issuer.example.test"
ALICE = Principal(kind="user", subject="alice", issuer=ISSUER)
BOB = Principal(kind="user", subject="bob", issuer=ISSUER)
ADMIN = Principal(kind="user", subject="admin-1", issuer=ISSUER, roles=("admin",), mfa=True)


def service(clock: ManualClock | None = None, store: InMemorySessionStore | None = None, **env: str) -> Any:
    settings = Settings.model_validate({"OIDC_ISSUER": ISSUER, "SESSIONS_PER_HOUR": "1000", **env})
    chat = in_memory_conversations(EchoModel(), settings, store=store or InMemorySessionStore())
    if clock is not None:
        chat.clock = clock
        chat.rate_limiter._clock = clock
    return chat


# -- SESSIONS_PER_HOUR ----------------------------------------------------------------------------
def test_the_defaults_are_30_sessions_per_hour_and_100_live_sessions() -> None:
    settings = Settings.model_validate({})

    assert (settings.sessions_per_hour, settings.max_live_sessions) == (30, 100)


def test_creating_sessions_past_sessions_per_hour_is_429_with_retry_after() -> None:
    clock = ManualClock(time.time())
    chat = service(clock, SESSIONS_PER_HOUR="3")
    for _ in range(3):
        chat.create_session(ALICE)

    with pytest.raises(RateLimitedError) as refused:
        chat.create_session(ALICE)

    assert refused.value.code == "rate_limited"
    assert refused.value.retry_after_seconds is not None
    assert 1 <= refused.value.retry_after_seconds <= 3601
    assert len(chat.store.sessions) == 3
    assert chat.data_keys._kms().calls.count("GenerateDataKey") == 3  # a refused creation costs no KMS call


def test_the_creation_limit_is_per_principal() -> None:
    chat = service(SESSIONS_PER_HOUR="2")
    for _ in range(2):
        chat.create_session(ALICE)

    assert chat.create_session(BOB).session_id


def test_the_creation_limit_starts_again_in_the_next_hour() -> None:
    clock = ManualClock(time.time())
    chat = service(clock, SESSIONS_PER_HOUR="1")
    chat.create_session(ALICE)

    clock.now += 3600

    assert chat.create_session(ALICE).session_id


def test_deleting_sessions_does_not_reset_the_creation_limit() -> None:
    chat = service(SESSIONS_PER_HOUR="2")
    for _ in range(2):
        chat.delete_session(ALICE, chat.create_session(ALICE).session_id)

    with pytest.raises(RateLimitedError):
        chat.create_session(ALICE)


def test_anonymous_creation_is_limited_per_source_ip_by_the_lower_of_the_two_limits() -> None:
    chat = service(SESSIONS_PER_HOUR="2", ANON_SESSIONS_PER_HOUR="10")
    for _ in range(2):
        chat.create_anonymous_session("198.51.100.7")

    with pytest.raises(RateLimitedError):
        chat.create_anonymous_session("198.51.100.7")
    assert chat.create_anonymous_session("198.51.100.8").session_token


# -- MAX_LIVE_SESSIONS ----------------------------------------------------------------------------
def test_creating_past_max_live_sessions_is_409_too_many_sessions() -> None:
    chat = service(MAX_LIVE_SESSIONS="3")
    for _ in range(3):
        chat.create_session(ALICE)

    with pytest.raises(TooManySessionsError) as refused:
        chat.create_session(ALICE)

    assert (refused.value.status, refused.value.code) == (409, "too_many_sessions")
    assert len(chat.store.sessions) == 3
    assert chat.create_session(BOB).session_id  # per owner


def test_deleting_a_session_makes_room_for_another() -> None:
    chat = service(MAX_LIVE_SESSIONS="2")
    first = chat.create_session(ALICE).session_id
    chat.create_session(ALICE)

    chat.delete_session(ALICE, first)

    assert chat.create_session(ALICE).session_id
    assert chat.store.live[chat.identity.owner_of(ALICE)] == 2


def test_sessions_that_ended_but_are_not_purged_yet_do_not_block_a_new_one() -> None:
    clock = ManualClock(time.time())
    chat = service(clock, MAX_LIVE_SESSIONS="2", SESSION_IDLE_SECONDS="60")
    old = [chat.create_session(ALICE).session_id for _ in range(2)]
    clock.now += 120  # both idle-expired; the cleanup has not run

    created = chat.create_session(ALICE)

    assert set(chat.store.sessions) == {created.session_id}
    assert not set(old) & set(chat.store.sessions)
    assert chat.store.live[chat.identity.owner_of(ALICE)] == 1


def test_the_cleanup_uncounts_every_session_it_purges() -> None:
    clock = ManualClock(time.time())
    chat = service(clock, MAX_LIVE_SESSIONS="3", SESSION_IDLE_SECONDS="60")
    for _ in range(3):
        chat.create_session(ALICE)
    clock.now += 120

    purge_expired_sessions(chat.store, int(clock.now))
    purge_expired_sessions(chat.store, int(clock.now))  # twice: idempotent, no double decrement

    assert chat.store.live[chat.identity.owner_of(ALICE)] == 0
    for _ in range(3):
        chat.create_session(ALICE)


def test_a_deleted_then_purged_session_is_uncounted_once() -> None:
    chat = service(MAX_LIVE_SESSIONS="2")
    session_id = chat.create_session(ALICE).session_id
    store: InMemorySessionStore = chat.store
    record = store.sessions[session_id]

    store.mark_deleted(record, int(time.time()))
    store.mark_deleted(record, int(time.time()))
    store.claim_for_purge(session_id, int(time.time()))

    assert store.live[chat.identity.owner_of(ALICE)] == 0


def test_admin_erasure_leaves_no_live_counter() -> None:
    chat = service(MAX_LIVE_SESSIONS="3")
    for _ in range(3):
        chat.create_session(ALICE)

    chat.erase_user(ADMIN, ALICE.subject)

    assert chat.identity.owner_of(ALICE) not in chat.store.live


def test_admin_erasure_of_a_session_the_index_does_not_list_yet_is_503_until_it_does() -> None:
    store = LaggingIndexStore()
    chat = service(store=store)
    listed = chat.create_session(ALICE).session_id
    store.hidden.add(chat.create_session(ALICE).session_id)  # just created: not in the index yet

    with pytest.raises(ServiceUnavailableError):
        chat.erase_user(ADMIN, ALICE.subject)
    assert listed not in store.sessions
    store.hidden.clear()  # the index caught up

    assert chat.erase_user(ADMIN, ALICE.subject) == 1
    assert store.sessions == {}


class LaggingIndexStore(InMemorySessionStore):
    """An owner index that does not list the sessions in ``hidden`` yet."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden: set[str] = set()

    def sessions_of(self, owner_key: str) -> list[SessionRecord]:
        return [s for s in super().sessions_of(owner_key) if s.session_id not in self.hidden]


# -- GET /v1/sessions pages -----------------------------------------------------------------------
def test_sessions_are_listed_in_pages_oldest_first() -> None:
    clock = ManualClock(time.time())
    chat = service(clock)
    created = []
    for _ in range(5):
        created.append(chat.create_session(ALICE).session_id)
        clock.now += 1

    pages, cursor = [], None
    while True:
        page = chat.list_sessions(ALICE, 2, cursor)
        pages.append([session.session_id for session in page.sessions])
        cursor = page.next_cursor
        if cursor is None:
            break

    assert pages == [created[0:2], created[2:4], created[4:5]]


def test_the_default_page_is_50_sessions() -> None:
    chat = service()
    for _ in range(51):
        chat.create_session(ALICE)

    page = chat.list_sessions(ALICE)

    assert len(page.sessions) == 50
    assert page.next_cursor is not None


def test_a_listing_without_more_sessions_has_no_cursor() -> None:
    chat = service()
    chat.create_session(ALICE)

    assert chat.list_sessions(ALICE, 1).next_cursor is None


def test_a_session_cursor_cannot_be_bent_to_another_users_listing() -> None:
    chat = service()
    for _ in range(3):
        chat.create_session(ALICE)
        chat.create_session(BOB)
    alices_cursor = chat.list_sessions(ALICE, 1).next_cursor

    with pytest.raises(SchemaError):
        chat.list_sessions(BOB, 1, alices_cursor)


def test_a_message_cursor_is_not_a_session_cursor() -> None:
    chat = service()
    session_id = chat.create_session(ALICE).session_id
    from chatbot_security.conversation.cursors import encode_cursor

    with pytest.raises(SchemaError):
        chat.list_sessions(ALICE, 1, encode_cursor(chat.identity.cursor_key, session_id, 2))


def test_ended_sessions_are_not_listed() -> None:
    chat = service()
    kept = chat.create_session(ALICE).session_id
    chat.delete_session(ALICE, chat.create_session(ALICE).session_id)

    assert [session.session_id for session in chat.list_sessions(ALICE).sessions] == [kept]
