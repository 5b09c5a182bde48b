"""The template's HTTP API in this process: chatbot-local's gateway (routing, throttling, the real
authorizer and its cache, payload 2.0 events) in front of the real functions.

This module only adapts the call style of the tests (a route key, a token, path parameters) to an
HTTP request, and hands each function the test's Lambda context.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from chatbot_local.cors import allowed_origins
from chatbot_local.events import ApiIdentity, HttpRequest
from chatbot_local.gateway import Gateway
from chatbot_local.lambdas import Handler, import_handler
from chatbot_local.template import Template
from tools.lambda_events import API_HOST, API_IDENTITY

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


@cache
def _template() -> Template:
    return Template.load(TEMPLATE_PATH)


class _InProcessFunction:
    """Calls a handler with the test's context; what it raises reaches the test unchanged."""

    def __init__(self, handler: Handler, context: Any) -> None:
        self._handler = handler
        self._context = context

    def invoke(self, event: dict[str, Any]) -> Any:
        return self._handler(event, self._context)


def gateway_for(context: Any, environ: Mapping[str, str]) -> Gateway:
    """The HTTP API of the template for this configuration, its functions called in this process."""
    template = _template()
    region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "eu-west-1"
    resolver = template.resolver(environ, region)
    spec = template.http_api(resolver, allowed_origins(environ))
    needed = {route.function_id for route in spec.routes} | {a.function_id for a in spec.authorizers.values()}
    functions = {
        logical_id: _InProcessFunction(import_handler(template.function(logical_id, resolver)), context)
        for logical_id in sorted(needed)
    }
    return Gateway(spec, functions, ApiIdentity(region, API_IDENTITY.account_id, API_IDENTITY.api_id))


class InProcessApi:
    """`call("GET /v1/sessions/{session_id}", token, session_id=...)` -> the API's Reply.

    The gateway is built on the first call, from the configuration the test has set by then.
    """

    def __init__(self, lambda_context: Any) -> None:
        self.context = lambda_context
        self._gateway: Gateway | None = None

    @property
    def gateway(self) -> Gateway:
        if self._gateway is None:
            self._gateway = gateway_for(self.context, os.environ)
        return self._gateway

    def call(
        self,
        route_key: str,
        token: str | None,
        body: Any = None,
        content_type: str | None = "application/json",
        query: dict[str, str] | None = None,
        source_ip: str = "198.51.100.7",
        **path_parameters: str,
    ) -> Reply:
        method, _, path = route_key.partition(" ")
        for name, value in path_parameters.items():
            path = path.replace("{" + name + "}", quote(value, safe=""))
        headers = [("host", API_HOST), ("accept", "application/json"), ("user-agent", "pytest")]
        if content_type is not None:
            headers.append(("content-type", content_type))
        if token is not None:
            headers.append(("authorization", f"Bearer {token}"))
        raw = body if isinstance(body, str | None) else json.dumps(body)
        request = HttpRequest(
            method,
            path,
            urlencode(query or {}, quote_via=quote),
            tuple(headers),
            (raw or "").encode(),
            source_ip,
        )
        response = self.gateway.handle(request)
        parsed = json.loads(response.body) if response.body else None
        return Reply(response.status, dict(response.headers), parsed)
