"""SESSIONS_PER_HOUR (429), MAX_LIVE_SESSIONS (409 too_many_sessions) and the paginated session list,
through the real handlers against moto, and the live-session counter of the DynamoDB store: changed in
the same transaction as the session it counts, uncounted exactly once whichever way the session ends
(the user's delete, admin erasure, the cleanup), so it never drifts."""

from __future__ import annotations

import time
import uuid
from typing import Any

import boto3
import pytest
from support.api import InProcessApi
from support.caches import reset_caches
from support.issuer_server import IssuerServer

from chatbot_security.storage.errors import LiveLimitReached
from chatbot_security.storage.records import LIVE, SessionRecord, live_counter_pk
from chatbot_security.storage.store import DynamoSessionStore
from session_cleanup.cleanup import purge_expired_sessions

pytestmark = pytest.mark.usefixtures("aws")
NOW = int(time.time())
SESSIONS = "GET /v1/sessions"


def limits(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_caches()


def live_count(table: str, owner: str) -> int | None:
    item = (
        boto3.client("dynamodb")
        .get_item(TableName=table, Key={"pk": {"S": live_counter_pk(owner)}, "sk": {"S": "COUNT"}}, ConsistentRead=True)
        .get("Item")
    )
    return None if item is None else int(item["live"]["N"])


def session(owner: str, expires_in: int = 600) -> SessionRecord:
    created = NOW - 60
    return SessionRecord(str(uuid.uuid4()), owner, created, created + 86400, NOW + expires_in, created, 0, LIVE, b"k")


# -- through the API --------------------------------------------------------------------------
def test_creating_sessions_past_sessions_per_hour_is_429_rate_limited_with_retry_after(
    api: InProcessApi, oidc_env: IssuerServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    limits(monkeypatch, SESSIONS_PER_HOUR="2")
    alice = oidc_env.issuer.token(sub="alice")
    assert [api.call("POST /v1/sessions", alice).status for _ in range(2)] == [201, 201]

    refused = api.call("POST /v1/sessions", alice)

    assert refused.status == 429
    assert refused.body["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    assert api.call("POST /v1/sessions", oidc_env.issuer.token(sub="bob")).status == 201


def test_creating_past_max_live_sessions_is_409_too_many_sessions_until_one_is_deleted(
    api: InProcessApi, oidc_env: IssuerServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    limits(monkeypatch, MAX_LIVE_SESSIONS="2")
    alice = oidc_env.issuer.token(sub="alice")
    first = api.call("POST /v1/sessions", alice).body["session_id"]
    api.call("POST /v1/sessions", alice)

    refused = api.call("POST /v1/sessions", alice)

    assert refused.status == 409
    assert refused.body["error"]["code"] == "too_many_sessions"
    assert api.call("DELETE /v1/sessions/{session_id}", alice, session_id=first).status == 204
    assert api.call("POST /v1/sessions", alice).status == 201


def test_the_session_list_is_paginated_oldest_first(
    api: InProcessApi, oidc_env: IssuerServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = oidc_env.issuer.token(sub="alice")
    created = []
    for _ in range(5):
        created.append(api.call("POST /v1/sessions", alice).body["session_id"])
        time.sleep(0.002)  # distinct creation milliseconds: the listing order
    api.call("DELETE /v1/sessions/{session_id}", alice, session_id=created.pop(1))

    listed, cursor, pages = [], None, 0
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = api.call(SESSIONS, alice, query=query)
        assert page.status == 200
        assert set(page.body) == {"sessions", "next_cursor"}
        listed += [session["session_id"] for session in page.body["sessions"]]
        pages += 1
        cursor = page.body["next_cursor"]
        if cursor is None:
            break

    assert listed == created
    assert pages == 2


def test_a_session_cursor_of_another_user_is_422(api: InProcessApi, oidc_env: IssuerServer) -> None:
    alice, bob = oidc_env.issuer.token(sub="alice"), oidc_env.issuer.token(sub="bob")
    for token in (alice, alice, bob, bob):
        api.call("POST /v1/sessions", token)
    alices_cursor = api.call(SESSIONS, alice, query={"limit": "1"}).body["next_cursor"]

    reply = api.call(SESSIONS, bob, query={"limit": "1", "cursor": alices_cursor})

    assert reply.status == 422
    assert reply.body["error"]["message"] == "cursor: must be a next_cursor of this listing"


@pytest.mark.parametrize(("limit", "rule"), [("0", "limit: at least 1"), ("101", "limit: at most 100")])
def test_a_session_page_size_outside_1_to_100_is_422(
    api: InProcessApi, oidc_env: IssuerServer, limit: str, rule: str
) -> None:
    reply = api.call(SESSIONS, oidc_env.issuer.token(sub="alice"), query={"limit": limit})

    assert (reply.status, reply.body["error"]["message"]) == (422, rule)


def test_an_anonymous_token_lists_its_one_session_without_a_cursor(api: InProcessApi) -> None:
    created = api.call("POST /v1/anonymous-sessions", None, content_type=None).body

    listed = api.call(SESSIONS, created["session_token"])

    assert [s["session_id"] for s in listed.body["sessions"]] == [created["session_id"]]
    assert listed.body["next_cursor"] is None


# -- the store's live counter on moto ---------------------------------------------------------
def test_the_live_counter_refuses_past_the_limit_and_writes_nothing(store: DynamoSessionStore, aws: Any) -> None:
    for _ in range(2):
        store.put_new_session(session("owner-a"), live_limit=2)
    refused = session("owner-a")

    with pytest.raises(LiveLimitReached):
        store.put_new_session(refused, live_limit=2)

    assert store.get_session(refused.session_id) is None
    assert live_count(aws.table_name, "owner-a") == 2


def test_the_live_counter_follows_every_way_a_session_ends(store: DynamoSessionStore, aws: Any) -> None:
    deleted, expired, erased = session("owner-b"), session("owner-b", expires_in=-5), session("owner-b")
    for record in (deleted, expired, erased):
        store.put_new_session(record, live_limit=10)
    assert live_count(aws.table_name, "owner-b") == 3

    store.mark_deleted(store.get_session(deleted.session_id), NOW)  # type: ignore[arg-type]
    store.mark_deleted(store.get_session(deleted.session_id), NOW)  # type: ignore[arg-type]  # twice: counted once
    assert live_count(aws.table_name, "owner-b") == 2
    purge_expired_sessions(store, NOW)  # the cleanup purges the deleted one and the expired one
    purge_expired_sessions(store, NOW)
    assert live_count(aws.table_name, "owner-b") == 1
    [listed] = store.sessions_of("owner-b")  # from the index: whether it is counted is unknown there
    store.mark_deleted(listed, NOW)
    assert live_count(aws.table_name, "owner-b") == 0
    assert store.drop_live_counter("owner-b") is True
    assert live_count(aws.table_name, "owner-b") is None


def test_the_live_counter_is_kept_while_it_counts_a_session(store: DynamoSessionStore, aws: Any) -> None:
    store.put_new_session(session("owner-c"), live_limit=10)

    assert store.drop_live_counter("owner-c") is False
    assert live_count(aws.table_name, "owner-c") == 1


def test_a_session_that_is_not_counted_ends_without_touching_the_counter(store: DynamoSessionStore, aws: Any) -> None:
    store.put_new_session(session("owner-d"), live_limit=10)
    anonymous = session("owner-d")
    store.put_new_session(anonymous)  # no limit: not counted (anonymous sessions)

    store.mark_deleted(anonymous, NOW)
    assert store.claim_for_purge(anonymous.session_id, NOW)

    assert live_count(aws.table_name, "owner-d") == 1


def test_session_pages_skip_ended_sessions_and_resume_after_the_cursor(store: DynamoSessionStore) -> None:
    records = []
    for index in range(6):
        record = session("owner-e", expires_in=-5 if index in (1, 4) else 600)
        record = SessionRecord(**{**record.__dict__, "created_ms": (NOW - 60) * 1000 + index})
        store.put_new_session(record, live_limit=10)
        records.append(record)
    usable = [r.session_id for i, r in enumerate(records) if i not in (1, 4)]

    first, more = store.session_page("owner-e", NOW, None, 2)
    second, more_again = store.session_page("owner-e", NOW, (first[-1].created_ms, first[-1].session_id), 2)

    assert [r.session_id for r in first + second] == usable
    assert (more, more_again) == (True, False)
