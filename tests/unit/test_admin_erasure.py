"""Admin erasure and the audit trail, in the logic layer on in-memory fakes.

A user's sessions are found through the owner index, which is eventually consistent, and any of them
may end while the erasure runs (the user's own delete, the cleanup). A session already gone counts as
erased and the others are still erased; a session that cannot be erased now makes the call a 503 that
a retry finishes. Every admin action and every erasure leaves one audit event with pseudonymous hashes
only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from support.flaky_store import FlakyStore

from chatbot_security.conversation.errors import ForbiddenError, NotFoundError, ServiceUnavailableError
from chatbot_security.conversation.model_providers import EchoModel
from chatbot_security.conversation.models import MessageRequest
from chatbot_security.identity.identity_keys import IdentityKeys
from chatbot_security.identity.principal import Principal
from chatbot_security.platform import audit
from chatbot_security.platform.settings import Settings
from chatbot_security.privacy.redaction import redact_value
from chatbot_security.storage.records import SessionRecord
from tools.fakes import InMemorySessionStore, in_memory_conversations

ISSUER = "https://issuer.example.test"
CAROL = Principal(kind="user", subject="carol-raw-subject-4111", issuer=ISSUER)
DAVE = Principal(kind="user", subject="dave", issuer=ISSUER)
ADMIN = Principal(kind="user", subject="admin-1", issuer=ISSUER, roles=("admin",), mfa=True)


@dataclass
class StaleIndexStore(InMemorySessionStore):
    """An owner index that still lists sessions which are gone from the table."""

    ghosts: list[SessionRecord] = field(default_factory=list)

    def sessions_of(self, owner_key: str) -> list[SessionRecord]:
        listed = super().sessions_of(owner_key)
        return [ghost for ghost in self.ghosts if ghost.owner_key == owner_key] + listed


def service(store: InMemorySessionStore | None = None, **env: str) -> Any:
    settings = Settings.model_validate({"OIDC_ISSUER": ISSUER, **env})
    return in_memory_conversations(EchoModel(), settings, store=store or InMemorySessionStore())


def sessions_with_messages(chat: Any, principal: Principal, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        session_id = chat.create_session(principal).session_id
        chat.post_message(principal, session_id, MessageRequest(content="something personal"))
        ids.append(session_id)
    return ids


def audit_events(log_output: Any) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in log_output.getvalue().splitlines() if line.strip()]
    return [line["audit"] for line in lines if line.get("message") == audit.AUDIT_MESSAGE]


# -- erasure ----------------------------------------------------------------------------------
def test_admin_erasure_removes_every_session_of_the_user_and_nothing_else() -> None:
    chat = service()
    carols = sessions_with_messages(chat, CAROL, 3)
    daves = sessions_with_messages(chat, DAVE, 1)

    assert chat.erase_user(ADMIN, CAROL.subject) == 3

    store: InMemorySessionStore = chat.store
    assert not any(session_id in store.sessions or store.message_items.get(session_id) for session_id in carols)
    assert set(store.sessions) == set(daves)
    assert chat.list_sessions(DAVE).sessions[0].session_id == daves[0]


def test_a_session_already_gone_does_not_stop_the_erasure_of_the_others() -> None:
    store = StaleIndexStore()
    chat = service(store)
    gone = sessions_with_messages(chat, CAROL, 1)[0]
    store.ghosts.append(store.sessions[gone])
    chat.delete_session(CAROL, gone)  # the user's own delete, after the index listed it
    live = sessions_with_messages(chat, CAROL, 2)

    assert chat.erase_user(ADMIN, CAROL.subject) == 3

    assert store.sessions == {}
    assert not any(store.message_items.get(session_id) for session_id in [gone, *live])


def test_a_session_ended_but_not_yet_purged_is_erased_too() -> None:
    chat = service()
    ended = sessions_with_messages(chat, CAROL, 1)[0]
    store: InMemorySessionStore = chat.store
    store.mark_deleted(store.sessions[ended], now=0)  # deleted, the purge has not run

    assert chat.erase_user(ADMIN, CAROL.subject) == 1

    assert ended not in store.sessions
    assert not store.message_items.get(ended)


def test_a_session_that_cannot_be_erased_now_makes_a_503_and_a_retry_finishes() -> None:
    store = FlakyStore()
    chat = service(store)
    carols = sessions_with_messages(chat, CAROL, 3)
    store.failures[carols[1]] = 1

    with pytest.raises(ServiceUnavailableError) as raised:
        chat.erase_user(ADMIN, CAROL.subject)

    assert raised.value.retry_after_seconds
    assert set(store.sessions) == {carols[1]}  # the others were erased anyway
    assert chat.erase_user(ADMIN, CAROL.subject) == 1
    assert store.sessions == {}


def test_admin_erasure_needs_the_admin_role_and_mfa() -> None:
    chat = service()
    sessions_with_messages(chat, CAROL, 1)

    for caller in (DAVE, ADMIN.model_copy(update={"mfa": False})):
        with pytest.raises(ForbiddenError):
            chat.erase_user(caller, CAROL.subject)

    assert len(chat.store.sessions) == 1


def test_admin_erasure_without_mfa_is_allowed_when_mfa_is_not_required() -> None:
    chat = service(ADMIN_REQUIRE_MFA="false")
    sessions_with_messages(chat, CAROL, 1)

    assert chat.erase_user(ADMIN.model_copy(update={"mfa": False}), CAROL.subject) == 1


def test_the_rate_counters_of_the_erased_user_are_kept_until_they_expire() -> None:
    # Erasing must not reset a budget: the counters hold a count under the owner hash, and expire by TTL.
    chat = service()
    sessions_with_messages(chat, CAROL, 1)
    store: InMemorySessionStore = chat.store
    counters = dict(store.counters)
    assert any(pk.startswith("RATE#post#") for pk, _ in counters)

    chat.erase_user(ADMIN, CAROL.subject)

    assert store.counters == counters


# -- audit ------------------------------------------------------------------------------------
def test_admin_erasure_writes_one_audit_event_with_hashes_count_and_outcome(log_output: Any) -> None:
    chat = service()
    sessions_with_messages(chat, CAROL, 2)

    chat.erase_user(ADMIN, CAROL.subject)

    owner_of = chat.identity.owner_of
    assert audit_events(log_output) == [
        {
            "action": "admin_erase_user",
            "actor": audit.pseudonym(owner_of(ADMIN)),
            "target": audit.pseudonym(owner_of(CAROL)),
            "count": 2,
            "outcome": "erased",
        }
    ]


def test_an_incomplete_erasure_is_audited_as_incomplete(log_output: Any) -> None:
    store = FlakyStore()
    chat = service(store)
    carols = sessions_with_messages(chat, CAROL, 2)
    store.failures[carols[0]] = 1

    with pytest.raises(ServiceUnavailableError):
        chat.erase_user(ADMIN, CAROL.subject)

    [event] = audit_events(log_output)
    assert (event["count"], event["outcome"]) == (1, "incomplete")


def test_a_refused_admin_call_is_audited_as_denied(log_output: Any) -> None:
    chat = service()

    with pytest.raises(ForbiddenError):
        chat.erase_user(DAVE, CAROL.subject)

    [event] = audit_events(log_output)
    assert event["outcome"] == "denied"
    assert event["actor"] == audit.pseudonym(chat.identity.owner_of(DAVE))
    assert event["count"] == 0


def test_an_erasure_without_an_issuer_is_audited_as_not_found(log_output: Any) -> None:
    chat = in_memory_conversations(EchoModel(), Settings.model_validate({}))

    with pytest.raises(NotFoundError):
        chat.erase_user(ADMIN, CAROL.subject)

    [event] = audit_events(log_output)
    assert (event["target"], event["outcome"]) == (None, "not_found")


def test_a_users_own_delete_is_audited_as_an_erasure(log_output: Any) -> None:
    chat = service()
    session_id = chat.create_session(CAROL).session_id

    chat.delete_session(CAROL, session_id)

    owner = audit.pseudonym(chat.identity.owner_of(CAROL))
    assert audit_events(log_output) == [
        {"action": "delete_session", "actor": owner, "target": owner, "count": 1, "outcome": "erased"}
    ]


def test_audit_events_hold_no_raw_identifier(log_output: Any) -> None:
    chat = service()
    session_id = sessions_with_messages(chat, CAROL, 1)[0]

    chat.erase_user(ADMIN, CAROL.subject)

    logs = log_output.getvalue()
    assert audit_events(log_output)
    for raw in (CAROL.subject, ADMIN.subject, ISSUER, session_id, chat.identity.owner_of(CAROL)):
        assert raw not in logs


@pytest.mark.parametrize("seed", range(200))
def test_an_audit_pseudonym_survives_log_redaction_and_maps_back_to_the_owner_key(seed: int) -> None:
    owner_key = IdentityKeys(f"pepper-{seed}").owner_of_user(ISSUER, f"user-{seed}")
    event = {"actor": audit.pseudonym(owner_key), "target": audit.pseudonym(owner_key[::-1])}

    assert redact_value(event) == event
    assert audit.pseudonym(owner_key).translate(str.maketrans("ghijklmnop", "0123456789")) == owner_key
