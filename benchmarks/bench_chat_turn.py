"""Chat turn, warm (DESIGN.md section 7, items 3 and 4).

    .venv/bin/python benchmarks/bench_chat_turn.py [--rounds N] [--strict] [--skip-aws]

Item 4, handler work per turn: ``chat.handler.lambda_handler`` answering
``POST /v1/sessions/{id}/messages`` on in-memory fakes for data access and KMS (tests/support/fakes.py)
with the echo model, against a bare Powertools ``APIGatewayHttpResolver`` answering the same request
(parse the JSON body, return a JSON answer with 201). Budget: at most 5x. The figure is the median of
per-round ratios over interleaved rounds (bare, handler, bare, ...), so background load hits both
alike. Everything the handler does is included: request guard, route validation (pydantic), owner
check, rate limit, PII masking, AES-GCM sealing of both messages, Powertools logger and metrics.

Item 3, AWS calls per warm turn: the real handler against an in-process moto (the table, key and
secrets of template.yaml) with Bedrock behind botocore's Stubber, counted per service by a botocore
event hook, after 0, 20 and 200 messages of history. Budget: KMS 0, Secrets Manager 0, DynamoDB at
most 3, model 1.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from budgets import record

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / p) for p in ("layers/security", "functions/chat", "local", "tests")]

RATIO_BUDGET = 5.0
CALL_BUDGET = {"kms": 0, "secrets-manager": 0, "dynamodb": 3, "bedrock-runtime": 1}
ROUND_SECONDS = 0.1
ISSUER = "https://issuer.bench.invalid"
CONTEXT = {"kind": "user", "subject": "bench-user", "issuer": ISSUER, "roles": "[]", "mfa": False, "session_id": ""}

# Powertools warns on every flush without metrics; the fakes publish none.
warnings.filterwarnings("ignore", message="No application metrics to publish")

from chat.api import SessionId  # noqa: E402 - after sys.path; module level for the route annotations
from chat.models import MessageRequest  # noqa: E402

os.environ.update(
    {
        "POWERTOOLS_SERVICE_NAME": "chatbot-bench",
        "POWERTOOLS_METRICS_NAMESPACE": "Chatbot",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
        "RATE_LIMIT_PER_MINUTE": "10000",
        "MAX_MESSAGES_PER_SESSION": "10000",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
)


@dataclass
class Context:
    function_name: str = "ChatFunction"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:ChatFunction"
    aws_request_id: str = "bench"


def post_event(session_id: str, content: str = "What is the capital of France?") -> dict[str, Any]:
    from support.events import chat_event

    body = json.dumps({"content": content})
    return chat_event("POST /v1/sessions/{session_id}/messages", CONTEXT, body, session_id=session_id)


def expect_201(response: dict[str, Any]) -> None:
    if response["statusCode"] != 201:
        raise RuntimeError(f"the measured request failed: {response['statusCode']} {response.get('body')}")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The metrics flush prints EMF lines: keep the report readable."""
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink):
        yield


# -- item 4 -----------------------------------------------------------------------------------
def bare_resolver(validated: bool = False) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The reference: one route, the JSON body parsed, a JSON answer. ``validated`` declares the chat
    route's own request models, so Powertools validates path and body as in the chat function."""
    from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

    bare = APIGatewayHttpResolver(enable_validation=validated)
    if validated:

        @bare.post("/v1/sessions/<session_id>/messages")
        def post_validated(session_id: SessionId, message: MessageRequest) -> tuple[dict[str, Any], int]:
            return {"session_id": str(session_id), "reply": f"You said: {message.content}"}, 201

    else:

        @bare.post("/v1/sessions/<session_id>/messages")
        def post_message(session_id: str) -> tuple[dict[str, Any], int]:
            content = bare.current_event.json_body["content"]
            return {"session_id": session_id, "reply": f"You said: {content}"}, 201

    context = Context()
    return lambda event: bare.resolve(event, context)  # type: ignore[arg-type]


def glue_only() -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The chat handler with a logic layer that returns a fixed turn: decorators, request guard,
    validation, identity parsing and response headers, without the turn itself."""
    from chat.handler import lambda_handler
    from chat.models import Message, Turn
    from chatbot_security.settings import get_settings

    message = Message(message_id="m", role="user", content="x", created_at="2026-01-01T00:00:00.000Z")
    fixed = Turn(user_message=message, assistant_message=message)

    class FixedAnswer:
        settings = get_settings()

        def post_message(self, *args: Any) -> Turn:
            return fixed

    context, service = Context(), FixedAnswer()
    return lambda event: lambda_handler(event, context, conversations=service)  # type: ignore[arg-type]


def chat_handler() -> Callable[[], tuple[Callable[[dict[str, Any]], dict[str, Any]], str]]:
    """A factory: each call gives a handler on fresh in-memory fakes and a new session in them (one per
    round, so that neither the session nor the per-minute rate limit ever fills up)."""
    from support.fakes import in_memory_conversations

    from chat.handler import lambda_handler
    from chat.model_providers import EchoModel
    from chatbot_security.principal import Principal
    from chatbot_security.settings import get_settings

    principal = Principal(kind="user", subject=CONTEXT["subject"], issuer=ISSUER)  # type: ignore[arg-type]
    context = Context()

    def fresh() -> tuple[Callable[[dict[str, Any]], dict[str, Any]], str]:
        service = in_memory_conversations(EchoModel(), get_settings())
        session_id = service.create_session(principal).session_id
        return (lambda event: lambda_handler(event, context, conversations=service)), session_id

    return fresh


def per_call_us(call: Callable[[], object], seconds: float = ROUND_SECONDS) -> tuple[float, int]:
    count, started = 0, time.perf_counter()
    while count < 20 or time.perf_counter() - started < seconds:
        call()
        count += 1
    return (time.perf_counter() - started) / count * 1e6, count


@dataclass
class HandlerWork:
    bare_us: float
    figures: dict[str, tuple[float, float]]  # name: (median us, median ratio to the bare resolver)


def measure_handler_work(rounds: int) -> HandlerWork:
    bare, validated, glue, fresh = bare_resolver(), bare_resolver(validated=True), glue_only(), chat_handler()
    samples: dict[str, list[float]] = {"bare": [], "validated": [], "glue": [], "handler": []}
    with quiet():
        handler, session_id = fresh()
        warm = post_event(session_id)
        for call in (bare, validated, glue, handler):
            expect_201(call(warm))
        for _ in range(rounds):
            handler, session_id = fresh()
            event = post_event(session_id)
            for name, call in (("bare", bare), ("validated", validated), ("glue", glue), ("handler", handler)):
                samples[name].append(per_call_us(lambda: call(event))[0])  # noqa: B023 - called right here
            expect_201(handler(event))
    figures = {
        name: (
            statistics.median(samples[name]),
            statistics.median(x / b for x, b in zip(samples[name], samples["bare"], strict=True)),
        )
        for name in ("validated", "glue", "handler")
    }
    return HandlerWork(statistics.median(samples["bare"]), figures)


# -- item 3 -----------------------------------------------------------------------------------
def converse_reply(text: str) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
        "metrics": {"latencyMs": 1},
    }


def measure_aws_calls(histories: tuple[int, ...]) -> dict[int, dict[str, int]]:
    import boto3
    from botocore.stub import Stubber
    from support.aws_calls import counting_aws_calls

    from chat import dependencies
    from chat.handler import lambda_handler
    from chat.model_providers import BedrockConverseModel
    from chatbot_local.aws import MotoService, provision
    from chatbot_local.template import Template

    moto = MotoService()
    endpoint = moto.start()
    try:
        resources = provision(Template.load(ROOT / "template.yaml"), {}, endpoint, "eu-west-1")
        os.environ.update(
            {
                "AWS_ENDPOINT_URL": endpoint,
                "TABLE_NAME": resources.table_name,
                "KMS_KEY_ID": resources.key_arn,
                "SESSION_TOKEN_SECRET_ARN": resources.secret_arns["SessionTokenSecret"],
                "USER_ID_PEPPER_SECRET_ARN": resources.secret_arns["UserIdPepperSecret"],
                "MODEL_PROVIDER": "bedrock",
                "MODEL_ID": "bench-model",
            }
        )
        from chat.dependencies import default_conversations
        from chatbot_security.aws_clients import client
        from chatbot_security.secrets import shared_secret_cache
        from chatbot_security.settings import get_settings

        for cached in (get_settings, client, default_conversations, shared_secret_cache):
            cached.cache_clear()  # a new container, configured for moto
        results: dict[int, dict[str, int]] = {}
        with counting_aws_calls() as calls, quiet():
            runtime = boto3.client("bedrock-runtime")
            dependencies.BedrockConverseModel = (  # type: ignore[misc]
                lambda settings: BedrockConverseModel(settings, runtime=lambda _timeout: runtime)
            )
            context = Context()
            with Stubber(runtime) as stub:
                for history in histories:
                    created = lambda_handler(
                        post_event(str(uuid.uuid4())) | {"routeKey": "POST /v1/sessions", "rawPath": "/v1/sessions",
                                                         "pathParameters": None, "body": None},
                        context,
                    )  # fmt: skip
                    session_id = json.loads(created["body"])["session_id"]
                    for turn in range(history // 2 + 1):  # the history, then one more to warm up
                        stub.add_response("converse", converse_reply(f"answer {turn}"))
                        expect_201(lambda_handler(post_event(session_id, f"question {turn}"), context))
                    stub.add_response("converse", converse_reply("measured"))
                    calls.clear()
                    expect_201(lambda_handler(post_event(session_id, "measured turn"), context))
                    results[history] = calls.by_service()
        return results
    finally:
        moto.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a budget is missed")
    parser.add_argument("--skip-aws", action="store_true", help="skip item 3 (starts moto)")
    options = parser.parse_args(argv)
    met = True

    work = measure_handler_work(options.rounds)
    ratio = work.figures["handler"][1]
    met &= ratio <= RATIO_BUDGET
    print(f"Chat turn, warm (DESIGN.md 7.4): median of {options.rounds} interleaved rounds")
    print(f"  {'bare Powertools resolver':44s} {work.bare_us:8.1f} us")
    for name, label in (
        ("validated", "  with the chat route's request validation"),
        ("glue", "  chat handler with a fixed-answer logic"),
    ):
        micros, share = work.figures[name]
        print(f"  {label:44s} {micros:8.1f} us  {share:5.2f}x  (for information)")
    verdict = "ok" if ratio <= RATIO_BUDGET else "OVER BUDGET"
    record(
        "7.4",
        "chat handler (fakes, echo) vs bare resolver",
        f"{ratio:.2f}x",
        f"<= {RATIO_BUDGET:g}x",
        ratio <= RATIO_BUDGET,
    )
    micros = work.figures["handler"][0]
    print(f"  {'chat handler, fakes + echo':44s} {micros:8.1f} us  {ratio:5.2f}x  budget {RATIO_BUDGET}x  {verdict}")

    if not options.skip_aws:
        print("AWS calls per warm chat turn (DESIGN.md 7.3), moto + Bedrock stub:")
        for history, counts in measure_aws_calls((0, 20, 200)).items():
            ok = all(counts.get(s, 0) <= limit for s, limit in CALL_BUDGET.items())
            ok &= counts.get("bedrock-runtime", 0) == 1
            met &= ok
            shown = ", ".join(f"{service} {counts.get(service, 0)}" for service in CALL_BUDGET)
            measured = "/".join(str(counts.get(service, 0)) for service in CALL_BUDGET)
            record("7.3", f"history {history}: KMS/SecretsMgr/DynamoDB/model", measured, "0/0/<=3/1", ok)
            print(
                f"  history {history:3d}: {shown}  budget KMS 0, SM 0, DynamoDB <= 3, model 1  {'ok' if ok else 'OVER'}"
            )
    return 1 if options.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
