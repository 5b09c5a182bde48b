"""Response headers and the error body shared by the chat function's every answer."""

from __future__ import annotations

import json
from typing import Any

from chatbot_security.conversation.errors import ChatbotError
from chatbot_security.conversation.failures import error_payload

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
JSON_CONTENT_TYPE = "application/json"


def error_body(error: ChatbotError, request_id: str) -> str:
    return json.dumps(error_payload(error, request_id), separators=(",", ":"))


def error_headers(error: ChatbotError) -> dict[str, str]:
    headers = {"Content-Type": JSON_CONTENT_TYPE}
    if error.retry_after_seconds is not None:
        headers["Retry-After"] = str(error.retry_after_seconds)
    return headers


def error_response(error: ChatbotError, request_id: str) -> dict[str, Any]:
    """A complete Lambda proxy (payload 2.0) response for ``error``."""
    return secure(
        {
            "statusCode": error.status,
            "headers": error_headers(error),
            "body": error_body(error, request_id),
            "isBase64Encoded": False,
        }
    )


def secure(response: dict[str, Any]) -> dict[str, Any]:
    """Add the security headers; a 204 carries no body and no Content-Type."""
    headers = dict(response.get("headers") or {})
    headers.update(SECURITY_HEADERS)
    if response.get("statusCode") == 204:
        response["body"] = ""
        headers = {key: value for key, value in headers.items() if key.lower() != "content-type"}
    response["headers"] = headers
    return response
