"""Data access for the fan-out: one asynchronous invocation of this same function per expiry shard.

Lambda queues each (InvocationType Event) and runs them side by side, each in its own execution
environment; a failed shard run is retried and then sent to the function's dead-letter queue like
any asynchronous invocation of the function.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from session_cleanup.events import ShardRun

ACCEPTED = 202


class ShardStartFailed(Exception):
    """Lambda did not accept a shard run's asynchronous invocation."""


class ShardStarter(Protocol):
    def start(self, run: ShardRun) -> None: ...


class LambdaShardStarter:
    def __init__(self, lambda_client: Callable[[], Any], function_name: str) -> None:
        self._client = lambda_client
        self._function = function_name

    def start(self, run: ShardRun) -> None:
        """Queue the shard run (InvocationType Event): it runs after this invocation returns."""
        response = self._client().invoke(
            FunctionName=self._function,
            InvocationType="Event",
            Payload=json.dumps(run.to_event(), separators=(",", ":")).encode("utf-8"),
        )
        if response.get("StatusCode") != ACCEPTED:
            raise ShardStartFailed(run.shard)
