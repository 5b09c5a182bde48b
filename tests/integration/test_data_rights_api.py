"""GET /v1/me/export and DELETE /v1/me through the authorizer and the chat handler, on the template's table
(moto): the export pages hold everything of the caller and nothing of anyone else; after the erasure a
table scan finds nothing of the caller but the counters, the other user's data is untouched, and an
anonymous token is refused."""

from __future__ import annotations

import json
import uuid
from typing import Any

import boto3
import pytest
from support.api import InProcessApi, Reply
from support.issuer_server import IssuerServer

pytestmark = pytest.mark.usefixtures("aws")
EXPORT = "GET /v1/me/export"
ERASE_ME = "DELETE /v1/me"
MESSAGES = "POST /v1/sessions/{session_id}/messages"
HISTORY = "GET /v1/sessions/{session_id}/messages"
# Items keyed by the owner's hash that outlive an erasure until their TTL (docs/privacy.md).
COUNTER_PREFIXES = ("RATE#", "USAGE#")


def all_items(table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = boto3.client("dynamodb").scan(TableName=table, ConsistentRead=True)["Items"]
    return items


def sessions_with_turns(api: InProcessApi, token: str, turns: list[int], word: str) -> dict[str, list[str]]:
    held: dict[str, list[str]] = {}
    for count in turns:
        session_id = api.call("POST /v1/sessions", token).body["session_id"]
        held[session_id] = []
        for n in range(count):
            body = {"content": f"{word} {n}", "client_message_id": str(uuid.uuid4())}
            turn = api.call(MESSAGES, token, body, session_id=session_id).body
            held[session_id] += [turn["user_message"]["content"], turn["assistant_message"]["content"]]
    return held


def export_pages(api: InProcessApi, token: str, limit: int) -> list[Reply]:
    pages: list[Reply] = []
    query: dict[str, str] = {"limit": str(limit)}
    while True:
        reply = api.call(EXPORT, token, query=query)
        assert reply.status == 200, reply.body
        pages.append(reply)
        if reply.body["next_cursor"] is None:
            return pages
        query = {"limit": str(limit), "cursor": reply.body["next_cursor"]}


def joined(pages: list[Reply]) -> dict[str, list[str]]:
    held: dict[str, list[str]] = {}
    for page in pages:
        for session in page.body["sessions"]:
            held.setdefault(session["session_id"], []).extend(m["content"] for m in session["messages"])
    return held


def owner_key_of(table: str, session_id: str) -> str:
    [item] = [i for i in all_items(table) if i["pk"]["S"] == f"SESSION#{session_id}" and i["sk"]["S"] == "SESSION"]
    return str(item["owner_key"]["S"])


def items_of(items: list[dict[str, Any]], owner_key: str, session_ids: set[str]) -> list[dict[str, Any]]:
    """Every item that belongs to the owner: its sessions' items, and any item keyed or owned by its hash."""
    return [
        item
        for item in items
        if item["pk"]["S"].removeprefix("SESSION#") in session_ids
        or owner_key in item["pk"]["S"]
        or item.get("owner_key", {}).get("S") == owner_key
    ]


# -- export -----------------------------------------------------------------------------------
def test_the_export_pages_hold_every_session_and_message_of_the_caller_and_nothing_else(
    api: InProcessApi, alice: str, oidc_env: IssuerServer
) -> None:
    bob = oidc_env.issuer.token(sub="bob")
    alices = sessions_with_turns(api, alice, [3, 0, 4], "alice's words")
    bobs = sessions_with_turns(api, bob, [2], "bob's secret")

    pages = export_pages(api, alice, 4)

    assert joined(pages) == alices
    assert len(pages) == 4
    assert all(page.headers["Content-Type"] == "application/json" for page in pages)
    assert all(page.headers["Cache-Control"] == "no-store" for page in pages)
    assert not set(joined(pages)) & set(bobs)
    assert "bob's secret" not in json.dumps([page.body for page in pages])


def test_an_anonymous_export_holds_its_own_session_only(api: InProcessApi, alice: str) -> None:
    sessions_with_turns(api, alice, [1], "alice's words")
    mine = api.call("POST /v1/anonymous-sessions", None).body
    other = api.call("POST /v1/anonymous-sessions", None).body
    api.call(MESSAGES, mine["session_token"], {"content": "visitor words"}, session_id=mine["session_id"])
    api.call(MESSAGES, other["session_token"], {"content": "stranger words"}, session_id=other["session_id"])

    pages = export_pages(api, mine["session_token"], 100)

    assert list(joined(pages)) == [mine["session_id"]]
    assert joined(pages)[mine["session_id"]][0] == "visitor words"
    assert "stranger words" not in json.dumps([page.body for page in pages])


def test_another_users_export_cursor_is_refused(api: InProcessApi, alice: str, oidc_env: IssuerServer) -> None:
    bob = oidc_env.issuer.token(sub="bob")
    sessions_with_turns(api, alice, [2], "alice's words")
    sessions_with_turns(api, bob, [2], "bob's secret")
    bobs_cursor = api.call(EXPORT, bob, query={"limit": "1"}).body["next_cursor"]

    reply = api.call(EXPORT, alice, query={"limit": "1", "cursor": bobs_cursor})

    assert reply.status == 422
    assert reply.body["error"]["message"] == "cursor: must be a next_cursor of this listing"


def test_a_tampered_export_cursor_is_refused(api: InProcessApi, alice: str) -> None:
    sessions_with_turns(api, alice, [2], "alice's words")
    cursor = api.call(EXPORT, alice, query={"limit": "1"}).body["next_cursor"]
    # A middle character: the last one may carry only padding bits, and then decodes to the same bytes.
    middle = len(cursor) // 2
    tampered = cursor[:middle] + ("A" if cursor[middle] != "A" else "B") + cursor[middle + 1 :]

    assert api.call(EXPORT, alice, query={"limit": "1", "cursor": tampered}).status == 422


@pytest.mark.parametrize("limit", ["0", "101", "ten"])
def test_an_export_limit_out_of_range_is_422(api: InProcessApi, alice: str, limit: str) -> None:
    assert api.call(EXPORT, alice, query={"limit": limit}).status == 422


# -- erasure ----------------------------------------------------------------------------------
def test_after_erasure_a_table_scan_finds_nothing_of_the_caller_but_its_counters(
    api: InProcessApi, alice: str, oidc_env: IssuerServer, aws: Any
) -> None:
    bob = oidc_env.issuer.token(sub="bob")
    alices = sessions_with_turns(api, alice, [2, 1, 0], "alice's words")
    bobs = sessions_with_turns(api, bob, [2], "bob's secret")
    owner = owner_key_of(aws.table_name, next(iter(alices)))
    bobs_items = items_of(all_items(aws.table_name), owner_key_of(aws.table_name, next(iter(bobs))), set(bobs))
    assert any(item["sk"]["S"].startswith("IDEM#") for item in items_of(all_items(aws.table_name), owner, set(alices)))

    reply = api.call(ERASE_ME, alice)

    assert reply.status == 204
    assert reply.body is None
    left = items_of(all_items(aws.table_name), owner, set(alices))
    assert left  # the counters: erasing must not reset a budget
    assert all(item["pk"]["S"].startswith(COUNTER_PREFIXES) and "ttl" in item for item in left)
    assert all(item in all_items(aws.table_name) for item in bobs_items)
    assert joined(export_pages(api, bob, 100)) == bobs
    after = api.call(EXPORT, alice).body
    assert (after["sessions"], after["next_cursor"]) == ([], None)
    assert after["usage"]["tokens_used"] > 0  # the day's tokens stay counted: erasing does not reset a budget


def test_an_anonymous_erasure_removes_its_session_and_its_token_is_refused_afterwards(
    api: InProcessApi, alice: str, aws: Any
) -> None:
    alices = sessions_with_turns(api, alice, [1], "alice's words")
    mine = api.call("POST /v1/anonymous-sessions", None).body
    token, session_id = mine["session_token"], mine["session_id"]
    api.call(MESSAGES, token, {"content": "visitor words", "client_message_id": str(uuid.uuid4())},
             session_id=session_id)  # fmt: skip
    owner = owner_key_of(aws.table_name, session_id)

    assert api.call(ERASE_ME, token).status == 204

    left = items_of(all_items(aws.table_name), owner, {session_id})
    assert all(item["pk"]["S"].startswith(COUNTER_PREFIXES) for item in left)
    for route in (EXPORT, ERASE_ME, "GET /v1/sessions", "GET /v1/sessions/{session_id}", HISTORY, MESSAGES):
        body = {"content": "again"} if route == MESSAGES else None
        assert api.call(route, token, body, session_id=session_id).status == 404, route
    assert joined(export_pages(api, alice, 100)) == alices


def test_an_erasure_of_ones_own_data_leaves_an_audit_event_with_hashes_only(
    api: InProcessApi, oidc_env: IssuerServer, log_output: Any
) -> None:
    carol = oidc_env.issuer.token(sub="carol-7f3a9c")
    sessions_with_turns(api, carol, [1, 1], "carol's words")

    assert api.call(ERASE_ME, carol).status == 204

    lines = [json.loads(line) for line in log_output.getvalue().splitlines() if line.strip()]
    [event] = [line["audit"] for line in lines if line.get("message") == "audit"]
    assert (event["action"], event["count"], event["outcome"]) == ("erase_own_data", 2, "erased")
    assert event["actor"] == event["target"]
    assert "carol-7f3a9c" not in log_output.getvalue()


def test_every_export_page_carries_todays_usage_as_get_usage_reports_it(api: InProcessApi, alice: str) -> None:
    sessions_with_turns(api, alice, [3], "counted")

    pages = export_pages(api, alice, 2)

    usage = api.call("GET /v1/usage", alice)
    assert usage.status == 200
    assert usage.body["tokens_used"] > 0
    assert len(pages) > 1
    assert all(page.body["usage"] == usage.body for page in pages)
