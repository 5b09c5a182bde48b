"""The events API Gateway sends for a WebSocket API (the `$connect` REQUEST authorizer, `CONNECT`,
`MESSAGE` and `DISCONNECT`), and the reading of the authorizer's IAM policy answer.

WebSocket authorizers answer with a policy, not a simple response: `Allow` on the `$connect`
method ARN lets the connection in, anything else is 403, and raising `Exception("Unauthorized")`
is 401. The policy's `context` holds strings, numbers and booleans only; API Gateway hands it to
every integration of the connection as `requestContext.authorizer`, values as strings, with the
`principalId` and the authorizer's latency.
"""

from __future__ import annotations

import fnmatch
import secrets
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chatbot_local.events import ApiIdentity, gateway_time
from chatbot_local.gateway import FORBIDDEN, INTERNAL_ERROR, UNAUTHORIZED, new_request_id

_ID_ALPHABET = string.ascii_letters + string.digits
INVOKE_ACTION = "execute-api:Invoke"


def new_connection_id() -> str:
    """Shaped like API Gateway's (`L0SM9cOFvHcCIhw=`), and safe in a URL path as it is."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(15)) + "="


@dataclass(frozen=True)
class Handshake:
    """What API Gateway keeps of the upgrade request for the connection's events."""

    connection_id: str
    header_list: tuple[tuple[str, str], ...]
    query: tuple[tuple[str, str], ...]
    source_ip: str
    connected_at: float
    domain_name: str
    api: ApiIdentity
    stage: str
    authorizer: dict[str, Any] = field(default_factory=dict)

    @property
    def user_agent(self) -> str:
        return next((value for name, value in self.header_list if name.lower() == "user-agent"), "")

    def method_arn(self) -> str:
        api = self.api
        return f"arn:aws:execute-api:{api.region}:{api.account_id}:{api.api_id}/{self.stage}/$connect"

    def context(self, route_key: str, event_type: str, request_id: str, now: float) -> dict[str, Any]:
        time_text, time_epoch = gateway_time(now)
        context: dict[str, Any] = {
            "routeKey": route_key,
            "eventType": event_type,
            "extendedRequestId": request_id,
            "requestTime": time_text,
            "messageDirection": "IN",
            "stage": self.stage,
            "connectedAt": int(self.connected_at * 1000),
            "requestTimeEpoch": time_epoch,
            "identity": {"sourceIp": self.source_ip, "userAgent": self.user_agent},
            "requestId": request_id,
            "domainName": self.domain_name,
            "connectionId": self.connection_id,
            "apiId": self.api.api_id,
        }
        if self.authorizer:
            context["authorizer"] = dict(self.authorizer)
        return context

    def _headers(self) -> dict[str, Any]:
        """`headers` (last value of each name) and `multiValueHeaders`, as REST-style events carry them."""
        forwarded = [*self.header_list, ("X-Forwarded-For", self.source_ip), ("X-Forwarded-Proto", "http")]
        single: dict[str, str] = {}
        multi: dict[str, list[str]] = {}
        for name, value in forwarded:
            single[name] = value
            multi.setdefault(name, []).append(value)
        return {"headers": single, "multiValueHeaders": multi}

    def _query(self) -> dict[str, Any]:
        if not self.query:
            return {}
        single: dict[str, str] = {}
        multi: dict[str, list[str]] = {}
        for name, value in self.query:
            single[name] = value
            multi.setdefault(name, []).append(value)
        return {"queryStringParameters": single, "multiValueQueryStringParameters": multi}

    def authorizer_event(self, request_id: str, now: float) -> dict[str, Any]:
        return {
            "type": "REQUEST",
            "methodArn": self.method_arn(),
            **self._headers(),
            **self._query(),
            "stageVariables": {},
            "requestContext": self.context("$connect", "CONNECT", request_id, now),
        }

    def connect_event(self, request_id: str, now: float) -> dict[str, Any]:
        return {
            **self._headers(),
            **self._query(),
            "requestContext": self.context("$connect", "CONNECT", request_id, now),
            "isBase64Encoded": False,
        }

    def message_event(self, route_key: str, body: str, is_base64: bool, now: float) -> dict[str, Any]:
        request_id = new_request_id()
        context = self.context(route_key, "MESSAGE", request_id, now)
        context["messageId"] = new_request_id()
        return {"requestContext": context, "body": body, "isBase64Encoded": is_base64}

    def disconnect_event(self, status_code: int, reason: str, now: float) -> dict[str, Any]:
        context = self.context("$disconnect", "DISCONNECT", new_request_id(), now)
        context["disconnectStatusCode"] = status_code
        context["disconnectReason"] = reason
        host = next((value for name, value in self.header_list if name.lower() == "host"), self.domain_name)
        headers = {"Host": host, "X-Forwarded-For": "", "x-api-key": "", "x-restapi": ""}
        return {
            "headers": headers,
            "multiValueHeaders": {name: [value] for name, value in headers.items()},
            "requestContext": context,
            "isBase64Encoded": False,
        }


@dataclass(frozen=True)
class PolicyDecision:
    """The authorizer's answer: allowed with the integration's `authorizer` context, or an error."""

    allowed: bool
    context: Mapping[str, Any] | None = None
    error: tuple[int, str] | None = None


def refused(error: tuple[int, str]) -> PolicyDecision:
    return PolicyDecision(False, error=error)


def unauthorized_exception(error: BaseException) -> bool:
    """The authorizer raised `Exception("Unauthorized")`: API Gateway's documented way to answer 401."""
    cause = error.__cause__
    return cause is not None and str(cause) == "Unauthorized"


def read_policy(result: Any, method_arn: str, latency_ms: int) -> PolicyDecision:
    """Evaluate an authorizer's `{principalId, policyDocument, context}` for `method_arn`."""
    if not isinstance(result, dict) or not isinstance(result.get("principalId"), str):
        return refused(INTERNAL_ERROR)
    document = result.get("policyDocument")
    statements = document.get("Statement") if isinstance(document, dict) else None
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not all(isinstance(item, dict) for item in statements):
        return refused(INTERNAL_ERROR)
    context = result.get("context") or {}
    if not isinstance(context, dict) or not all(_is_scalar(value) for value in context.values()):
        return refused(INTERNAL_ERROR)
    effects = {str(item.get("Effect")) for item in statements if _applies(item, method_arn)}
    if "Deny" in effects or "Allow" not in effects:
        return refused(FORBIDDEN)
    authorizer: dict[str, Any] = {key: _as_string(value) for key, value in context.items()}
    authorizer.update({"principalId": result["principalId"], "integrationLatency": latency_ms})
    return PolicyDecision(True, context=authorizer)


def missing_identity() -> PolicyDecision:
    return refused(UNAUTHORIZED)


def _applies(statement: Mapping[str, Any], method_arn: str) -> bool:
    return _matches_any(statement.get("Action"), INVOKE_ACTION) and _matches_any(statement.get("Resource"), method_arn)


def _matches_any(patterns: Any, value: str) -> bool:
    items: Sequence[Any] = [patterns] if isinstance(patterns, str) else patterns if isinstance(patterns, list) else []
    return any(isinstance(item, str) and _glob(item, value) for item in items)


def _glob(pattern: str, value: str) -> bool:
    """IAM wildcards: `*` any run of characters, `?` one character; nothing else is special."""
    escaped = pattern.replace("[", "[[]")
    return fnmatch.fnmatchcase(value, escaped)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def _as_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
