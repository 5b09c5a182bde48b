"""Helpers of the chatbot_local tests: fake functions, a fake clock and a gateway kit to drive them
(the real `chatbot-local` in a subprocess is tools/local_api.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.clocks import ManualClock

from chatbot_local.events import HttpRequest
from chatbot_local.gateway import Gateway
from chatbot_local.lambdas import InvocationError

FIXTURE_TEMPLATE = Path(__file__).resolve().parent / "fixtures" / "template.yaml"
WEB_ORIGIN = "http://127.0.0.1:8080"
REGION = "eu-west-1"


@dataclass
class FakeFunction:
    """Stands in for a LocalFunction: records events, answers with `respond(event)`."""

    respond: Callable[[dict[str, Any]], Any]
    events: list[dict[str, Any]] = field(default_factory=list)

    def invoke(self, event: dict[str, Any]) -> Any:
        self.events.append(event)
        return self.respond(event)


def allow_bearer_good(event: dict[str, Any]) -> dict[str, Any]:
    """A fake authorizer: `Bearer good-*` is allowed, with the token as principal."""
    token = event["headers"].get("authorization", "")
    if token.startswith("Bearer good"):
        return {"isAuthorized": True, "context": {"principal": token.removeprefix("Bearer ")}}
    return {"isAuthorized": False}


def echo_event(event: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}


def failing(event: dict[str, Any]) -> Any:
    raise InvocationError("fake function raised RuntimeError")


@dataclass
class GatewayKit:
    gateway: Gateway
    authorizer: FakeFunction
    chat: FakeFunction
    clock: ManualClock
    lines: list[str]

    def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        query: str = "",
    ) -> Any:
        header_list = tuple({"Host": "127.0.0.1:3000", "User-Agent": "tests", **(headers or {})}.items())
        return self.gateway.handle(HttpRequest(method, path, query, header_list, body, "127.0.0.1"))
