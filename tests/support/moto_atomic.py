"""Make each DynamoDB request atomic in moto, as DynamoDB's own are.

moto evaluates a request's conditions and applies its writes without a lock, so two of its server
threads could interleave where DynamoDB never would. Tests that race requests against moto install this
first: it is the guarantee (single-item writes and transactions are serialisable) that the code relies on.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest


def make_dynamodb_atomic(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.responses import DynamoHandler

    lock = threading.Lock()
    real_call_action = DynamoHandler.call_action

    def call_action(self: DynamoHandler) -> Any:
        with lock:
            return real_call_action(self)

    monkeypatch.setattr(DynamoHandler, "call_action", call_action)
