"""Fixtures of the chatbot_local tests: templates, fake functions and a gateway built from them."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from chatbot_local.events import ApiIdentity, HttpRequest
from chatbot_local.gateway import Gateway
from chatbot_local.lambdas import InvocationError
from chatbot_local.template import Template

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_TEMPLATE = Path(__file__).resolve().parent / "fixtures" / "template.yaml"
WEB_ORIGIN = "http://127.0.0.1:8080"
REGION = "eu-west-1"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


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
class Clock:
    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class GatewayKit:
    gateway: Gateway
    authorizer: FakeFunction
    chat: FakeFunction
    clock: Clock
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


@pytest.fixture
def fixture_template() -> Template:
    return Template.load(FIXTURE_TEMPLATE)


@pytest.fixture
def project_template() -> Template:
    return Template.load(ROOT / "template.yaml")


@pytest.fixture
def make_gateway(fixture_template: Template) -> Callable[..., GatewayKit]:
    """A Gateway for the fixture template, with fake authorizer and chat functions."""

    def build(
        authorizer: Callable[[dict[str, Any]], Any] = allow_bearer_good,
        chat: Callable[[dict[str, Any]], Any] = echo_event,
        environ: dict[str, str] | None = None,
        origins: tuple[str, ...] = (WEB_ORIGIN,),
    ) -> GatewayKit:
        resolver = fixture_template.resolver(environ or {}, REGION)
        api = fixture_template.http_api(resolver, origins)
        authorizer_function, chat_function = FakeFunction(authorizer), FakeFunction(chat)
        clock, lines = Clock(), []
        functions = {"AuthorizerFunction": authorizer_function, "ChatFunction": chat_function}
        gateway = Gateway(api, functions, ApiIdentity(REGION, "123456789012"), log=lines.append, monotonic=clock)
        return GatewayKit(gateway, authorizer_function, chat_function, clock, lines)

    return build
