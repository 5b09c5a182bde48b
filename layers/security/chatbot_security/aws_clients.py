"""Lazily built, cached AWS SDK clients. Nothing here runs at import time.

The SDK itself is imported on the first client, not at import: a function that never calls AWS (the
authorizer verifying OIDC access tokens) never loads botocore, about a third of a cold start
(docs/performance.md). X-Ray's patch of the SDK is applied at the same moment; it wraps
``BaseClient._make_api_call`` for every client, so clients built elsewhere (the Bedrock runtime, the
Powertools secrets provider) are traced too, as long as their first call comes after a ``client()``
call, which every path of the chat function makes first (the pepper secret, the table).
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def client(service: str) -> Any:
    """One client per service and container, created on first use."""
    import boto3
    from botocore.config import Config

    trace_aws_sdk()
    config = Config(
        connect_timeout=2, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"}, tcp_keepalive=True
    )
    return boto3.session.Session().client(service, config=config)


@functools.cache
def trace_aws_sdk() -> None:
    """Subsegments for every AWS SDK call (a no-op where tracing is off: tests, local runs)."""
    from chatbot_security.observability import tracer

    tracer.patch(["botocore"])
