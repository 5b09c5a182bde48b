"""The turn engine the stream function and the worker share with the HTTP path, built once per container."""

from __future__ import annotations

import functools
from typing import Any

from chatbot_security.platform.aws_clients import client
from chatbot_security.platform.secrets import shared_secret_cache
from chatbot_security.platform.settings import get_settings


def _dynamodb() -> Any:
    return client("dynamodb")


def _kms() -> Any:
    return client("kms")


@functools.cache
def default_engine() -> Any:
    from chatbot_security.conversation.turns import TurnEngine  # type: ignore[import-not-found]
    from chatbot_security.identity.identity_keys import IdentityKeys
    from chatbot_security.privacy.crypto import DataKeys
    from chatbot_security.storage.ratelimit import RateLimiter
    from chatbot_security.storage.store import DynamoSessionStore

    settings = get_settings()
    table = settings.require("table_name")
    identity = IdentityKeys(shared_secret_cache().require(settings.require("user_id_pepper_secret_arn")))
    return TurnEngine(
        settings=settings,
        store=DynamoSessionStore(_dynamodb, table, idle_seconds=settings.session_idle_seconds),
        data_keys=DataKeys(_kms, settings.require("kms_key_id")),
        identity=identity,
        rate_limiter=RateLimiter(_dynamodb, table),
    )


@functools.cache
def default_worker() -> Any:
    from chatbot_security.conversation.frames import FrameBatcher  # type: ignore[import-not-found]
    from chatbot_security.conversation.turns import ClaimedTurn
    from chatbot_security.privacy.stream_masking import StreamMasker  # type: ignore[import-not-found]
    from stream.dependencies import default_callbacks, default_connections
    from stream.worker import StreamWorker

    engine = default_engine()
    return StreamWorker(
        engine=engine,
        model=engine.model,
        connections=default_connections(),
        callbacks=default_callbacks(),
        claimed_turn=ClaimedTurn.from_event,
        masker=StreamMasker,
        sink=FrameBatcher,
    )
