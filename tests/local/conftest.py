"""Fixtures of the chatbot_local tests: templates and a gateway with fake functions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from local_kit import (
    FIXTURE_TEMPLATE,
    REGION,
    WEB_ORIGIN,
    FakeFunction,
    GatewayKit,
    allow_bearer_good,
    echo_event,
)
from support.clocks import ManualClock

from chatbot_local.events import ApiIdentity
from chatbot_local.gateway import Gateway
from chatbot_local.template import Template
from tools.local_api import ROOT


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
        resolver = fixture_template.resolver({"ALLOWED_ORIGINS": ",".join(origins), **(environ or {})}, REGION)
        api = fixture_template.http_api(resolver, origins)
        authorizer_function, chat_function = FakeFunction(authorizer), FakeFunction(chat)
        clock, lines = ManualClock(1_000.0), list[str]()
        functions = {"AuthorizerFunction": authorizer_function, "ChatFunction": chat_function}
        gateway = Gateway(api, functions, ApiIdentity(REGION, "123456789012"), log=lines.append, monotonic=clock)
        return GatewayKit(gateway, authorizer_function, chat_function, clock, lines)

    return build
