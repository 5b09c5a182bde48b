"""What the chat API's routes declare: parameter types, the route keys with path parameters, and the
documented error statuses of each route (docs/openapi.json is generated from these)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import UUID4

from chatbot_security.conversation.models import ErrorBody, GatewayError

SessionId = Annotated[UUID4, Path(description="Session id (UUIDv4)")]
Subject = Annotated[
    str, Path(min_length=1, max_length=512, pattern=r"^[^\x00-\x1f\x7f]+$", description="The user's `sub` claim")
]
PageSize = Annotated[int, Query(ge=1, le=100, description="Messages per page")]
SessionPageSize = Annotated[int, Query(ge=1, le=100, description="Sessions per page")]
Cursor = Annotated[
    str | None,
    Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$", description="`next_cursor` of the previous page"),
]

# Path parameters holding characters the resolver cannot route (see chat.error_handlers).
UNROUTABLE_RULES = {"session_id": "must be a UUIDv4", "subject": 'no control characters, "/", "?", "#" or \'"\''}

BEARER: list[dict[str, list[str]]] = [{"bearerAuth": []}]
# API Gateway's route keys of the routes below that take a path parameter (a test compares them).
ROUTES_WITH_PARAMETERS = frozenset(
    {
        "GET /v1/sessions/{session_id}",
        "DELETE /v1/sessions/{session_id}",
        "POST /v1/sessions/{session_id}/messages",
        "GET /v1/sessions/{session_id}/messages",
        "DELETE /v1/admin/users/{subject}",
        "POST /v1/sessions/{session_id}/stream-tickets",
    }
)
_ERROR_DESCRIPTIONS = {
    400: "Malformed JSON or bad UTF-8",
    401: "No credentials (answered by API Gateway)",
    403: "Invalid credentials (answered by API Gateway) or a missing role",
    404: "No such session: missing, ended or someone else's (indistinguishable)",
    409: (
        "`session_full` (MAX_MESSAGES_PER_SESSION), `idempotency_conflict` (a client_message_id reused with "
        "other content) or `too_many_sessions` (MAX_LIVE_SESSIONS)"
    ),
    413: "Body larger than MAX_BODY_BYTES",
    415: "Content-Type other than application/json on a request with a body",
    422: (
        "Schema violation (unknown field or query parameter, wrong type, length, bad UUID, forbidden characters); "
        "the message names each failing known field and its rule, counts unknown ones, never repeats a value"
    ),
    429: "Rate limited; see the Retry-After header (seconds)",
    500: "Internal error",
    502: "The model provider failed",
    503: "DynamoDB, KMS or Secrets Manager is throttled or failing; retry after Retry-After seconds",
    504: "The model provider timed out",
}
_ERROR_MODELS: dict[int, Any] = {401: GatewayError, 403: ErrorBody | GatewayError}
AUTHORIZED = (401, 403)
WITH_BODY = (400, 413, 415)


def responses(success: int, description: str, model: Any, *errors: int) -> dict[int, Any]:
    """OpenAPI responses of a route: its success and the error statuses it can answer with."""
    documented: dict[int, Any] = {success: {"description": description}}
    if model is not None:
        documented[success]["content"] = {"application/json": {"model": model}}
    for status in sorted({422, 500, 503, *errors}):
        documented[status] = {
            "description": _ERROR_DESCRIPTIONS[status],
            "content": {"application/json": {"model": _ERROR_MODELS.get(status, ErrorBody)}},
        }
    return documented
