"""Payload 2.0 events: the committed samples in events/ (what `sam local invoke` sends), and events for
any route built by chatbot-local's API emulation, the same code that serves `chatbot-local`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from chatbot_local.events import ApiIdentity, HttpRequest, integration_event, request_context
from chatbot_local.events import authorizer_event as gateway_authorizer_event
from chatbot_local.gateway import new_request_id
from chatbot_local.routing import RouteMatch
from chatbot_local.template import RouteSpec

EVENTS = Path(__file__).resolve().parents[1] / "events"


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def filled_event(name: str, **values: str) -> dict[str, Any]:
    """A committed event with its placeholders (`REPLACE_WITH_...`, events/README.md) replaced."""
    text = (EVENTS / name).read_text()
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    event: dict[str, Any] = json.loads(text)
    return event


# Where the sample events say the API lives (events/README.md).
API_IDENTITY = ApiIdentity("eu-west-1", "123456789012", "abcdef1234")
API_HOST = "abcdef1234.execute-api.eu-west-1.amazonaws.com"


def _request(
    route_key: str,
    path_parameters: dict[str, str],
    headers: list[tuple[str, str]],
    body: bytes = b"",
    query: dict[str, str] | None = None,
    source_ip: str = "198.51.100.7",
) -> tuple[HttpRequest, RouteMatch, dict[str, Any]]:
    """A client's request for `route_key`, the route it matches and its requestContext (chatbot-local's)."""
    method, _, path_template = route_key.partition(" ")
    path = path_template
    for name, value in path_parameters.items():
        path = path.replace("{" + name + "}", quote(value, safe=""))
    request = HttpRequest(
        method,
        path,
        urlencode(query or {}, quote_via=quote),
        (("host", API_HOST), ("user-agent", "curl/8.5.0"), *headers),
        body,
        source_ip,
    )
    match = RouteMatch(RouteSpec(method, path_template, "function", None), dict(path_parameters))
    return request, match, request_context(request, route_key, new_request_id(), time.time(), API_IDENTITY)


def authorizer_event(route_key: str, authorization: str | None, **path_parameters: str) -> dict[str, Any]:
    """The event the HTTP API's Lambda authorizer receives for `route_key` (payload 2.0)."""
    headers = [] if authorization is None else [("authorization", authorization)]
    request, match, context = _request(route_key, path_parameters, headers)
    identity = [] if authorization is None else [authorization]
    event = gateway_authorizer_event(request, match, context, identity, API_IDENTITY)
    if authorization is None:
        event.pop("identitySource")
    return event


def chat_event(
    route_key: str,
    context: dict[str, Any] | None,
    body: str | None = None,
    content_type: str | None = "application/json",
    query: dict[str, str] | None = None,
    source_ip: str = "198.51.100.7",
    is_base64: bool = False,
    **path_parameters: str,
) -> dict[str, Any]:
    """The event the chat function receives for `route_key` with this authorizer context (payload 2.0).

    `is_base64`: `body` is already base64 text, sent as such (a binary body)."""
    headers = [] if content_type is None else [("content-type", content_type)]
    raw = (body or "").encode()
    request, match, request_ctx = _request(route_key, path_parameters, headers, raw, query, source_ip)
    event = integration_event(request, match, request_ctx, context)
    if body is not None:  # as given, whatever its media type (a test's malformed body stays malformed)
        event["body"] = body
        event["isBase64Encoded"] = is_base64
    return event


def body_of(response: dict[str, Any]) -> Any:
    return json.loads(response["body"]) if response.get("body") else None
