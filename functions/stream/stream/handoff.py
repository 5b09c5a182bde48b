"""Data access for the hand-off of a claimed turn to the worker: an asynchronous Lambda invoke.

A WebSocket route's integration ends after 29 seconds, which a streamed answer may outlast, so the
stream function claims the turn and the worker (``stream.worker``) answers it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol

ACCEPTED = 202


class WorkerStartFailed(Exception):
    """Lambda did not accept the asynchronous invocation."""


class TurnHandOff(Protocol):
    def hand_off(self, payload: Mapping[str, Any]) -> None: ...


class LambdaHandOff:
    def __init__(self, lambda_client: Callable[[], Any], function_name: str) -> None:
        self._client = lambda_client
        self._function = function_name

    def hand_off(self, payload: Mapping[str, Any]) -> None:
        """Queue the worker with ``payload`` (InvocationType Event): it runs after this function returns."""
        response = self._client().invoke(
            FunctionName=self._function,
            InvocationType="Event",
            Payload=json.dumps(payload, separators=(",", ":")).encode("utf-8"),
        )
        if response.get("StatusCode") != ACCEPTED:
            raise WorkerStartFailed()
