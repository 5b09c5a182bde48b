"""What a cold start imports before the first request: no AWS SDK session, client or configuration.

The SDK (boto3, botocore's session, client and config modules: a third of a cold start) loads with the
first client (chatbot_security.platform.aws_clients), so a request that calls no AWS service never pays
for it. Each handler is imported in a fresh interpreter with the environment Lambda gives a function
with active tracing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SDK_MODULES = ("boto3", "botocore.session", "botocore.client", "botocore.config")
TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


def modules_after_import(function: str, module: str) -> set[str]:
    task_root = ROOT / "functions" / function
    environment = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": f"{task_root}:{ROOT / 'layers' / 'security'}",
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "_X_AMZN_TRACE_ID": TRACE_HEADER,
    }
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    finished = subprocess.run(
        [sys.executable, "-B", "-c", code], env=environment, capture_output=True, text=True, timeout=60, check=True
    )
    return set(finished.stdout.split())


@pytest.mark.parametrize(
    ("function", "module"),
    [
        ("chat", "chat.handler"),
        ("session_cleanup", "session_cleanup.handler"),
        ("authorizer", "authorizer.handler"),
        ("stream_authorizer", "stream_authorizer.handler"),
    ],
)
def test_importing_a_handler_loads_no_sdk_session_client_or_configuration(function: str, module: str) -> None:
    loaded = modules_after_import(function, module)

    assert module in loaded
    assert not loaded & set(SDK_MODULES), sorted(loaded & set(SDK_MODULES))
