"""Fixtures shared by the integration tests: anonymous sessions allowed, the chat API in this process
behind the real authorizer and configured for the test OIDC issuer, a signed-in user's token and a
session of hers, a manual clock, the stream-ticket store in both its forms, a counter of AWS calls,
the WebSocket stage and a loopback OpenAI-compatible endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from support.api import InProcessApi
from support.asyncapi import validate_frame
from support.clocks import ManualClock
from support.issuer_server import IssuerServer
from support.openai_server import OpenAiServer
from support.stream_stage import StreamStage
from support.ticket_fakes import InMemoryTicketStore

from chatbot_security.storage.store import DynamoSessionStore
from chatbot_security.storage.tickets import DynamoTicketStore, TicketStore
from tools.aws_calls import AwsCalls, counting_aws_calls
from tools.lambda_context import FakeLambdaContext


@pytest.fixture(autouse=True)
def _anonymous_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOW_ANONYMOUS", "true")


@pytest.fixture
def api(lambda_context: FakeLambdaContext, oidc_env: IssuerServer) -> InProcessApi:
    return InProcessApi(lambda_context)


@pytest.fixture
def alice(oidc_env: IssuerServer) -> str:
    return oidc_env.issuer.token(sub="alice")


@pytest.fixture
def session_id(api: InProcessApi, alice: str) -> str:
    """A session of alice's."""
    return str(api.call("POST /v1/sessions", alice).body["session_id"])


@pytest.fixture
def store(aws: Any) -> DynamoSessionStore:
    """The DynamoDB session store on moto, retrying without sleeping (files that need another override it)."""
    client = boto3.client("dynamodb")
    return DynamoSessionStore(lambda: client, aws.table_name, idle_seconds=1800, sleep=lambda _: None)


@pytest.fixture
def clock() -> ManualClock:
    """A clock at support.clocks.FIXED_START that the test moves by hand."""
    return ManualClock()


@pytest.fixture(params=["in-memory", "dynamodb"])
def tickets(request: pytest.FixtureRequest, clock: ManualClock) -> TicketStore:
    """The stream-ticket store, in memory and on moto's DynamoDB: the same cases run on both."""
    if request.param == "in-memory":
        return InMemoryTicketStore(clock=clock)
    aws = request.getfixturevalue("aws")
    client = boto3.client("dynamodb")
    return DynamoTicketStore(lambda: client, aws.table_name, clock=clock)


@pytest.fixture
def calls() -> Iterator[AwsCalls]:
    """Every AWS call the code makes during the test, counted by service and operation."""
    with counting_aws_calls() as counter:
        yield counter


@pytest.fixture
def stage(monkeypatch: pytest.MonkeyPatch) -> Iterator[StreamStage]:
    """The WebSocket stage's management API on loopback, where the functions post their frames."""
    stage = StreamStage().start()
    stage.check = validate_frame  # every frame the product sends is one of the AsyncAPI document's messages
    monkeypatch.setenv("ALLOW_LOOPBACK_ISSUER", "true")
    monkeypatch.setenv("STREAM_CALLBACK_URL", stage.url)
    yield stage
    assert not stage.invalid, stage.invalid  # a frame outside docs/asyncapi.yaml
    stage.stop()


@pytest.fixture
def openai_server() -> Iterator[OpenAiServer]:
    """A loopback OpenAI-compatible endpoint with scripted answers."""
    server = OpenAiServer().start()
    yield server
    server.stop()
