"""Unknown query parameters and unknown JSON fields are a 422 on every route, and a 422 says which known
field failed and by which rule, without ever repeating the value or a name the caller made up."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from support.api import InProcessApi, Reply
from support.issuer_server import IssuerServer

pytestmark = pytest.mark.usefixtures("aws")
MESSAGES = "POST /v1/sessions/{session_id}/messages"
HISTORY = "GET /v1/sessions/{session_id}/messages"
SESSION_ROUTES = ("GET /v1/sessions/{session_id}", "DELETE /v1/sessions/{session_id}", MESSAGES, HISTORY)
EVERY_ROUTE = (
    "POST /v1/anonymous-sessions",
    "POST /v1/sessions",
    "GET /v1/sessions",
    *SESSION_ROUTES,
    "DELETE /v1/admin/users/{subject}",
    "GET /v1/me/export",
    "DELETE /v1/me",
)
ATTACKER_NAME = "evil_<script>_name"


@dataclass
class Callers:
    api: InProcessApi
    alice: str
    admin: str
    session_id: str
    table: str

    def call(self, route: str, body: Any = None, query: dict[str, str] | None = None) -> Reply:
        token = self.admin if "admin" in route else self.alice
        path: dict[str, str] = {}
        if "{session_id}" in route:
            path["session_id"] = self.session_id
        if "{subject}" in route:
            path["subject"] = "carol"
        if route == MESSAGES and body is None:
            body = {"content": "hello"}
        content_type = "application/json" if body is not None else None
        return self.api.call(route, token, body, content_type=content_type, query=query, **path)


@pytest.fixture
def callers(lambda_context: Any, oidc_env: IssuerServer, aws: Any) -> Callers:
    api = InProcessApi(lambda_context)
    alice = oidc_env.issuer.token(sub="alice")
    admin = oidc_env.issuer.token(sub="admin-1", amr=["mfa"], **{"cognito:groups": ["admin"]})
    session_id = api.call("POST /v1/sessions", alice).body["session_id"]
    return Callers(api, alice, admin, session_id, aws.table_name)


def item_count(table: str) -> int:
    return len(boto3.client("dynamodb").scan(TableName=table, ConsistentRead=True)["Items"])


def assert_422(reply: Reply, message: str) -> None:
    assert reply.status == 422
    assert reply.body["error"]["code"] == "validation_error"
    assert reply.body["error"]["message"] == message


# -- item: unknown input is refused -----------------------------------------------------------
@pytest.mark.parametrize("route", EVERY_ROUTE)
def test_an_unknown_query_parameter_is_422_on_every_route_and_changes_nothing(callers: Callers, route: str) -> None:
    before = item_count(callers.table)

    reply = callers.call(route, query={"foo": "bar"})

    assert_422(reply, "1 unknown field in the query")
    assert item_count(callers.table) == before
    assert callers.call("GET /v1/sessions/{session_id}").status == 200  # not deleted


@pytest.mark.parametrize("route", EVERY_ROUTE)
def test_an_unknown_json_field_is_422_on_every_route_and_changes_nothing(callers: Callers, route: str) -> None:
    body = {"content": "hello", "evil": 1} if route == MESSAGES else {"evil": 1}
    before = item_count(callers.table)

    reply = callers.call(route, body=body)

    assert_422(reply, "1 unknown field in the body")
    assert item_count(callers.table) == before


def test_creating_a_session_with_an_unknown_field_is_422(callers: Callers) -> None:
    assert_422(callers.call("POST /v1/sessions", body={"evil": 1}), "1 unknown field in the body")


@pytest.mark.parametrize("route", ["POST /v1/sessions", "POST /v1/anonymous-sessions"])
def test_an_empty_json_object_is_still_accepted_where_no_body_is_expected(callers: Callers, route: str) -> None:
    assert callers.call(route, body={}).status == 201


@pytest.mark.parametrize("body", [[], [1], "text", 7, None])
def test_a_body_that_is_not_an_object_is_422_where_no_body_is_expected(callers: Callers, body: Any) -> None:
    raw = json.dumps(body)

    reply = callers.api.call("POST /v1/sessions", callers.alice, raw)

    assert_422(reply, "body: must be a JSON object")


def test_a_declared_query_parameter_is_still_accepted(callers: Callers) -> None:
    assert callers.call(HISTORY, query={"limit": "10"}).status == 200


# -- item: 422 messages -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"content": "x" * 4001}, "content: at most 4000 characters"),
        ({}, "content: required"),
        ({"content": 7}, "content: must be a string"),
        ({"content": "   "}, "content: must not be blank"),
        ({"content": ""}, "content: at least 1 character"),
        (
            {"content": "bell \x07"},
            "content: no control characters other than newline and tab, no bidirectional controls",
        ),
        ({"content": "hi", "client_message_id": "not-a-uuid"}, "client_message_id: must be a UUID"),
        (
            {"content": "hi", "client_message_id": "00000000-0000-1000-8000-000000000000"},
            "client_message_id: must be a UUIDv4",
        ),
        ([], "body: must be a JSON object"),
    ],
    ids=lambda value: repr(value)[:40],
)
def test_a_422_names_the_failing_field_and_its_rule(callers: Callers, body: Any, message: str) -> None:
    assert_422(callers.call(MESSAGES, body=body), message)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"limit": "0"}, "limit: at least 1"),
        ({"limit": "1000"}, "limit: at most 100"),
        ({"limit": "ten"}, "limit: must be an integer"),
        ({"cursor": "!!"}, "cursor: must be a next_cursor of this listing"),
        ({"cursor": "AAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, "cursor: must be a next_cursor of this listing"),
    ],
)
def test_a_422_names_the_failing_query_parameter_and_its_rule(
    callers: Callers, query: dict[str, str], message: str
) -> None:
    assert_422(callers.call(HISTORY, query=query), message)


def test_a_422_names_a_path_parameter_and_its_rule(callers: Callers) -> None:
    reply = callers.api.call("GET /v1/sessions/{session_id}", callers.alice, session_id="not-a-uuid")

    assert_422(reply, "session_id: must be a UUID")


def test_several_failures_are_all_reported_known_fields_first(callers: Callers) -> None:
    body = {"content": 7, "client_message_id": "x", ATTACKER_NAME: 1, "other": 2}

    reply = callers.call(MESSAGES, body=body)

    assert_422(reply, "content: must be a string; client_message_id: must be a UUID; 2 unknown fields in the body")


def test_unknown_fields_and_parameters_are_counted_never_named(callers: Callers) -> None:
    secret_value = "4111 1111 1111 1111"
    body = {"content": "hi", ATTACKER_NAME: secret_value}

    replies = [
        callers.call(MESSAGES, body=body),
        callers.call(HISTORY, query={ATTACKER_NAME: secret_value, "x": "y"}),
    ]

    assert [reply.body["error"]["message"] for reply in replies] == [
        "1 unknown field in the body",
        "2 unknown fields in the query",
    ]
    for reply in replies:
        assert ATTACKER_NAME not in json.dumps(reply.body)
        assert "4111" not in json.dumps(reply.body)


def test_no_422_message_repeats_the_value(callers: Callers) -> None:
    value = "zebra-quartz\x07"

    replies = [
        callers.call(MESSAGES, body={"content": value}),
        callers.call(MESSAGES, body={"content": "hi", "client_message_id": value}),
        callers.call(HISTORY, query={"cursor": "zebra-quartz", "limit": "zebra"}),
    ]

    for reply in replies:
        assert reply.status == 422
        assert "zebra" not in json.dumps(reply.body)
