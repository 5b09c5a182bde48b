"""The turn engine the stream function and the worker share with the HTTP path, and the worker around it,
built once per container on first use."""

from __future__ import annotations

import functools
from typing import Any

from chatbot_security.conversation.model_providers import LazyModel
from chatbot_security.conversation.model_providers.configured import build_model_provider
from chatbot_security.conversation.moderation import build_moderator
from chatbot_security.conversation.quotas import Quotas
from chatbot_security.conversation.turns import TurnEngine
from chatbot_security.identity.identity_keys import IdentityKeys
from chatbot_security.platform.aws_clients import client
from chatbot_security.platform.secrets import shared_secret_cache
from chatbot_security.platform.settings import get_settings
from chatbot_security.privacy.crypto import DataKeys
from chatbot_security.storage.ratelimit import RateLimiter
from chatbot_security.storage.store import DynamoSessionStore
from chatbot_security.storage.usage_table import DynamoUsage


def _dynamodb() -> Any:
    return client("dynamodb")


def _kms() -> Any:
    return client("kms")


@functools.cache
def default_engine() -> TurnEngine:
    settings = get_settings()
    table = settings.require("table_name")
    identity = IdentityKeys(shared_secret_cache().require(settings.require("user_id_pepper_secret_arn")))
    return TurnEngine(
        settings=settings,
        store=DynamoSessionStore(_dynamodb, table, idle_seconds=settings.session_idle_seconds),
        data_keys=DataKeys(_kms, settings.require("kms_key_id")),
        identity=identity,
        model=LazyModel(functools.partial(build_model_provider, settings)),
        rate_limiter=RateLimiter(_dynamodb, table),
        moderator=build_moderator(settings),
        quotas=Quotas(settings=settings, counters=DynamoUsage(_dynamodb, table)),
    )
