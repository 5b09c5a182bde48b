"""The model providers pointed at the loopback servers of tests/support (the servers run standalone too,
so what needs the layer lives here)."""

from __future__ import annotations

from chatbot_security.conversation.model_providers import OpenAiCompatibleModel
from chatbot_security.platform.settings import Settings
from support.openai_server import OpenAiServer


def openai_model(server: OpenAiServer, **env: str) -> OpenAiCompatibleModel:
    """The OpenAI-compatible provider for `server` (3 s timeout, no retry sleep), with `env` on top."""
    settings = Settings.model_validate(
        {"MODEL_PROVIDER": "openai", "MODEL_ID": "test-model", "OPENAI_BASE_URL": server.base_url,
         "ALLOW_LOOPBACK_ISSUER": "true", "MODEL_TIMEOUT_SECONDS": "3", **env}
    )  # fmt: skip
    return OpenAiCompatibleModel(settings, settings.require("openai_base_url"), api_key=lambda: "sk-test-key",
                                 sleep=lambda seconds: None)  # fmt: skip
