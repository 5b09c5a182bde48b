"""The model providers pointed at the loopback servers of tests/support (the servers run standalone too,
so what needs the layer lives here)."""

from __future__ import annotations

import boto3
import pytest

from chatbot_security.conversation.model_providers import OpenAiCompatibleModel
from chatbot_security.platform.settings import Settings
from support.caches import reset_caches
from support.openai_server import OpenAiServer


def openai_model(server: OpenAiServer, **env: str) -> OpenAiCompatibleModel:
    """The OpenAI-compatible provider for `server` (3 s timeout, no retry sleep), with `env` on top."""
    settings = Settings.model_validate(
        {"MODEL_PROVIDER": "openai", "MODEL_ID": "test-model", "OPENAI_BASE_URL": server.base_url,
         "ALLOW_LOOPBACK_ISSUER": "true", "MODEL_TIMEOUT_SECONDS": "3", **env}
    )  # fmt: skip
    return OpenAiCompatibleModel(settings, settings.require("openai_base_url"), api_key=lambda: "sk-test-key",
                                 sleep=lambda seconds: None)  # fmt: skip


def use_openai(server: OpenAiServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Configure the functions for the OpenAI-compatible provider at `server`, its key in Secrets Manager."""
    secret_arn = boto3.client("secretsmanager").create_secret(Name="model-key", SecretString="sk-local")["ARN"]
    monkeypatch.setenv("MODEL_PROVIDER", "openai")
    monkeypatch.setenv("MODEL_ID", "test-model")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("MODEL_API_KEY_SECRET_ARN", secret_arn)
    reset_caches()
