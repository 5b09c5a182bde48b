"""Payload 2.0 events, built from the committed samples in events/ so tests and `sam local invoke` agree."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

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


def authorizer_event(route_key: str, authorization: str | None, **path_parameters: str) -> dict[str, Any]:
    event = load_event("authorizer-request.json")
    method, _, path_template = route_key.partition(" ")
    path = path_template
    for name, value in path_parameters.items():
        path = path.replace("{" + name + "}", value)
    event["routeKey"] = route_key
    api_and_stage = "/".join(event["routeArn"].split("/", 2)[:2])  # arn:...:<api-id>/<stage>
    event["routeArn"] = f"{api_and_stage}/{method}{path}"
    event["rawPath"] = path
    event["requestContext"]["http"]["method"] = method
    event["requestContext"]["http"]["path"] = path
    event["requestContext"]["routeKey"] = route_key
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    event["pathParameters"] = dict(path_parameters)
    headers = {k: v for k, v in event["headers"].items() if k != "authorization"}
    if authorization is not None:
        headers["authorization"] = authorization
        event["identitySource"] = [authorization]
    else:
        event.pop("identitySource", None)
    event["headers"] = headers
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
    event = copy.deepcopy(load_event("chat-post-message.json"))
    method, _, path_template = route_key.partition(" ")
    path = path_template
    for name, value in path_parameters.items():
        path = path.replace("{" + name + "}", value)
    event["routeKey"] = route_key
    event["rawPath"] = path
    event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in (query or {}).items())
    if query:
        event["queryStringParameters"] = dict(query)
    else:
        event.pop("queryStringParameters", None)
    event["pathParameters"] = dict(path_parameters)
    if not path_parameters:
        event.pop("pathParameters")
    event["requestContext"]["http"].update(method=method, path=path, sourceIp=source_ip)
    event["requestContext"]["routeKey"] = route_key
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    if context is None:
        event["requestContext"].pop("authorizer", None)
    else:
        event["requestContext"]["authorizer"] = {"lambda": context}
    headers = {k: v for k, v in event["headers"].items() if k != "content-type"}
    if content_type is not None:
        headers["content-type"] = content_type
    event["headers"] = headers
    event["body"] = body
    event["isBase64Encoded"] = is_base64
    if body is None:
        event.pop("body")
    return event


def body_of(response: dict[str, Any]) -> Any:
    return json.loads(response["body"]) if response.get("body") else None
