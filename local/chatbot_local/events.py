"""Payload format 2.0: the events API Gateway sends to functions and authorizers, and the mapping
of a function's result back to HTTP.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

from chatbot_local.routing import RouteMatch

STAGE = "$default"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TEXT_TYPES = (
    "application/json",
    "application/javascript",
    "application/xml",
    "application/x-yaml",
    "application/yaml",
)


class IntegrationResponseError(Exception):
    """The function's result is not a valid payload 2.0 response (API Gateway answers 500)."""


@dataclass(frozen=True)
class HttpRequest:
    """One request as the client sent it."""

    method: str
    raw_path: str
    raw_query: str = ""
    header_list: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"

    @property
    def headers(self) -> dict[str, str]:
        """Lower-cased names; repeated headers joined with commas, as in payload 2.0."""
        joined: dict[str, str] = {}
        for name, value in self.header_list:
            key = name.lower()
            joined[key] = f"{joined[key]},{value}" if key in joined else value
        return joined


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name.lower()), None)


@dataclass(frozen=True)
class ApiIdentity:
    """Where the emulated API lives: used in requestContext and routeArn."""

    region: str
    account_id: str
    api_id: str = "local"


def gateway_time(now: float) -> tuple[str, int]:
    """`time` ("12/Mar/2020:19:03:58 +0000") and `timeEpoch` (ms) of the requestContext."""
    moment = datetime.fromtimestamp(now, UTC)
    text = f"{moment.day:02d}/{_MONTHS[moment.month - 1]}/{moment.year}:{moment:%H:%M:%S} +0000"
    return text, int(now * 1000)


def _query_parameters(raw_query: str) -> dict[str, str]:
    joined: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    return joined


def _event_headers(request: HttpRequest) -> tuple[dict[str, str], list[str]]:
    """Headers as the function sees them: cookies moved out, X-Forwarded-* added by the gateway."""
    headers = request.headers
    headers.pop("cookie", None)
    cookies = [
        part.strip()
        for name, value in request.header_list
        if name.lower() == "cookie"
        for part in value.split(";")
        if part.strip()
    ]
    forwarded = headers.get("x-forwarded-for")
    headers["x-forwarded-for"] = f"{forwarded}, {request.source_ip}" if forwarded else request.source_ip
    headers["x-forwarded-proto"] = "http"
    host = headers.get("host", "")
    headers.setdefault("x-forwarded-port", host.rsplit(":", 1)[1] if ":" in host else "80")
    return headers, cookies


def decoded_path(raw_path: str) -> str:
    """The path as an HTTP API hands it to the function: percent-decoded, in `rawPath` as in
    `requestContext.http.path` (REST APIs and function URLs keep the encoding; HTTP APIs do not)."""
    return unquote(raw_path)


def request_context(
    request: HttpRequest, route_key: str, request_id: str, now: float, identity: ApiIdentity
) -> dict[str, Any]:
    time_text, time_epoch = gateway_time(now)
    domain = request.headers.get("host", "").rsplit(":", 1)[0] or "localhost"
    return {
        "accountId": identity.account_id,
        "apiId": identity.api_id,
        "domainName": domain,
        "domainPrefix": domain.split(".", 1)[0],
        "http": {
            "method": request.method,
            "path": decoded_path(request.raw_path),
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": request.headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": route_key,
        "stage": STAGE,
        "time": time_text,
        "timeEpoch": time_epoch,
    }


def _common(request: HttpRequest, match: RouteMatch, context: dict[str, Any]) -> dict[str, Any]:
    headers, cookies = _event_headers(request)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": match.route.route_key if match.route.path != "$default" else "$default",
        "rawPath": decoded_path(request.raw_path),
        "rawQueryString": request.raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    query = _query_parameters(request.raw_query)
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = context
    if match.path_parameters:
        event["pathParameters"] = dict(match.path_parameters)
    return event


def integration_event(
    request: HttpRequest,
    match: RouteMatch,
    context: dict[str, Any],
    authorizer_context: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The event a Lambda proxy integration receives (payload format 2.0)."""
    context = dict(context)
    if authorizer_context is not None:
        context["authorizer"] = {"lambda": dict(authorizer_context)}
    event = _common(request, match, context)
    if request.body:
        text = _as_text(request)
        event["body"] = text if text is not None else base64.b64encode(request.body).decode()
        event["isBase64Encoded"] = text is None
    else:
        event["isBase64Encoded"] = False
    return event


def authorizer_event(
    request: HttpRequest,
    match: RouteMatch,
    context: dict[str, Any],
    identity_values: list[str],
    identity: ApiIdentity,
) -> dict[str, Any]:
    """The event a REQUEST authorizer receives (payload format 2.0)."""
    common = _common(request, match, context)
    api = f"arn:aws:execute-api:{identity.region}:{identity.account_id}:{identity.api_id}"
    route_arn = f"{api}/{STAGE}/{request.method}{request.raw_path}"
    event: dict[str, Any] = {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": route_arn,
        "identitySource": identity_values,
    }
    event.update({key: value for key, value in common.items() if key != "version"})
    return event


def _as_text(request: HttpRequest) -> str | None:
    """The body as text when its media type is textual and it is valid UTF-8; else None (base64)."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    textual = media_type.startswith("text/") or media_type in _TEXT_TYPES or media_type.endswith(("+json", "+xml"))
    if not textual:
        return None
    try:
        return request.body.decode("utf-8")
    except UnicodeDecodeError:
        return None


def gateway_message(status: int, message: str) -> HttpResponse:
    """A response API Gateway makes itself: `{"message": "..."}`."""
    body = json.dumps({"message": message}, separators=(",", ":")).encode()
    return HttpResponse(status, [("content-type", "application/json")], body)


def integration_response(result: Any) -> HttpResponse:
    """Map a function's result to HTTP (payload 2.0: a response object, or anything else as JSON)."""
    if not isinstance(result, dict) or "statusCode" not in result:
        body = result if isinstance(result, str) else json.dumps(result)
        return HttpResponse(200, [("content-type", "application/json")], body.encode())
    status = result["statusCode"]
    if isinstance(status, str) and status.isdigit():
        status = int(status)
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise IntegrationResponseError("statusCode must be an HTTP status")
    headers = result.get("headers") or {}
    cookies = result.get("cookies") or []
    if not isinstance(headers, dict) or not isinstance(cookies, list):
        raise IntegrationResponseError("headers must be an object and cookies a list")
    header_list = [(str(name), _header_value(value)) for name, value in headers.items()]
    header_list += [("set-cookie", str(cookie)) for cookie in cookies]
    response = HttpResponse(
        status, header_list, _response_body(result.get("body"), bool(result.get("isBase64Encoded")))
    )
    if response.body and response.header("content-type") is None:
        response.headers.append(("content-type", "text/plain; charset=utf-8"))
    return response


def _response_body(body: Any, is_base64: bool) -> bytes:
    if body is None:
        return b""
    if not isinstance(body, str):
        raise IntegrationResponseError("body must be a string")
    if not is_base64:
        return body.encode("utf-8")
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error as error:
        raise IntegrationResponseError("body is not valid base64") from error


def _header_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise IntegrationResponseError("header values must be strings")


def scheduled_event(region: str, account_id: str, rule_name: str, now: float) -> dict[str, Any]:
    """The event an EventBridge schedule sends to its target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{account_id}:rule/{rule_name}"],
        "detail": {},
    }
