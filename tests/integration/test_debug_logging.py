"""Rule 9 (logs) under every debug switch: no setting may turn redaction off.

Powertools reads its debug switches when it is imported (``POWERTOOLS_DEBUG`` gives its own package
logger a plain stdout handler at DEBUG, ``POWERTOOLS_DEV`` makes the event handler print events), and
the Lambda runtime's root handler follows ``AWS_LAMBDA_LOG_LEVEL``. So the attack runs the real
authorizer and chat handler in a fresh interpreter started with every such switch on, and reads
everything that process writes to stdout and stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support.issuer_server import IssuerServer

ROOT = Path(__file__).resolve().parents[2]
PYTHONPATH = ["layers/security", "functions/authorizer", "functions/chat", "local", "tests"]
CONTENT = "zebra-quartz secret plan, card 4111 1111 1111 1111, mail jane.doe@example.com"
SUBJECT = "subject-9c41-raw-identifier"
SOURCE_IP = "203.0.113.91"
DEBUG_SWITCHES = {
    "POWERTOOLS_DEBUG": "true",
    "POWERTOOLS_DEV": "true",
    "POWERTOOLS_LOG_LEVEL": "DEBUG",
    "LOG_LEVEL": "DEBUG",
    "AWS_LAMBDA_LOG_LEVEL": "DEBUG",
    "POWERTOOLS_LOGGER_LOG_EVENT": "true",
}

# The child: a root handler at DEBUG as the Lambda runtime installs it, then the functions imported
# (Powertools reads its switches now), then a session, a message, its history and a schema error.
CHILD = """
import json, logging, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
from support.api import InProcessApi

class Context:
    function_name = "chat"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:chat"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e812345678"
    def get_remaining_time_in_millis(self):
        return 10_000

token, content, source_ip = sys.argv[1:4]
api = InProcessApi(Context())
session_id = api.call("POST /v1/sessions", token, source_ip=source_ip).body["session_id"]
messages = "POST /v1/sessions/{session_id}/messages"
history = "GET /v1/sessions/{session_id}/messages"
statuses = [
    api.call(messages, token, {"content": content}, source_ip=source_ip, session_id=session_id).status,
    api.call(history, token, source_ip=source_ip, session_id=session_id).status,
    api.call(messages, token, {"content": content, content: 1}, source_ip=source_ip, session_id=session_id).status,
]
sys.__stdout__.write("STATUSES " + json.dumps(statuses) + "\\n")
"""


def run_with_debug_on(token: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **DEBUG_SWITCHES, "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in PYTHONPATH)}
    return subprocess.run(
        [sys.executable, "-c", CHILD, token, CONTENT, SOURCE_IP],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.usefixtures("aws")
def test_debug_switches_never_print_content_tokens_or_identifiers(oidc_env: IssuerServer) -> None:
    # Given every debug switch of Powertools and of the Lambda runtime on
    token = oidc_env.issuer.token(sub=SUBJECT)

    # When a signed-in user posts a message, reads the history and sends an unknown field
    child = run_with_debug_on(token)

    # Then the requests were served, debug output was written, and none of it holds the content,
    # the token, the subject or the client's address
    assert child.returncode == 0, child.stderr[-2000:]
    statuses: Any = json.loads(child.stdout.split("STATUSES ", 1)[1].splitlines()[0])
    assert statuses == [201, 200, 422]
    output = child.stdout + child.stderr
    assert output.count("\n") > 5, "the debug switches should have produced output"
    forbidden = ["zebra-quartz", "secret plan", "4111", "jane.doe", token, SUBJECT, SOURCE_IP]
    leaked = [value[:40] for value in forbidden if value in output]
    assert leaked == []
