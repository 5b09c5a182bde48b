"""Builds the chat function's collaborators once per container, on the first request (never at import)."""

from __future__ import annotations

import functools

from chatbot_security.conversation.conversations import Conversations
from chatbot_security.conversation.model_providers import LazyModel
from chatbot_security.conversation.model_providers.configured import build_model_provider
from chatbot_security.conversation.moderation import build_moderator
from chatbot_security.conversation.quotas import Quotas
from chatbot_security.identity import session_tokens
from chatbot_security.identity.identity_keys import IdentityKeys
from chatbot_security.platform.aws_clients import client
from chatbot_security.platform.secrets import shared_secret_cache
from chatbot_security.platform.settings import get_settings
from chatbot_security.privacy.crypto import DataKeys
from chatbot_security.storage.ratelimit import RateLimiter
from chatbot_security.storage.store import DynamoSessionStore
from chatbot_security.storage.tickets import DynamoTicketStore
from chatbot_security.storage.usage_table import DynamoUsage


def _dynamodb() -> object:
    return client("dynamodb")


def _kms() -> object:
    return client("kms")


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
        moderator=build_moderator(settings),
        quotas=default_quotas(),
    )


@functools.cache
def default_quotas() -> Quotas:
    settings = get_settings()
    return Quotas(settings=settings, counters=DynamoUsage(_dynamodb, settings.require("table_name")))


@functools.cache
def default_ticket_store() -> DynamoTicketStore:
    return DynamoTicketStore(_dynamodb, get_settings().require("table_name"))
