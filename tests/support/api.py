"""Call the real authorizer, then the real chat handler, the way API Gateway does (in-process)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from authorizer.handler import lambda_handler as authorizer_handler
from chat.handler import lambda_handler as chat_handler
from tools.lambda_events import authorizer_event, chat_event

ROUTE_PARAMS = ("session_id", "subject")


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any


class InProcessApi:
    def __init__(self, lambda_context: Any) -> None:
        self.context = lambda_context

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
        authorizer_context: dict[str, Any] | None = None
        if not route_key.startswith("POST /v1/anonymous-sessions"):
            if token is None:
                return Reply(401, {}, {"message": "Unauthorized"})
            decision = authorizer_handler(
                authorizer_event(route_key, f"Bearer {token}", **path_parameters), self.context
            )
            if not decision.get("isAuthorized"):
                return Reply(403, {}, {"message": "Forbidden"})
            authorizer_context = decision["context"]
        raw = body if isinstance(body, str | None) else json.dumps(body)
        event = chat_event(route_key, authorizer_context, raw, content_type, query, source_ip, False, **path_parameters)
        response = chat_handler(event, self.context)
        parsed = json.loads(response["body"]) if response.get("body") else None
        return Reply(response["statusCode"], response.get("headers", {}), parsed)
