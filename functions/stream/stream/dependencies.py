"""Builds the stream function's and the worker's collaborators once per container, on first use."""

from __future__ import annotations

import functools
from typing import Any

from chatbot_security.platform.aws_clients import build_client, client
from chatbot_security.platform.settings import get_settings
from chatbot_security.storage.connections import DynamoConnectionStore
from stream.callbacks import ManagementApi
from stream.handoff import LambdaHandOff


def _dynamodb() -> Any:
    return client("dynamodb")


def _lambda() -> Any:
    return client("lambda")


@functools.cache
def management_client() -> Any:
    from botocore.config import Config

    # A frame that cannot be sent quickly is not worth waiting for: the next one or the done frame follows.
    config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"})
    return build_client("apigatewaymanagementapi", config, endpoint_url=get_settings().require("stream_callback_url"))


@functools.cache
def default_connections() -> DynamoConnectionStore:
    return DynamoConnectionStore(_dynamodb, get_settings().require("table_name"))


@functools.cache
def default_callbacks() -> ManagementApi:
    return ManagementApi(management_client)


@functools.cache
def default_handoff() -> LambdaHandOff:
    return LambdaHandOff(_lambda, get_settings().require("stream_worker_function"))
