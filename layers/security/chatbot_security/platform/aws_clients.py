"""Lazily built, cached AWS SDK clients. Nothing here runs at import time.

The SDK itself is imported on the first client, not at import: a function that never calls AWS (the
authorizer verifying OIDC access tokens) never loads botocore, about a third of a cold start
(docs/performance.md). X-Ray's patch of the SDK is applied at the same moment; it wraps
``BaseClient._make_api_call`` for every client, so any client built later is traced.

Every client comes from the container's one SDK session: the session loads the endpoint and partition
data once, so each client after the first costs a third as much to build (docs/performance.md).
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_BUILDING = threading.Lock()  # a botocore session is not thread-safe; the local API serves threads


@functools.cache
def client(service: str) -> Any:
    """One client per service and container, created on first use."""
    from botocore.config import Config

    config = Config(
        connect_timeout=2, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"}, tcp_keepalive=True
    )
    return build_client(service, config)


@functools.cache
def single_attempt_client(service: str, timeout_seconds: float) -> Any:
    """A client that makes one attempt per call within ``timeout_seconds`` (the caller bounds its own
    retries by its deadline: the model call and the guardrail), one per service and timeout."""
    from botocore.config import Config

    config = Config(
        connect_timeout=min(2.0, timeout_seconds),
        read_timeout=timeout_seconds,
        retries={"total_max_attempts": 1, "mode": "standard"},
        tcp_keepalive=True,
    )
    return build_client(service, config)


def build_client(service: str, config: Any, endpoint_url: str | None = None) -> Any:
    """A new client with its own configuration (timeouts, retries), from the container's SDK session;
    ``endpoint_url`` for a service whose endpoint is per resource (the WebSocket management API)."""
    with _BUILDING:
        return sdk_session().create_client(service, config=config, endpoint_url=endpoint_url)


@functools.cache
def sdk_session() -> Any:
    """The container's one botocore session. botocore's own, without boto3's session layer on top: the
    functions use low-level clients only, and importing boto3 (its resource machinery included) cost
    about a fifth of a container's first client (docs/performance.md)."""
    import botocore.session

    trace_aws_sdk()
    return botocore.session.get_session()


@functools.cache
def trace_aws_sdk() -> None:
    """Subsegments for every AWS SDK call (a no-op where tracing is off: tests, local runs)."""
    from chatbot_security.platform.observability import tracer

    tracer.patch(["botocore"])
