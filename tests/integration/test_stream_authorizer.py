"""The WebSocket API's $connect authorizer: a stream ticket opens one connection, once, to the session
it was issued for; every other handshake is denied (403 on the upgrade), nothing raises, and no ticket
is ever written to the logs."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
from typing import Any

import boto3
import pytest
from support.clocks import FIXED_START, ManualClock
from support.stream_events import CONNECT_ARN, connect_event
from support.ticket_fakes import InMemoryTicketStore

from chatbot_security.storage.tickets import DynamoTicketStore, TicketGrant, TicketStore
from stream_authorizer.handler import handler
from tools.lambda_context import FakeLambdaContext

NOW = FIXED_START
SESSION = str(uuid.UUID(int=11, version=4))
GRANT = TicketGrant(owner="owner-hash-" + "a" * 52, kind="user", session_id=SESSION, credential_exp=NOW + 3600)
ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def connect(event: dict[str, Any], tickets: TicketStore, clock: ManualClock) -> dict[str, Any]:
    result: dict[str, Any] = handler(event, FakeLambdaContext(), tickets=tickets, clock=clock)
    return result


def effect(decision: dict[str, Any]) -> str:
    statement = decision["policyDocument"]["Statement"]
    assert len(statement) == 1
    assert statement[0]["Action"] == "execute-api:Invoke"
    return str(statement[0]["Effect"])


def test_a_valid_ticket_allows_the_connect_method_with_the_grant_as_context(
    tickets: TicketStore, clock: ManualClock
) -> None:
    ticket = tickets.issue(GRANT).ticket

    decision = connect(connect_event(ticket), tickets, clock)

    assert effect(decision) == "Allow"
    assert decision["policyDocument"]["Statement"][0]["Resource"] == CONNECT_ARN
    assert decision["context"] == {
        "owner": GRANT.owner,
        "kind": "user",
        "session_id": SESSION,
        "credential_exp": NOW + 3600,
    }


def test_an_anonymous_ticket_carries_its_kind(tickets: TicketStore, clock: ManualClock) -> None:
    grant = TicketGrant(owner="anon-owner-hash", kind="anonymous", session_id=SESSION, credential_exp=NOW + 30)

    decision = connect(connect_event(tickets.issue(grant).ticket), tickets, clock)

    assert decision["context"]["kind"] == "anonymous"
    assert decision["context"]["credential_exp"] == NOW + 30


def test_no_ticket_is_denied(tickets: TicketStore, clock: ManualClock) -> None:
    assert effect(connect(connect_event(None), tickets, clock)) == "Deny"


def test_a_ticket_under_another_name_is_denied(tickets: TicketStore, clock: ManualClock) -> None:
    ticket = tickets.issue(GRANT).ticket

    assert effect(connect(connect_event(None, token=ticket), tickets, clock)) == "Deny"


def test_a_forged_ticket_is_denied(tickets: TicketStore, clock: ManualClock) -> None:
    tickets.issue(GRANT)

    assert effect(connect(connect_event("A" * 43), tickets, clock)) == "Deny"


def test_a_replayed_ticket_is_denied(tickets: TicketStore, clock: ManualClock) -> None:
    ticket = tickets.issue(GRANT).ticket
    assert effect(connect(connect_event(ticket), tickets, clock)) == "Allow"

    assert effect(connect(connect_event(ticket), tickets, clock)) == "Deny"


def test_an_expired_ticket_is_denied(tickets: TicketStore, clock: ManualClock) -> None:
    ticket = tickets.issue(GRANT).ticket
    clock.now = NOW + 60

    assert effect(connect(connect_event(ticket), tickets, clock)) == "Deny"


def test_a_ticket_whose_credential_expired_is_denied(tickets: TicketStore, clock: ManualClock) -> None:
    grant = TicketGrant(owner="owner-hash", kind="user", session_id=SESSION, credential_exp=NOW + 10)
    ticket = tickets.issue(grant).ticket
    clock.now = NOW + 10

    assert effect(connect(connect_event(ticket), tickets, clock)) == "Deny"


@pytest.mark.parametrize(
    "ticket",
    ["A" * 10_000, "A" * 44, "A" * 42, "A" * 42 + "+", "A" * 42 + "/", "A" * 42 + "=", "A" * 42 + "%", "é" * 43, ""],
    ids=["oversized", "long", "short", "plus", "slash", "padding", "percent", "non-ascii", "empty"],
)
def test_a_malformed_ticket_is_denied_without_touching_the_table(ticket: str, clock: ManualClock) -> None:
    class NoTable(InMemoryTicketStore):
        def consume(self, ticket: object) -> TicketGrant | None:
            raise AssertionError("a malformed ticket reached the store")

    assert effect(connect(connect_event(ticket), NoTable(clock=clock), clock)) == "Deny"


@pytest.mark.parametrize(
    "method_arn",
    [
        "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/v1/sendMessage",
        "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/v1/*",
        "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/v1/$connect/extra",
        "",
    ],
    ids=["other-route", "wildcard", "suffix", "empty"],
)
def test_only_the_connect_method_is_ever_allowed(method_arn: str, tickets: TicketStore, clock: ManualClock) -> None:
    ticket = tickets.issue(GRANT).ticket

    decision = connect(connect_event(ticket, method_arn=method_arn), tickets, clock)

    assert effect(decision) == "Deny"
    assert "context" not in decision


@pytest.mark.parametrize(
    "event",
    [{}, {"queryStringParameters": "ticket"}, {"queryStringParameters": {"ticket": 42}}, {"methodArn": CONNECT_ARN}],
    ids=["empty", "query-not-a-map", "ticket-not-a-string", "no-query"],
)
def test_a_malformed_event_is_denied_never_raised(event: dict[str, Any], clock: ManualClock) -> None:
    assert effect(connect(event, InMemoryTicketStore(clock=clock), clock)) == "Deny"


def test_a_failing_store_is_a_deny_not_an_error(clock: ManualClock) -> None:
    class Broken(InMemoryTicketStore):
        def consume(self, ticket: object) -> TicketGrant | None:
            raise ConnectionError("DynamoDB unreachable")

    ticket = InMemoryTicketStore().issue(GRANT).ticket

    assert effect(connect(connect_event(ticket), Broken(clock=clock), clock)) == "Deny"


def test_the_logs_never_hold_a_ticket(tickets: TicketStore, clock: ManualClock, log_output: io.StringIO) -> None:
    used = tickets.issue(GRANT).ticket
    for event in (connect_event(used), connect_event(used), connect_event("B" * 43), connect_event("C" * 500)):
        connect(event, tickets, clock)

    logged = log_output.getvalue()
    assert "stream connection denied" in logged
    for secret in (used, "B" * 43, "C" * 100, GRANT.owner):
        assert secret not in logged
    reasons = [json.loads(line).get("reason") for line in logged.splitlines() if line.startswith("{")]
    assert [reason for reason in reasons if reason] == ["refused", "refused", "malformed"]


def test_the_default_store_is_the_table_of_the_environment(aws: Any, clock: ManualClock) -> None:
    client = boto3.client("dynamodb")
    ticket = DynamoTicketStore(lambda: client, aws.table_name).issue(GRANT).ticket

    decision = handler(connect_event(ticket), FakeLambdaContext(), clock=lambda: NOW)

    assert effect(decision) == "Allow"


def test_the_authorizer_imports_neither_pydantic_nor_an_event_handler() -> None:
    code = (
        "import sys; import stream_authorizer.handler; "
        "print(sorted(m for m in sys.modules if m.startswith(('pydantic', 'aws_lambda_powertools.event_handler'))))"
    )
    path = ":".join(str(ROOT / folder) for folder in ("layers/security", "functions/stream_authorizer"))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": path}, check=True
    )
    assert result.stdout.strip() == "[]"
