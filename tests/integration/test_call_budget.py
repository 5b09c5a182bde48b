"""docs/contract.md section 7, item 3: AWS calls per warm chat turn, counted with a botocore event hook.

KMS 0 (at most 1 the first time a container sees a session), Secrets Manager 0, DynamoDB at most 3,
model 1, whatever the length of the history, with and without a client_message_id.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import pytest
from botocore.stub import Stubber
from support.api import InProcessApi, Reply
from support.caches import reset_caches
from support.guardrail_responses import converse_reply
from support.openai_server import OpenAiServer
from support.provider_models import use_openai

from chatbot_security.conversation.model_providers import BedrockConverseModel, configured
from tools.aws_calls import AwsCalls

pytestmark = pytest.mark.usefixtures("aws")

MESSAGES = "POST /v1/sessions/{session_id}/messages"
BUDGET = {"kms": 0, "secrets-manager": 0, "dynamodb": 3, "bedrock-runtime": 1}


@pytest.fixture
def bedrock(calls: AwsCalls, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stubber]:
    """Bedrock through botocore's Stubber (Bedrock is not in moto), its calls counted like the others."""
    monkeypatch.setenv("MODEL_PROVIDER", "bedrock")
    monkeypatch.setenv("MODEL_ID", "test-model")
    monkeypatch.setenv("MAX_MESSAGES_PER_SESSION", "1000")
    monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "10000")
    reset_caches()
    runtime = boto3.client("bedrock-runtime")
    monkeypatch.setattr(
        configured,
        "BedrockConverseModel",
        lambda settings: BedrockConverseModel(settings, runtime=lambda _timeout: runtime),
    )
    with Stubber(runtime) as stub:
        yield stub


def session_with_history(api: InProcessApi, token: str, bedrock: Stubber, messages: int) -> str:
    session_id = str(api.call("POST /v1/sessions", token).body["session_id"])
    for turn in range(messages // 2):
        bedrock.add_response("converse", converse_reply(f"answer {turn}"))
        assert api.call(MESSAGES, token, {"content": f"question {turn}"}, session_id=session_id).status == 201
    return session_id


def post_one_more_turn(
    api: InProcessApi, token: str, bedrock: Stubber, calls: AwsCalls, session_id: str, with_client_id: bool
) -> Reply:
    """Post "and now?" (with a client_message_id or not), counting the AWS calls from the post on."""
    body: dict[str, str] = {"content": "and now?"}
    if with_client_id:
        body["client_message_id"] = str(uuid.uuid4())
    bedrock.add_response("converse", converse_reply("here you go"))
    calls.clear()
    return api.call(MESSAGES, token, body, session_id=session_id)


def within_budget(counts: dict[str, int]) -> bool:
    return (
        all(counts.get(service, 0) <= limit for service, limit in BUDGET.items())
        and counts.get("bedrock-runtime", 0) == BUDGET["bedrock-runtime"]
    )


@pytest.mark.parametrize("history", [0, 20, 200])
@pytest.mark.parametrize("with_client_id", [False, True], ids=["plain", "client_message_id"])
def test_a_warm_turn_stays_within_the_aws_call_budget(
    api: InProcessApi, alice: str, bedrock: Stubber, calls: AwsCalls, history: int, with_client_id: bool
) -> None:
    # Given a session with `history` messages, in a container that has seen it
    session_id = session_with_history(api, alice, bedrock, history)
    # When one more turn is posted (the calls counted from here)
    reply = post_one_more_turn(api, alice, bedrock, calls, session_id, with_client_id)
    # Then it is answered within the budget
    assert reply.status == 201
    counts = calls.by_service()
    print(f"history={history} client_message_id={with_client_id}: {counts} {calls.operations('dynamodb')}")
    assert within_budget(counts), counts


@pytest.mark.parametrize("with_client_id", [False, True], ids=["plain", "client_message_id"])
def test_token_quotas_and_a_deployment_budget_add_no_call_to_a_warm_turn(
    api: InProcessApi, alice: str, bedrock: Stubber, calls: AwsCalls, monkeypatch: pytest.MonkeyPatch,
    with_client_id: bool,
) -> None:  # fmt: skip
    # Given a deployment budget on top of the owner's daily quota, and a session with history
    monkeypatch.setenv("DAILY_TOKEN_BUDGET", "100000000")
    reset_caches()
    session_id = session_with_history(api, alice, bedrock, 20)
    # When one more turn is posted (the calls counted from here)
    reply = post_one_more_turn(api, alice, bedrock, calls, session_id, with_client_id)
    # Then the reservation and the settlement ride in the turn's two transactions
    assert reply.status == 201
    assert within_budget(calls.by_service()), calls.by_service()
    assert calls.operations("dynamodb") == {"Query": 1, "TransactWriteItems": 2}


def test_a_repeated_post_makes_no_model_call_and_stays_within_the_budget(
    api: InProcessApi, alice: str, bedrock: Stubber, calls: AwsCalls
) -> None:
    session_id = session_with_history(api, alice, bedrock, 20)
    body = {"content": "once", "client_message_id": str(uuid.uuid4())}
    bedrock.add_response("converse", converse_reply("only once"))
    first = api.call(MESSAGES, alice, body, session_id=session_id)
    calls.clear()

    again = api.call(MESSAGES, alice, body, session_id=session_id)

    assert again.body == first.body
    counts = calls.by_service()
    assert counts.get("bedrock-runtime", 0) == 0
    assert counts.get("dynamodb", 0) <= 3
    assert counts.get("kms", 0) == counts.get("secrets-manager", 0) == 0


def test_a_container_seeing_a_session_for_the_first_time_makes_one_kms_call(
    api: InProcessApi, alice: str, bedrock: Stubber, calls: AwsCalls
) -> None:
    session_id = session_with_history(api, alice, bedrock, 20)
    from chat.dependencies import default_conversations

    default_conversations.cache_clear()  # a new container: no data key cached
    bedrock.add_response("converse", converse_reply("fresh container"))
    calls.clear()

    assert api.call(MESSAGES, alice, {"content": "hello"}, session_id=session_id).status == 201

    assert calls.operations("kms") == {"Decrypt": 1}
    assert calls.by_service().get("dynamodb", 0) <= 3


def test_a_warm_turn_on_the_openai_provider_reads_no_secret(
    api: InProcessApi,
    alice: str,
    calls: AwsCalls,
    openai_server: OpenAiServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_openai(openai_server, monkeypatch)
    session_id = str(api.call("POST /v1/sessions", alice).body["session_id"])
    for n in range(10):
        api.call(MESSAGES, alice, {"content": f"warm-up {n}"}, session_id=session_id)
    calls.clear()
    requests_before = len(openai_server.requests)

    assert api.call(MESSAGES, alice, {"content": "warm"}, session_id=session_id).status == 201

    counts = calls.by_service()
    assert counts.get("secrets-manager", 0) == counts.get("kms", 0) == 0
    assert counts.get("dynamodb", 0) <= 3
    assert len(openai_server.requests) - requests_before == 1
    assert openai_server.requests[-1]["headers"]["Authorization"] == "Bearer sk-local"
