"""Events API Gateway hands the stream function (Lambda proxy integration of the WebSocket API)."""

from __future__ import annotations

import json
import time
from typing import Any

SESSION = "3f2b8c1e-9a4d-4e6f-8b2a-7c1d0e9f5a34"
OWNER = "owner-key-hash"


def authorizer_context(
    owner: str = OWNER, kind: str = "anonymous", session_id: str = SESSION, credential_exp: int | None = None
) -> dict[str, Any]:
    """What the $connect authorizer's Allow policy carries (numbers arrive as strings)."""
    exp = credential_exp if credential_exp is not None else int(time.time()) + 3600
    return {"owner": owner, "kind": kind, "session_id": session_id, "credential_exp": str(exp),
            "principalId": owner, "integrationLatency": 12}  # fmt: skip


def ws_event(
    route: str,
    connection_id: str = "conn-A1b2C3d4=",
    *,
    body: Any = None,
    context: dict[str, Any] | None = None,
    request_id: str = "req-1",
    is_base64: bool = False,
) -> dict[str, Any]:
    event_types = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}
    request_context: dict[str, Any] = {
        "routeKey": route,
        "eventType": event_types.get(route, "MESSAGE"),
        "connectionId": connection_id,
        "requestId": request_id,
        "domainName": "abc123.execute-api.eu-west-1.amazonaws.com",
        "stage": "v1",
        "apiId": "abc123",
        "connectedAt": int(time.time() * 1000),
    }
    if context is not None:
        request_context["authorizer"] = context
    event: dict[str, Any] = {"requestContext": request_context, "isBase64Encoded": is_base64}
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event
