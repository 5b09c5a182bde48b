"""Inject AWS failures with botocore event hooks (docs/resilience.md).

Every botocore client created inside :func:`injecting_aws_faults` (the chat function's cached
clients, Powertools' Secrets Manager client, a Bedrock runtime) gets a ``before-call`` handler and an
``after-call`` handler. An armed fault then either

* answers the call with an error response before it is sent (``throttled``, ``server_error``): botocore
  raises the service's modelled exception, exactly as after a real error response once its own
  retries are spent (a ``before-call`` answer skips the retry loop, so one armed fault is one final
  failure); or raises a timeout before the call is sent (``timeout``): nothing reached the service;
* or lets the call through to moto and then raises a timeout (``lost_answer``): the write happened
  but the caller never heard, the ambiguous outcome a client retry has to survive.

Calls can be skipped (``skip=1`` fails the second TransactWriteItems of a turn, not the first), and a
fault fires ``times`` times, then the service is healthy again.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError

# (error code, HTTP status) a service answers when it throttles or fails, by botocore service id.
THROTTLING = {
    "dynamodb": ("ProvisionedThroughputExceededException", 400),
    "kms": ("ThrottlingException", 400),
    "secrets-manager": ("ThrottlingException", 400),
    "bedrock-runtime": ("ThrottlingException", 429),
}
SERVER_ERROR = {
    "dynamodb": ("InternalServerError", 500),
    "kms": ("KMSInternalException", 500),
    "secrets-manager": ("InternalServiceError", 500),
    "bedrock-runtime": ("InternalServerException", 500),
}
FAULTS = ("throttled", "server_error", "timeout", "lost_answer", "wire")


@dataclass
class Fault:
    service: str  # botocore service id: dynamodb, kms, secrets-manager, bedrock-runtime
    operation: str  # API name: GetItem, TransactWriteItems, Decrypt, ...
    kind: str  # one of FAULTS
    skip: int = 0
    times: int = 1
    fired: int = 0
    seen: int = 0
    transaction_reason: str | None = None  # TransactWriteItems only: cancel with this per-item reason

    def takes(self, service: str, operation: str) -> bool:
        if (service, operation) != (self.service, self.operation) or self.fired >= self.times:
            return False
        self.seen += 1
        if self.seen <= self.skip:
            return False
        self.fired += 1
        return True


class AwsFaults:
    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self.calls: Counter[tuple[str, str]] = Counter()  # every call, failed or not
        self.answered: Counter[tuple[str, str]] = Counter()  # calls answered by a responder
        self.sends: Counter[tuple[str, str]] = Counter()  # HTTP attempts (the SDK's retries included)
        self.responders: dict[tuple[str, str], Callable[[], dict[str, Any]]] = {}
        self.requests: list[tuple[str, str, Any]] = []  # what the responders were sent (service, operation, body)

    def respond(self, service: str, operation: str, answer: Callable[[], dict[str, Any]]) -> None:
        """Answer the calls no fault takes with ``answer()`` (a service moto does not have: Bedrock)."""
        self.responders[(service, operation)] = answer

    def arm(self, service: str, operation: str, kind: str, *, skip: int = 0, times: int = 1) -> Fault:
        if kind not in FAULTS:
            raise ValueError(kind)
        fault = Fault(service, operation, kind, skip=skip, times=times)
        self.faults.append(fault)
        return fault

    def cancel_transaction(self, reason: str, *, skip: int = 0, times: int = 1) -> Fault:
        """TransactWriteItems cancelled with ``reason`` on every item (e.g. ``ThrottlingError``)."""
        fault = self.arm("dynamodb", "TransactWriteItems", "throttled", skip=skip, times=times)
        fault.transaction_reason = reason
        return fault

    def throttle_on_the_wire(self, service: str, operation: str, times: int = 1) -> Fault:
        """Answer the next ``times`` HTTP attempts with a throttling error: the SDK's retries see it."""
        return self.arm(service, operation, "wire", times=times)

    def heal(self) -> None:
        self.faults.clear()

    def fired(self) -> int:
        return sum(fault.fired for fault in self.faults)

    # -- botocore handlers ------------------------------------------------------------------
    def _before_call(self, event_name: str, model: Any, params: Any, **_: Any) -> Any:
        service, operation = _names(event_name)
        self.calls[(service, operation)] += 1
        for fault in self.faults:
            if fault.kind not in ("lost_answer", "wire") and fault.takes(service, operation):
                if fault.kind == "timeout":
                    raise ReadTimeoutError(endpoint_url=f"https://{service}.fault.test")
                return _error_answer(fault, service, params)
        responder = self.responders.get((service, operation))
        if responder is None:
            return None
        self.answered[(service, operation)] += 1
        body = (params or {}).get("body") or b"{}"
        self.requests.append((service, operation, json.loads(body)))
        return AWSResponse(f"https://{service}.fault.test", 200, {}, None), responder()

    def _before_send(self, event_name: str, **_: Any) -> AWSResponse | None:
        service, operation = _names(event_name)
        self.sends[(service, operation)] += 1
        for fault in self.faults:
            if fault.kind == "wire" and fault.takes(service, operation):
                code, status = THROTTLING[service]
                body = json.dumps({"__type": f"com.amazonaws.{service}#{code}", "message": "injected"}).encode()
                return AWSResponse(f"https://{service}.fault.test", status, {}, _Raw(body))
        return None

    def _after_call(self, event_name: str, **_: Any) -> None:
        service, operation = _names(event_name)
        for fault in self.faults:
            if fault.kind == "lost_answer" and fault.takes(service, operation):
                raise ReadTimeoutError(endpoint_url=f"https://{service}.fault.test")


class _Raw:
    """The bit of urllib3's response that botocore reads a body from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[bytes]:
        yield self._body


def _names(event_name: str) -> tuple[str, str]:
    _, service, operation = event_name.split(".", 2)
    return service, operation


def _error_answer(fault: Fault, service: str, params: Any) -> tuple[AWSResponse, dict[str, Any]]:
    code, status = (THROTTLING if fault.kind == "throttled" else SERVER_ERROR)[service]
    parsed: dict[str, Any] = {
        "Error": {"Code": code, "Message": f"injected {fault.kind}"},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": {}, "RetryAttempts": 0},
    }
    if fault.transaction_reason is not None:
        body = (params or {}).get("body") or b"{}"
        items = json.loads(body).get("TransactItems") or [{}]  # the serialised request: one reason per item
        parsed["Error"] = {"Code": "TransactionCanceledException", "Message": "injected cancellation"}
        parsed["CancellationReasons"] = [{"Code": fault.transaction_reason} for _ in items]
        status = parsed["ResponseMetadata"]["HTTPStatusCode"] = 400
    return AWSResponse(f"https://{service}.fault.test", status, {}, None), parsed


@contextmanager
def injecting_aws_faults() -> Iterator[AwsFaults]:
    """Arm faults on every botocore client created inside the block."""
    faults = AwsFaults()
    real_create_client = botocore.session.Session.create_client

    def create_client(self: botocore.session.Session, *args: Any, **kwargs: Any) -> Any:
        client = real_create_client(self, *args, **kwargs)
        client.meta.events.register("before-call", faults._before_call)
        client.meta.events.register("before-send", faults._before_send)
        client.meta.events.register("after-call", faults._after_call)
        return client

    botocore.session.Session.create_client = create_client
    try:
        yield faults
    finally:
        botocore.session.Session.create_client = real_create_client


CONVERSE = ("bedrock-runtime", "Converse")


def converse_reply(text: str = "the answer") -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 1, "outputTokens": 1, "totalTokens": 2},
        "metrics": {"latencyMs": 1},
    }


def use_bedrock_double(
    faults: AwsFaults, monkeypatch: Any, answer: Callable[[], dict[str, Any]] = converse_reply
) -> None:
    """The chat function on MODEL_PROVIDER=bedrock, its Converse calls answered by ``faults`` (Bedrock is
    not in moto); call inside :func:`injecting_aws_faults`, after resetting the caches."""
    import boto3

    from chatbot_security.conversation.model_providers import BedrockConverseModel, configured

    monkeypatch.setenv("MODEL_PROVIDER", "bedrock")
    monkeypatch.setenv("MODEL_ID", "test-model")
    runtime = boto3.client("bedrock-runtime")
    faults.respond(*CONVERSE, answer)
    monkeypatch.setattr(
        configured,
        "BedrockConverseModel",
        lambda settings: BedrockConverseModel(settings, runtime=lambda _timeout: runtime, sleep=lambda seconds: None),
    )
