"""The authorizer's per-request observability, now without Powertools' decorators, records what they did:
the logger's Lambda keys and correlation id, one "## lambda_handler" trace subsegment with its ColdStart
and Service annotations (never the response), and the denial metrics, flushed once per invocation."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from authorizer.handler import lambda_handler
from tools.lambda_events import authorizer_event

ROOT = Path(__file__).resolve().parents[2]
TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"

# Three invocations in a fresh interpreter with Lambda's active-tracing environment: a denial, an allow
# (an authenticator that knows the token) and another denial. Prints what went to stdout per invocation.
SCRIPT = """
import contextlib, io, json, sys
from authorizer.handler import lambda_handler
from chatbot_security.identity.principal import Principal
from tools.lambda_context import FakeLambdaContext
from tools.lambda_events import authorizer_event

class Known:
    def authenticate(self, token):
        return Principal(kind="user", subject="alice", issuer="https://issuer.example.test")

context = FakeLambdaContext("AuthorizerFunction", 256, "observability")
outputs = []
for authenticator in (None, Known(), None):
    event = authorizer_event("GET /v1/sessions", "Bearer not-a-token")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        decision = lambda_handler(event, context, authenticator=authenticator)
    outputs.append({"allowed": decision["isAuthorized"], "stdout": printed.getvalue()})
print(json.dumps(outputs))
"""


@pytest.fixture
def traced_run() -> dict[str, Any]:
    """The script's outputs and the X-Ray documents its process sent to a UDP daemon address."""
    daemon = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    daemon.bind(("127.0.0.1", 0))
    daemon.settimeout(5)
    address = f"127.0.0.1:{daemon.getsockname()[1]}"
    environment = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": f"{ROOT / 'functions' / 'authorizer'}:{ROOT / 'layers' / 'security'}:{ROOT}",
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / "authorizer"),
        "AWS_XRAY_DAEMON_ADDRESS": address,
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "_X_AMZN_TRACE_ID": TRACE_HEADER,
        "AWS_DEFAULT_REGION": "eu-west-1",
        "POWERTOOLS_SERVICE_NAME": "authorizer-tests",
        "OIDC_ISSUER": "https://issuer.example.test",
        "OIDC_AUDIENCE": "tests",
    }
    finished = subprocess.run(
        [sys.executable, "-B", "-c", SCRIPT], env=environment, capture_output=True, text=True, timeout=120, check=True
    )
    documents: list[dict[str, Any]] = []
    try:
        while len(documents) < 3:
            _header, _, body = daemon.recv(65536).decode().partition("\n")
            documents.append(json.loads(body))
    except TimeoutError:
        pass
    finally:
        daemon.close()
    return {"outputs": json.loads(finished.stdout.splitlines()[-1]), "documents": documents}


def test_each_invocation_sends_one_handler_subsegment_with_its_annotations_and_no_response(
    traced_run: dict[str, Any],
) -> None:
    documents = traced_run["documents"]
    assert [document["name"] for document in documents] == ["## lambda_handler"] * 3
    assert [document["annotations"]["ColdStart"] for document in documents] == [True, False, False]
    assert {document["annotations"]["Service"] for document in documents} == {"authorizer-tests"}
    assert all(document["trace_id"] == "1-5759e988-bd862e3fe1be46a994272793" for document in documents)
    assert not any("metadata" in document for document in documents)  # never the response or an error


def test_a_denial_flushes_its_metrics_once_and_an_allow_prints_no_metric(traced_run: dict[str, Any]) -> None:
    denied, allowed, denied_again = traced_run["outputs"]
    assert (denied["allowed"], allowed["allowed"], denied_again["allowed"]) == (False, True, False)
    for output in (denied, denied_again):
        names = [
            metric["Name"]
            for line in output["stdout"].splitlines()
            for metric in json.loads(line)["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        ]
        assert sorted(names) == ["AuthorizerDenied", "AuthorizerDeniedByReason"]
    assert allowed["stdout"] == ""


def test_log_lines_carry_the_lambda_context_and_the_request_id_as_correlation_id(
    lambda_context: Any, log_output: Any
) -> None:
    event = authorizer_event("GET /v1/sessions", "Bearer not-a-token")
    lambda_handler(event, lambda_context)
    record = json.loads(log_output.getvalue().splitlines()[-1])
    assert record["message"] == "denied"
    assert record["correlation_id"] == event["requestContext"]["requestId"]
    assert record["function_request_id"] == lambda_context.aws_request_id
    assert record["function_name"] == lambda_context.function_name
    assert record["function_arn"] == lambda_context.invoked_function_arn
    assert "cold_start" in record


def test_an_event_without_a_request_context_logs_no_correlation_id(lambda_context: Any, log_output: Any) -> None:
    assert lambda_handler({"headers": "not a mapping"}, lambda_context) == {"isAuthorized": False}
    record = json.loads(log_output.getvalue().splitlines()[-1])
    assert record["message"] == "denied"
    assert "correlation_id" not in record or record["correlation_id"] is None
