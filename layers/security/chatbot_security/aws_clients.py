"""Lazily built, cached AWS SDK clients. Nothing here runs at import time."""

from __future__ import annotations

import functools
from typing import Any

import boto3
from botocore.config import Config

_SDK_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"max_attempts": 3, "mode": "standard"},
    tcp_keepalive=True,
)


@functools.cache
def client(service: str) -> Any:
    """One client per service and container, created on first use."""
    return boto3.session.Session().client(service, config=_SDK_CONFIG)
