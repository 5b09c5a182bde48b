"""Builds the chat function's collaborators once per container, on the first request (never at import)."""

from __future__ import annotations

import functools

from chat.conversations import Conversations
from chat.model_providers import BedrockConverseModel, EchoModel, ModelProvider
from chatbot_security import session_tokens
from chatbot_security.aws_clients import client
from chatbot_security.crypto import DataKeys
from chatbot_security.identity_keys import IdentityKeys
from chatbot_security.ratelimit import RateLimiter
from chatbot_security.secrets import shared_secret_cache
from chatbot_security.settings import Settings, get_settings
from chatbot_security.store import DynamoSessionStore


def _dynamodb() -> object:
    return client("dynamodb")


def _kms() -> object:
    return client("kms")


def build_model_provider(settings: Settings) -> ModelProvider:
    if settings.model_provider == "echo":
        return EchoModel()
    if settings.model_provider == "bedrock":
        return BedrockConverseModel(settings)
    # The OpenAI-compatible provider is not part of this build yet: refuse rather than pretend.
    raise RuntimeError(f"MODEL_PROVIDER {settings.model_provider!r} is not available in this build")


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
        model=build_model_provider(settings),
        rate_limiter=RateLimiter(_dynamodb, table),
        session_token_key=session_token_key,
    )
