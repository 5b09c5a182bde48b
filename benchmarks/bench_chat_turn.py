"""Chat turn, warm: handler per turn with tracing on (budget 4) and AWS calls per turn (budget 3).

    .venv/bin/python benchmarks/bench_chat_turn.py [--rounds N] [--strict] [--skip-aws]
    .venv/bin/python benchmarks/bench_chat_turn.py --quick      # CI: the AWS call counts only

Budget 4, handler work per turn: ``chat.handler.lambda_handler`` answering
``POST /v1/sessions/{id}/messages`` on in-memory fakes for data access and KMS (tests/support/fakes.py)
with the echo model, against a bare Powertools ``APIGatewayHttpResolver`` answering the same request
(parse the JSON body, return a JSON answer with 201) behind ``tracer.capture_lambda_handler``, both with
tracing active as deployed (a sampled trace header per invocation, segments sent to a UDP socket that
only counts them). Budget: at most 4x. The same with tracing off is printed for information, beside the
previous method's figure (tracing off, the bare resolver untraced). Each setting runs in its own process
(the Tracer reads its environment when it is created); the figure is the median of per-round ratios
over interleaved rounds (bare, handler, bare, ...). Everything the handler does is included: request
guard, route validation (pydantic), owner check, rate limit, PII masking, AES-GCM sealing of both
messages, Powertools logger, metrics and tracer.

Budget 3, AWS calls per warm turn (a gate of ``--quick``): the real handler against an in-process moto
(the table, key and secrets of template.yaml) with Bedrock behind botocore's Stubber, counted per
service by a botocore event hook, after 0, 20 and 200 messages of history. Budget: KMS 0, Secrets
Manager 0, DynamoDB at most 3, model 1.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness
from budgets import record

ROOT = Path(__file__).resolve().parents[1]
# The repository root for the tools package; tests/ only for the in-memory fakes (tests/support/fakes.py).
sys.path[:0] = [str(ROOT), *(str(ROOT / p) for p in ("layers/security", "functions/chat", "local"))]

RATIO_BUDGET = 4.0
OLD_RATIO_BUDGET = 5.0  # handler vs untraced resolver, tracing off
CALL_BUDGET = {"kms": 0, "secrets-manager": 0, "dynamodb": 3, "bedrock-runtime": 1}
ROUND_SECONDS = 0.1
ISSUER = "https://issuer.bench.invalid"
CONTEXT = {"kind": "user", "subject": "bench-user", "issuer": ISSUER, "roles": "[]", "mfa": False, "session_id": ""}

# Powertools warns on every flush without metrics; the fakes publish none.
warnings.filterwarnings("ignore", message="No application metrics to publish")

from chat.api import SessionId  # noqa: E402 - after sys.path; module level for the route annotations
from chatbot_security.conversation.models import MessageRequest  # noqa: E402
from tools.lambda_context import FakeLambdaContext  # noqa: E402

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


def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext("ChatFunction", 512, "bench")


def post_event(session_id: str, content: str = "What is the capital of France?") -> dict[str, Any]:
    from tools.lambda_events import chat_event

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
def bare_resolver(validated: bool = False, traced: bool = False) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The reference: one route, the JSON body parsed, a JSON answer. ``validated`` declares the chat
    route's own request models, so Powertools validates path and body as in the chat function;
    ``traced`` puts it behind ``tracer.capture_lambda_handler``, as a typical traced handler is."""
    from aws_lambda_powertools import Tracer
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

    context = lambda_context()
    if not traced:
        return lambda event: bare.resolve(event, context)  # type: ignore[arg-type]
    tracer = Tracer(service="bare")

    @tracer.capture_lambda_handler
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return bare.resolve(event, context)

    return lambda event: handler(event, context)


def glue_only() -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The chat handler with a logic layer that returns a fixed turn: decorators, request guard,
    validation, identity parsing and response headers, without the turn itself."""
    from chat.handler import lambda_handler
    from chatbot_security.conversation.models import Message, Turn
    from chatbot_security.platform.settings import get_settings

    message = Message(message_id="m", role="user", content="x", created_at="2026-01-01T00:00:00.000Z")
    fixed = Turn(user_message=message, assistant_message=message)

    class FixedAnswer:
        settings = get_settings()

        def post_message(self, *args: Any) -> Turn:
            return fixed

    context, service = lambda_context(), FixedAnswer()
    return lambda event: lambda_handler(event, context, conversations=service)


def chat_handler() -> Callable[[], tuple[Callable[[dict[str, Any]], dict[str, Any]], str]]:
    """A factory: each call gives a handler on fresh in-memory fakes and a new session in them (one per
    round, so that neither the session nor the per-minute rate limit ever fills up)."""
    from chat.handler import lambda_handler
    from chatbot_security.conversation.model_providers import EchoModel
    from chatbot_security.identity.principal import Principal
    from chatbot_security.platform.settings import get_settings
    from tools.fakes import in_memory_conversations

    principal = Principal(kind="user", subject=CONTEXT["subject"], issuer=ISSUER)  # type: ignore[arg-type]
    context = lambda_context()

    def fresh() -> tuple[Callable[[dict[str, Any]], dict[str, Any]], str]:
        service = in_memory_conversations(EchoModel(), get_settings())
        session_id = service.create_session(principal).session_id
        return (lambda event: lambda_handler(event, context, conversations=service)), session_id

    return fresh


def per_call_us(call: Callable[[], object], seconds: float = ROUND_SECONDS) -> tuple[float, int]:
    """Per invocation, with a new trace header each time as the Lambda runtime sets it."""
    count, started = 0, time.perf_counter()
    while count < 20 or time.perf_counter() - started < seconds:
        os.environ["_X_AMZN_TRACE_ID"] = harness.new_trace_header()
        call()
        count += 1
    return (time.perf_counter() - started) / count * 1e6, count


@dataclass
class HandlerWork:
    bare_us: float
    figures: dict[str, tuple[float, float]]  # name: (median us, median ratio to the bare resolver)


def measure_handler_work(rounds: int) -> dict[str, list[float]]:
    """Per-round microseconds of each figure, in this process (tracing as its environment says)."""
    bare, untraced = bare_resolver(traced=True), bare_resolver()
    validated, glue, fresh = bare_resolver(validated=True, traced=True), glue_only(), chat_handler()
    calls = {"bare": bare, "untraced bare": untraced, "validated": validated, "glue": glue}
    samples: dict[str, list[float]] = {name: [] for name in (*calls, "handler")}
    with quiet():
        handler, session_id = fresh()
        warm = post_event(session_id)
        for call in (*calls.values(), handler):
            expect_201(call(warm))
        for _ in range(rounds):
            handler, session_id = fresh()
            event = post_event(session_id)
            for name, call in (*calls.items(), ("handler", handler)):
                samples[name].append(per_call_us(lambda: call(event))[0])  # noqa: B023 - called right here
            expect_201(handler(event))
    return samples


def figures_of(samples: dict[str, list[float]], bare: str = "bare") -> HandlerWork:
    figures = {
        name: (
            statistics.median(samples[name]),
            statistics.median(x / b for x, b in zip(samples[name], samples[bare], strict=True)),
        )
        for name in ("validated", "glue", "handler")
    }
    return HandlerWork(statistics.median(samples[bare]), figures)


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

    from chat import dependencies
    from chat.handler import lambda_handler
    from chatbot_local.aws import MotoService, provision
    from chatbot_local.template import Template
    from chatbot_security.conversation.model_providers import BedrockConverseModel
    from tools.aws_calls import counting_aws_calls

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
        from chatbot_security.platform.aws_clients import client
        from chatbot_security.platform.secrets import shared_secret_cache
        from chatbot_security.platform.settings import Settings, get_settings

        for cached in (get_settings, client, default_conversations, shared_secret_cache):
            cached.cache_clear()  # a new container, configured for moto
        results: dict[int, dict[str, int]] = {}
        with counting_aws_calls() as calls, quiet():
            runtime = boto3.client("bedrock-runtime")

            def bedrock_model(settings: Settings) -> BedrockConverseModel:
                return BedrockConverseModel(settings, runtime=lambda _timeout: runtime)

            dependencies.BedrockConverseModel = bedrock_model  # type: ignore[misc, assignment]  # a factory for the class
            context = lambda_context()
            with Stubber(runtime) as stub:
                for history in histories:
                    created = lambda_handler(
                        post_event(str(uuid.uuid4()))
                        | {
                            "routeKey": "POST /v1/sessions",
                            "rawPath": "/v1/sessions",
                            "pathParameters": None,
                            "body": None,
                        },
                        context,
                    )
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


def handler_work_in_processes(rounds: int) -> tuple[dict[str, dict[str, list[float]]], int]:
    """Budget 4's figures, tracing on and off, each in a process of its own; and the segments sent."""
    sink = harness.SegmentSink()
    runs = {}
    with tempfile.TemporaryDirectory(prefix="bench-chat-") as scratch:
        for setting in ("on", "off"):
            emit = Path(scratch) / f"{setting}.json"
            tracing = harness.tracing_environment(
                str(ROOT / "functions" / "chat"), sink.address, active=setting == "on"
            )
            environment = {k: v for k, v in os.environ.items() if k != "POWERTOOLS_TRACE_DISABLED"} | tracing
            subprocess.run(  # noqa: S603 - this script, in a process of its own
                [sys.executable, __file__, "--rounds", str(rounds), "--emit", str(emit)], env=environment, check=True
            )
            runs[setting] = json.loads(emit.read_text())
    sink.close()
    return runs, sink.datagrams


def report_handler_work(runs: dict[str, dict[str, list[float]]], segments: int, rounds: int) -> bool:
    if not segments:
        raise SystemExit("no X-Ray segment was sent: tracing was not on, the figures would flatter")
    on, off = figures_of(runs["on"]), figures_of(runs["off"])
    old = figures_of(runs["off"], bare="untraced bare")
    print(
        f"Chat turn, warm (budget 4): median of {rounds} interleaved rounds per process; "
        f"X-Ray segments sent with tracing on: {segments}"
    )
    print(f"  {'':46s}{'tracing on':>20s}{'tracing off':>20s}")
    print(f"  {'bare Powertools resolver, traced handler':46s}{on.bare_us:11.1f} us{'':7s}{off.bare_us:11.1f} us")
    untraced = statistics.median(runs["off"]["untraced bare"])
    print(f"  {'bare resolver, untraced (old reference)':46s}{'':20s}{untraced:11.1f} us")
    for name, label in (
        ("validated", "  with the chat route's request validation"),
        ("glue", "  chat handler with a fixed-answer logic"),
    ):
        cells = "".join(f"{f.figures[name][0]:9.1f} us {f.figures[name][1]:5.2f}x" for f in (on, off))
        print(f"  {label:46s}{cells}   (for information)")
    ratio = on.figures["handler"][1]
    passed = ratio <= RATIO_BUDGET
    cells = "".join(f"{f.figures['handler'][0]:9.1f} us {f.figures['handler'][1]:5.2f}x" for f in (on, off))
    print(f"  {'chat handler, fakes + echo':46s}{cells}   <= {RATIO_BUDGET:g}x {'PASS' if passed else 'MISS'}")
    old_ratio = old.figures["handler"][1]
    print(
        f"  {'  old method: tracing off, untraced resolver':46s}{'':20s}{old.figures['handler'][0]:9.1f} us "
        f"{old_ratio:5.2f}x   (old budget <= {OLD_RATIO_BUDGET:g}x)"
    )
    record(
        "4",
        "chat handler per turn vs bare resolver, tracing on",
        f"{ratio:.2f}x (off {off.figures['handler'][1]:.2f}x)",
        f"<= {RATIO_BUDGET:g}x",
        passed,
        old=f"tracing off, untraced bare {old_ratio:.2f}x (<= {OLD_RATIO_BUDGET:g}x)",
    )
    return passed


def report_aws_calls(histories: tuple[int, ...]) -> bool:
    print("AWS calls per warm chat turn (budget 3, a gate), moto + Bedrock stub:")
    met = True
    for history, counts in measure_aws_calls(histories).items():
        ok = all(counts.get(s, 0) <= limit for s, limit in CALL_BUDGET.items())
        ok &= counts.get("bedrock-runtime", 0) == 1
        met &= ok
        shown = ", ".join(f"{service} {counts.get(service, 0)}" for service in CALL_BUDGET)
        measured = "/".join(str(counts.get(service, 0)) for service in CALL_BUDGET)
        record("3", f"history {history}: KMS/SecretsMgr/DynamoDB/model", measured, "0/0/<=3/1", ok, gate=True)
        print(
            f"  history {history:3d}: {shown}  budget KMS 0, SM 0, DynamoDB <= 3, model 1  {'PASS' if ok else 'MISS'}"
        )
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a budget is missed")
    parser.add_argument("--skip-aws", action="store_true", help="skip budget 3 (starts moto)")
    parser.add_argument("--quick", action="store_true", help="CI: the AWS call counts only (no timing)")
    parser.add_argument("--emit", help=argparse.SUPPRESS)  # one process's half of budget 4
    options = parser.parse_args(argv)
    if options.emit:
        Path(options.emit).write_text(json.dumps(measure_handler_work(options.rounds)))
        return 0
    if options.quick:
        return 0 if report_aws_calls((0, 20, 200)) else 1
    met = report_handler_work(*handler_work_in_processes(options.rounds), options.rounds)
    if not options.skip_aws:
        met &= report_aws_calls((0, 20, 200))
    return 1 if options.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
