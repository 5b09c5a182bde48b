"""The model provider the settings configure, for every function that calls the model (the chat function,
and the stream worker)."""

from __future__ import annotations

import functools
from typing import Any

from chatbot_security.conversation.model_providers.base import ModelProvider
from chatbot_security.conversation.model_providers.bedrock import BedrockConverseModel
from chatbot_security.conversation.model_providers.echo import EchoModel
from chatbot_security.conversation.model_providers.openai import OpenAiCompatibleModel
from chatbot_security.platform.settings import Settings

# The API key is read through Powertools parameters and cached for this long: a warm turn makes no
# Secrets Manager call, and a replaced key is picked up within the hour without a redeploy.
MODEL_API_KEY_MAX_AGE_SECONDS = 900


def build_model_provider(settings: Settings) -> ModelProvider:
    if settings.model_provider == "echo":
        return EchoModel(word_delay_seconds=settings.echo_word_delay_ms / 1000)
    if settings.model_provider == "bedrock":
        return BedrockConverseModel(settings)
    return OpenAiCompatibleModel(
        settings,
        base_url=settings.require("openai_base_url"),
        api_key=functools.partial(model_api_key, settings.require("model_api_key_secret_arn")),
    )


@functools.cache
def _secrets_provider() -> Any:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider  # only the openai provider needs it
    from botocore.config import Config

    return SecretsProvider(boto_config=Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 3}))


def model_api_key(secret_arn: str) -> str:
    value = _secrets_provider().get(secret_arn, max_age=MODEL_API_KEY_MAX_AGE_SECONDS)
    if not isinstance(value, str) or not value.strip():
        raise RuntimeError("the model API key secret is empty")
    return value.strip()
