"""Builds the chat function's collaborators once per container, on the first request (never at import)."""

from __future__ import annotations

import functools
from typing import Any

from chatbot_security.conversation.conversations import Conversations
from chatbot_security.conversation.model_providers import (
    BedrockConverseModel,
    EchoModel,
    LazyModel,
    ModelProvider,
    OpenAiCompatibleModel,
)
from chatbot_security.identity import session_tokens
from chatbot_security.identity.identity_keys import IdentityKeys
from chatbot_security.platform.aws_clients import client
from chatbot_security.platform.secrets import shared_secret_cache
from chatbot_security.platform.settings import Settings, get_settings
from chatbot_security.privacy.crypto import DataKeys
from chatbot_security.storage.ratelimit import RateLimiter
from chatbot_security.storage.store import DynamoSessionStore
from chatbot_security.storage.tickets import DynamoTicketStore


def _dynamodb() -> object:
    return client("dynamodb")


def _kms() -> object:
    return client("kms")


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


# The API key is read through Powertools parameters and cached for this long: a warm turn makes no
# Secrets Manager call, and a replaced key is picked up within the hour without a redeploy.
MODEL_API_KEY_MAX_AGE_SECONDS = 900


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


@functools.cache
def default_conversations() -> Conversations:
    settings = get_settings()
    table = settings.require("table_name")
    secrets = shared_secret_cache()
    identity = IdentityKeys(secrets.require(settings.require("user_id_pepper_secret_arn")))
    token_secret_arn = settings.session_token_secret_arn

    def session_token_key() -> bytes:
        if not token_secret_arn:
            raise RuntimeError("SESSION_TOKEN_SECRET_ARN is not configured")
        return session_tokens.derive_key(secrets.require(token_secret_arn))

    return Conversations(
        settings=settings,
        store=DynamoSessionStore(_dynamodb, table, idle_seconds=settings.session_idle_seconds),
        data_keys=DataKeys(_kms, settings.require("kms_key_id")),
        identity=identity,
        model=LazyModel(functools.partial(build_model_provider, settings)),
        rate_limiter=RateLimiter(_dynamodb, table),
        session_token_key=session_token_key,
    )


@functools.cache
def default_ticket_store() -> DynamoTicketStore:
    return DynamoTicketStore(_dynamodb, get_settings().require("table_name"))
