"""Fixtures shared by every test: an isolated environment, no network beyond loopback, fresh caches."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.caches import reset_caches
from support.issuer_server import IssuerServer

from tools.config_names import CONFIGURATION_NAMES
from tools.lambda_context import FakeLambdaContext

ROOT = Path(__file__).resolve().parents[1]
REGION = "eu-west-1"

_CONFIG_NAMES = [
    *CONFIGURATION_NAMES,
    "OIDC_ALGORITHMS",
    "OIDC_REQUIRED_SCOPES",
    "MODEL_SYSTEM_PROMPT",
    "MODERATION_REFUSAL_TEXT",
    "LOCAL_FAKE_GUARDRAIL",
    "MODEL_INPUT_PRICE_PER_MTOK",
    "MODEL_OUTPUT_PRICE_PER_MTOK",
    "OPENAI_BASE_URL",
    "MODEL_API_KEY",
    "TABLE_NAME",
    "STREAM_URL",
    "KMS_KEY_ID",
    "SESSION_TOKEN_SECRET_ARN",
    "USER_ID_PEPPER_SECRET_ARN",
    "MODEL_API_KEY_SECRET_ARN",
    "ALLOW_LOOPBACK_ISSUER",
    "EDGE_PROTECTION",
    "EDGE_ORIGIN_SECRET_ARN",
    "EDGE_ORIGIN_SECRET_MAX_AGE_SECONDS",
    "STREAM_WORKER_FUNCTION",
    "CLEANUP_FUNCTION",
    "STREAM_CALLBACK_URL",
    "AWS_ENDPOINT_URL_LAMBDA",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
]


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in _CONFIG_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "chatbot-tests")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Chatbot")
    reset_caches()
    yield
    reset_caches()


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests may talk to servers they start on loopback, and to nothing else."""
    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
            raise OSError(f"network access blocked in tests: {host}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture(scope="session")
def issuer_server() -> Iterator[IssuerServer]:
    server = IssuerServer().start()
    yield server
    server.stop()


@pytest.fixture
def oidc_env(issuer_server: IssuerServer, monkeypatch: pytest.MonkeyPatch) -> IssuerServer:
    """Configure the functions for the loopback test issuer."""
    issuer_server.down = False
    monkeypatch.setenv("OIDC_ISSUER", issuer_server.url)
    monkeypatch.setenv("OIDC_AUDIENCE", issuer_server.issuer.audience)
    monkeypatch.setenv("ALLOW_LOOPBACK_ISSUER", "true")
    return issuer_server


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from chatbot_local.aws import MotoService

    service = MotoService()
    endpoint = service.start()
    yield endpoint
    service.stop()


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A clean moto with the template's table, key and secrets; the functions' env points at them."""
    from chatbot_local.aws import provision
    from chatbot_local.template import Template

    reset = urllib.request.Request(moto_endpoint + "/moto-api/reset", method="POST")
    urllib.request.urlopen(reset, timeout=5).close()
    template = Template.load(ROOT / "template.yaml")
    resources = provision(template, {}, moto_endpoint, REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("TABLE_NAME", resources.table_name)
    monkeypatch.setenv("KMS_KEY_ID", resources.key_arn)
    monkeypatch.setenv("SESSION_TOKEN_SECRET_ARN", resources.secret_arns["SessionTokenSecret"])
    monkeypatch.setenv("USER_ID_PEPPER_SECRET_ARN", resources.secret_arns["UserIdPepperSecret"])
    monkeypatch.setenv("MODEL_PROVIDER", "echo")
    return resources


@pytest.fixture
def log_output() -> Iterator[Any]:
    """Everything the shared Powertools logger writes during the test, as formatted JSON lines."""
    import io

    from chatbot_security.platform.observability import logger

    buffer = io.StringIO()
    handler = logger.registered_handler
    previous = handler.setStream(buffer)  # type: ignore[attr-defined]
    yield buffer
    handler.setStream(previous)  # type: ignore[attr-defined]
