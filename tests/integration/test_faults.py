"""Faults on every AWS call of the chat path and on the model provider (docs/resilience.md).

Each AWS call a request makes (DynamoDB, KMS, Secrets Manager) is made to throttle, fail with a
server error or time out, through botocore event hooks on the real clients (tests/support/faults.py),
the rest running against moto. The API must answer 503 with Retry-After (502/504 for the model), leave
the session exactly as it was (no half-written turn, counters unchanged), and a retry of the same post
with the same client_message_id once the fault is gone must complete exactly once: one model call
after the fix, one user message and one answer stored.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from support.api import InProcessApi, Reply
from support.caches import reset_caches
from support.faults import CONVERSE, AwsFaults, injecting_aws_faults, use_bedrock_double
from support.openai_server import OpenAiServer, Scripted, completion

from chat import dependencies
from chatbot_security.conversation.model_providers import MAX_ATTEMPTS, BedrockConverseModel, configured

pytestmark = pytest.mark.usefixtures("aws")

MESSAGES = "POST /v1/sessions/{session_id}/messages"
HISTORY = "GET /v1/sessions/{session_id}/messages"
SESSION = "GET /v1/sessions/{session_id}"
AWS_FAULTS = ("throttled", "server_error", "timeout")


@dataclass(frozen=True)
class ChatCall:
    """One AWS call a message post makes, and how to make the next post reach it."""

    name: str
    service: str
    operation: str
    skip: int = 0  # calls of the same operation made before it in the same request
    cold: str = ""  # "container": a container that has not seen the session; "secrets": nor the pepper
    client_message_id: bool = True


TURN_CALLS = [
    ChatCall("pepper", "secrets-manager", "GetSecretValue", cold="secrets"),
    ChatCall("session and history", "dynamodb", "Query"),
    ChatCall("data key", "kms", "Decrypt", cold="container"),
    ChatCall("claim and rate charge", "dynamodb", "TransactWriteItems"),
    ChatCall("turn", "dynamodb", "TransactWriteItems", skip=1),
    ChatCall("rate charge and tokens", "dynamodb", "TransactWriteItems", client_message_id=False),
]


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture
def table(aws: Any) -> Any:
    """A client of our own, created before any fault is armed (its calls are never failed)."""
    return boto3.client("dynamodb")


@pytest.fixture
def faults(table: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsFaults]:
    """Bedrock answered by the fault injector (it is not in moto); every client created from now on is armed."""
    monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "1000")
    reset_caches()
    with injecting_aws_faults() as injector:
        use_bedrock_double(injector, monkeypatch)
        yield injector


@pytest.fixture
def session_id(api: InProcessApi, alice: str, faults: AwsFaults) -> str:
    """A session with one turn already, in a container that has seen it."""
    created = str(api.call("POST /v1/sessions", alice).body["session_id"])
    assert api.call(MESSAGES, alice, {"content": "first"}, session_id=created).status == 201
    return created


# -- helpers ----------------------------------------------------------------------------------
def items_of(table: Any, session_id: str) -> list[dict[str, Any]]:
    """Every item of the session's partition: the session item, its messages, its idempotency records."""
    from chatbot_security.platform.settings import get_settings

    return list(
        table.query(
            TableName=get_settings().table_name,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"SESSION#{session_id}"}},
            ConsistentRead=True,
        )["Items"]
    )


def go_cold(call: ChatCall) -> None:
    """Forget what a warm container remembers, as needed to reach ``call`` again."""
    from chatbot_security.platform import secrets

    if call.cold:
        dependencies.default_conversations.cache_clear()
    if call.cold == "secrets":
        secrets.shared_secret_cache.cache_clear()


def assert_unavailable(reply: Reply) -> None:
    assert reply.status == 503, reply.body
    assert reply.body["error"]["code"] == "service_unavailable"
    assert reply.headers["Retry-After"] == "2"
    assert reply.headers["Cache-Control"] == "no-store"


def model_calls(faults: AwsFaults) -> int:
    return faults.answered[CONVERSE]


def post(api: InProcessApi, token: str, session_id: str, client_message_id: str | None) -> Reply:
    body = {"content": "second"}
    if client_message_id:
        body["client_message_id"] = client_message_id
    return api.call(MESSAGES, token, body, session_id=session_id)


def assert_one_more_turn(api: InProcessApi, token: str, session_id: str, turn: Reply) -> None:
    """The session holds exactly the first turn and this one: no duplicate, no half turn."""
    history = api.call(HISTORY, token, session_id=session_id).body["messages"]
    assert [(m["role"], m["content"]) for m in history] == [
        ("user", "first"), ("assistant", "the answer"), ("user", "second"), ("assistant", "the answer"),
    ]  # fmt: skip
    assert [m["message_id"] for m in history[2:]] == [
        turn.body["user_message"]["message_id"],
        turn.body["assistant_message"]["message_id"],
    ]
    assert api.call(SESSION, token, session_id=session_id).body["message_count"] == 4


# -- every AWS call of a turn -------------------------------------------------------------------
@pytest.mark.parametrize("fault", AWS_FAULTS)
@pytest.mark.parametrize("call", TURN_CALLS, ids=lambda call: call.name.replace(" ", "-"))
def test_a_failed_aws_call_in_a_turn_is_a_503_that_stores_nothing_and_a_retry_completes_once(
    api: InProcessApi, alice: str, session_id: str, faults: AwsFaults, table: Any, call: ChatCall, fault: str
) -> None:
    # Given a session and a container in the state that makes the post reach `call`
    before = items_of(table, session_id)
    client_message_id = str(uuid.uuid4()) if call.client_message_id else None
    go_cold(call)
    calls_before = model_calls(faults)
    # When that call throttles, fails or times out
    faults.arm(call.service, call.operation, fault, skip=call.skip)
    failed = post(api, alice, session_id, client_message_id)
    # Then the API says "retry later", and nothing of the turn was stored
    assert faults.fired() == 1
    assert_unavailable(failed)
    assert items_of(table, session_id) == before
    # And once the service is healthy again, the same post completes exactly once
    faults.heal()
    calls_before_retry = model_calls(faults)
    retried = post(api, alice, session_id, client_message_id)
    assert retried.status == 201, retried.body
    assert model_calls(faults) - calls_before_retry == 1
    assert model_calls(faults) - calls_before <= 2  # the turn call fails after the model answered
    assert_one_more_turn(api, alice, session_id, retried)
    if client_message_id:
        assert post(api, alice, session_id, client_message_id).body == retried.body
        assert model_calls(faults) - calls_before_retry == 1


@pytest.mark.parametrize(
    ("call", "fault"),
    [(TURN_CALLS[3], "lost_answer"), (TURN_CALLS[5], "lost_answer")],
    ids=["claim-written-answer-lost", "rate-charge-and-tokens-written-answer-lost"],
)
def test_a_write_whose_answer_was_lost_before_the_model_call_leaves_no_turn_behind(
    api: InProcessApi, alice: str, session_id: str, faults: AwsFaults, table: Any, call: ChatCall, fault: str
) -> None:
    # Given a post whose claim (or rate charge) is written, but whose answer never arrives
    client_message_id = str(uuid.uuid4()) if call.client_message_id else None
    before = [item for item in items_of(table, session_id) if not item["sk"]["S"].startswith("IDEM#")]
    faults.arm(call.service, call.operation, fault)
    calls_before = model_calls(faults)

    failed = post(api, alice, session_id, client_message_id)

    # Then it is a 503 without a model call, and no message was stored
    assert_unavailable(failed)
    assert model_calls(faults) == calls_before
    assert [item for item in items_of(table, session_id) if not item["sk"]["S"].startswith("IDEM#")] == before
    # And the retry does not wait for a claim that nobody holds: it is answered at once, exactly once
    faults.heal()
    retried = post(api, alice, session_id, client_message_id)
    assert retried.status == 201, retried.body
    assert model_calls(faults) == calls_before + 1
    assert_one_more_turn(api, alice, session_id, retried)


def test_a_turn_written_whose_answer_was_lost_is_returned_by_the_retry_without_a_model_call(
    api: InProcessApi, alice: str, session_id: str, faults: AwsFaults
) -> None:
    # Given a post whose turn transaction commits, but whose answer never reaches the function
    client_message_id = str(uuid.uuid4())
    faults.arm("dynamodb", "TransactWriteItems", "lost_answer", skip=1)
    failed = post(api, alice, session_id, client_message_id)
    assert_unavailable(failed)
    calls_after_failure = model_calls(faults)
    # When the client retries with the same client_message_id
    faults.heal()
    retried = post(api, alice, session_id, client_message_id)
    # Then it gets the stored turn: no second model call, no duplicate
    assert retried.status == 201
    assert model_calls(faults) == calls_after_failure
    assert_one_more_turn(api, alice, session_id, retried)


@pytest.mark.parametrize("reason", ["ThrottlingError", "ProvisionedThroughputExceeded", "TransactionConflict"])
@pytest.mark.parametrize("skip", [0, 1], ids=["claim", "turn"])
def test_a_transaction_cancelled_for_throughput_or_contention_is_a_503(
    api: InProcessApi, alice: str, session_id: str, faults: AwsFaults, table: Any, reason: str, skip: int
) -> None:
    # TransactionConflict is retried by the store first: it must persist through every attempt
    before = items_of(table, session_id)
    client_message_id = str(uuid.uuid4())
    faults.cancel_transaction(reason, skip=skip, times=3 if reason == "TransactionConflict" else 1)

    assert_unavailable(post(api, alice, session_id, client_message_id))
    assert items_of(table, session_id) == before

    faults.heal()
    retried = post(api, alice, session_id, client_message_id)
    assert retried.status == 201
    assert_one_more_turn(api, alice, session_id, retried)


# -- the model provider -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [("throttled", 502, "model_error"), ("server_error", 502, "model_error"), ("timeout", 504, "model_timeout")],
)
def test_a_failing_bedrock_is_a_502_or_504_that_stores_nothing_and_a_retry_completes_once(
    api: InProcessApi, alice: str, session_id: str, faults: AwsFaults, table: Any, fault: str, status: int, code: str
) -> None:
    before = items_of(table, session_id)
    client_message_id = str(uuid.uuid4())
    faults.arm(*CONVERSE, fault, times=MAX_ATTEMPTS)  # every attempt the provider's time budget allows

    failed = post(api, alice, session_id, client_message_id)

    assert failed.status == status
    assert failed.body["error"]["code"] == code
    assert items_of(table, session_id) == before
    faults.heal()
    calls_before_retry = model_calls(faults)
    retried = post(api, alice, session_id, client_message_id)
    assert retried.status == 201
    assert model_calls(faults) == calls_before_retry + 1
    assert_one_more_turn(api, alice, session_id, retried)


def test_one_bedrock_throttle_is_absorbed_by_the_providers_retry(
    api: InProcessApi, alice: str, session_id: str, faults: AwsFaults
) -> None:
    faults.arm(*CONVERSE, "throttled")

    turn = post(api, alice, session_id, str(uuid.uuid4()))

    assert turn.status == 201
    assert_one_more_turn(api, alice, session_id, turn)


@pytest.fixture
def openai(openai_server: OpenAiServer, faults: AwsFaults, monkeypatch: pytest.MonkeyPatch) -> OpenAiServer:
    """The OpenAI-compatible provider on a loopback endpoint, its key in Secrets Manager (moto)."""
    arn = boto3.client("secretsmanager").create_secret(Name="model-key", SecretString="sk-local")["ARN"]
    monkeypatch.setattr(configured, "BedrockConverseModel", BedrockConverseModel)
    monkeypatch.setenv("MODEL_PROVIDER", "openai")
    monkeypatch.setenv("OPENAI_BASE_URL", openai_server.base_url)
    monkeypatch.setenv("MODEL_API_KEY_SECRET_ARN", arn)
    monkeypatch.setenv("MODEL_TIMEOUT_SECONDS", "1.5")
    dependencies.default_conversations.cache_clear()
    configured._secrets_provider.cache_clear()
    from chatbot_security.platform.settings import get_settings

    get_settings.cache_clear()
    return openai_server


def openai_answer(text: str = "the answer") -> Scripted:
    return Scripted(body=completion(text))


@pytest.mark.parametrize(
    ("script", "status", "code"),
    [
        ([Scripted(status=429, body={"error": {}})] * 3, 502, "model_error"),
        ([Scripted(status=503, body={"error": {}})] * 3, 502, "model_error"),
        ([Scripted(body=completion("too late"), delay=3)], 504, "model_timeout"),
    ],
    ids=["throttled", "server_error", "timeout"],
)
def test_a_failing_openai_endpoint_is_a_502_or_504_that_stores_nothing_and_a_retry_completes_once(
    api: InProcessApi, alice: str, openai: OpenAiServer, table: Any, script: list[Scripted], status: int, code: str
) -> None:
    session_id = str(api.call("POST /v1/sessions", alice).body["session_id"])
    openai.script.append(openai_answer())
    assert api.call(MESSAGES, alice, {"content": "first"}, session_id=session_id).status == 201
    before = items_of(table, session_id)
    client_message_id = str(uuid.uuid4())
    openai.script.extend(script)

    failed = post(api, alice, session_id, client_message_id)

    assert failed.status == status
    assert failed.body["error"]["code"] == code
    assert items_of(table, session_id) == before
    requests_before_retry = len(openai.requests)
    openai.script.clear()
    openai.script.append(openai_answer())
    retried = post(api, alice, session_id, client_message_id)
    assert retried.status == 201
    assert len(openai.requests) == requests_before_retry + 1
    assert_one_more_turn(api, alice, session_id, retried)


@pytest.mark.parametrize("fault", AWS_FAULTS)
def test_the_model_api_key_unavailable_is_a_503_that_stores_nothing(
    api: InProcessApi, alice: str, openai: OpenAiServer, faults: AwsFaults, table: Any, fault: str
) -> None:
    session_id = str(api.call("POST /v1/sessions", alice).body["session_id"])
    before = items_of(table, session_id)
    client_message_id = str(uuid.uuid4())
    faults.arm("secrets-manager", "GetSecretValue", fault, times=3)  # Powertools' client retries, then ours

    assert_unavailable(post(api, alice, session_id, client_message_id))
    assert items_of(table, session_id) == before
    assert openai.requests == []

    faults.heal()
    openai.script.append(openai_answer())
    retried = post(api, alice, session_id, client_message_id)
    assert retried.status == 201, retried.body
    assert len(openai.requests) == 1


# -- the other routes -------------------------------------------------------------------------
@dataclass(frozen=True)
class RouteCall:
    name: str
    route: str
    service: str
    operation: str
    cold: bool = False


ROUTE_CALLS = [
    RouteCall("create: rate counter", "POST /v1/sessions", "dynamodb", "UpdateItem"),
    RouteCall("create: data key", "POST /v1/sessions", "kms", "GenerateDataKey"),
    RouteCall("create: session item and live counter", "POST /v1/sessions", "dynamodb", "TransactWriteItems"),
    RouteCall("list: owner index", "GET /v1/sessions", "dynamodb", "Query"),
    RouteCall("read: session item", SESSION, "dynamodb", "GetItem"),
    RouteCall("history: session item", HISTORY, "dynamodb", "GetItem"),
    RouteCall("history: messages", HISTORY, "dynamodb", "Query"),
    RouteCall("history: data key", HISTORY, "kms", "Decrypt", cold=True),
    RouteCall("delete: session item", "DELETE /v1/sessions/{session_id}", "dynamodb", "GetItem"),
    RouteCall("delete: mark deleted and uncount", "DELETE /v1/sessions/{session_id}", "dynamodb", "TransactWriteItems"),
]


@pytest.mark.parametrize("fault", AWS_FAULTS)
@pytest.mark.parametrize("call", ROUTE_CALLS, ids=lambda call: call.name.replace(": ", "-").replace(" ", "-"))
def test_a_failed_aws_call_on_any_route_is_a_503_and_changes_nothing(
    api: InProcessApi, alice: str, session_id: str, faults: AwsFaults, table: Any, call: RouteCall, fault: str
) -> None:
    before = items_of(table, session_id)
    sessions_before = api.call("GET /v1/sessions", alice).body["sessions"]
    if call.cold:
        dependencies.default_conversations.cache_clear()
    faults.arm(call.service, call.operation, fault)

    assert_unavailable(api.call(call.route, alice, session_id=session_id))

    assert faults.fired() == 1
    faults.heal()
    assert items_of(table, session_id) == before
    assert api.call("GET /v1/sessions", alice).body["sessions"] == sessions_before


@pytest.mark.parametrize("fault", AWS_FAULTS)
@pytest.mark.parametrize(
    ("service", "operation"),
    [("dynamodb", "UpdateItem"), ("kms", "GenerateDataKey"), ("dynamodb", "PutItem"),
     ("secrets-manager", "GetSecretValue")],
    ids=["rate-counter", "data-key", "session-item", "token-key"],
)  # fmt: skip
def test_a_failed_aws_call_creating_an_anonymous_session_is_a_503_that_leaves_no_session(
    api: InProcessApi, alice: str, faults: AwsFaults, table: Any, service: str, operation: str, fault: str
) -> None:
    from chatbot_security.platform.settings import get_settings

    # A warm container that has read the pepper but not yet the session-token key
    assert api.call("GET /v1/sessions", alice).status == 200
    faults.arm(service, operation, fault)

    assert_unavailable(api.call("POST /v1/anonymous-sessions", None, content_type=None))

    sessions = table.scan(
        TableName=get_settings().table_name,
        FilterExpression="sk = :meta",
        ExpressionAttributeValues={":meta": {"S": "SESSION"}},
    )["Items"]
    assert sessions == []
    faults.heal()
    assert api.call("POST /v1/anonymous-sessions", None, content_type=None).status == 201


# -- the SDK's own retries ----------------------------------------------------------------------
def test_one_throttled_dynamodb_answer_is_absorbed_by_the_sdk_retries(
    api: InProcessApi, alice: str, session_id: str, faults: AwsFaults
) -> None:
    # Given DynamoDB answering one request with a throttling error on the wire
    faults.throttle_on_the_wire("dynamodb", "Query")
    # When a turn is posted, the SDK (standard mode, 3 attempts) retries it by itself
    turn = post(api, alice, session_id, str(uuid.uuid4()))
    # Then the client never notices
    assert turn.status == 201
    assert faults.fired() == 1
    assert faults.sends[("dynamodb", "Query")] >= 2
    assert_one_more_turn(api, alice, session_id, turn)
