"""HTTP routes of the chat API. Each route parses, calls one logic method and maps the result."""

from __future__ import annotations

import json
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFound
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import UUID4

from chat.conversations import Conversations
from chat.models import (
    AnonymousSession,
    ErrorBody,
    MessagePage,
    MessageRequest,
    Session,
    SessionList,
    Turn,
)
from chatbot_security.errors import ChatbotError, ForbiddenError, SchemaError
from chatbot_security.http_responses import error_body, error_headers
from chatbot_security.observability import logger
from chatbot_security.principal import Principal

SessionId = Annotated[UUID4, Path(description="Session id (UUIDv4)")]
Subject = Annotated[str, Path(min_length=1, max_length=512, pattern=r"^[^\x00-\x1f\x7f]+$")]
PageSize = Annotated[int, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]

ERROR_RESPONSES: dict[int, Any] = {
    status: {"description": description, "content": {"application/json": {"model": ErrorBody}}}
    for status, description in {
        400: "Malformed JSON or bad UTF-8",
        403: "Not allowed",
        404: "No such session (or not yours, or ended)",
        413: "Body too large",
        415: "Not application/json",
        422: "Schema violation",
        429: "Rate limited (see Retry-After)",
        500: "Internal error",
    }.items()
}

app = APIGatewayHttpResolver(enable_validation=True)


def conversations() -> Conversations:
    service: Conversations = app.context["conversations"]
    return service


def principal() -> Principal:
    """The caller as established by the authorizer: the only identity this function trusts."""
    try:
        return Principal.from_authorizer_context(app.current_event.request_context.authorizer.get_lambda)
    except ValueError:
        raise ForbiddenError() from None


def json_response(status: int, model: Any) -> Response[str]:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=model.model_dump_json())


# -- routes ---------------------------------------------------------------------------------
@app.post("/v1/anonymous-sessions", responses={201: {"description": "Created"}, **ERROR_RESPONSES})
def handle_create_anonymous_session() -> Response[str]:
    if not conversations().settings.allow_anonymous:
        # Indistinguishable from API Gateway's answer to an unknown route.
        return Response(404, content_types.APPLICATION_JSON, json.dumps({"message": "Not Found"}))
    source_ip = app.current_event.request_context.http.source_ip
    session: AnonymousSession = conversations().create_anonymous_session(source_ip)
    return json_response(201, session)


@app.post("/v1/sessions", responses={201: {"description": "Created"}, **ERROR_RESPONSES})
def handle_create_session() -> Response[str]:
    session: Session = conversations().create_session(principal())
    return json_response(201, session)


@app.get("/v1/sessions", responses=ERROR_RESPONSES)
def handle_list_sessions() -> SessionList:
    return SessionList(sessions=conversations().list_sessions(principal()))


@app.get("/v1/sessions/<session_id>", responses=ERROR_RESPONSES)
def handle_get_session(session_id: SessionId) -> Session:
    return conversations().get_session(principal(), str(session_id))


@app.delete("/v1/sessions/<session_id>", responses={204: {"description": "Erased"}, **ERROR_RESPONSES})
def handle_delete_session(session_id: SessionId) -> Response[str]:
    conversations().delete_session(principal(), str(session_id))
    return Response(status_code=204, body="")


@app.post("/v1/sessions/<session_id>/messages", responses={201: {"description": "Created"}, **ERROR_RESPONSES})
def handle_post_message(session_id: SessionId, message: MessageRequest) -> Response[str]:
    turn: Turn = conversations().post_message(principal(), str(session_id), message)
    return json_response(201, turn)


@app.get("/v1/sessions/<session_id>/messages", responses=ERROR_RESPONSES)
def handle_list_messages(session_id: SessionId, limit: PageSize = 50, cursor: Cursor = None) -> MessagePage:
    return conversations().list_messages(principal(), str(session_id), limit, cursor)


@app.delete("/v1/admin/users/<subject>", responses={204: {"description": "Erased"}, **ERROR_RESPONSES})
def handle_erase_user(subject: Subject) -> Response[str]:
    erased = conversations().erase_user(principal(), subject)
    logger.info("user erased by admin", extra={"sessions_erased": erased})
    return Response(status_code=204, body="")


# -- errors ---------------------------------------------------------------------------------
def _error(error: ChatbotError) -> Response[str]:
    headers = error_headers(error)
    content_type = headers.pop("Content-Type")
    return Response(
        status_code=error.status,
        content_type=content_type,
        body=error_body(error, app.current_event.request_context.request_id),
        headers=headers,
    )


@app.exception_handler(ChatbotError)  # type: ignore[untyped-decorator]
def handle_domain_error(error: ChatbotError) -> Response[str]:
    if error.status >= 500:
        logger.error("request failed", extra={"error_code": error.code})
    return _error(error)


@app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
def handle_schema_error(error: RequestValidationError) -> Response[str]:
    fields = sorted({".".join(str(p) for p in e.get("loc", ())[:2]) for e in error.errors()})
    logger.info("request rejected by schema", extra={"fields": fields})
    return _error(SchemaError())


@app.not_found
def handle_unknown_route(_error: RouteNotFound) -> Response[str]:
    return Response(404, content_types.APPLICATION_JSON, json.dumps({"message": "Not Found"}))
