"""HTTP routes of the chat API (docs/contract.md section 3). Each route parses, calls one logic method and
returns a model; the route declarations are also the source of the OpenAPI document (tools.openapi)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFound

from chat.resolver import app, client_ip, conversations, json_response, principal
from chat.routes import (
    AUTHORIZED,
    BEARER,
    WITH_BODY,
    Cursor,
    PageSize,
    SessionId,
    SessionPageSize,
    Subject,
    responses,
)
from chatbot_security.conversation.models import (
    AnonymousSession,
    MessagePage,
    MessageRequest,
    Session,
    SessionList,
    Turn,
    UsageReport,
)


# -- routes ---------------------------------------------------------------------------------
@app.post(
    "/v1/anonymous-sessions",
    status_code=201,
    summary="Start an anonymous session",
    description=(
        "No credentials. Answers 404 like an unknown route when anonymous access is disabled. At most "
        "ANON_SESSIONS_PER_HOUR (and SESSIONS_PER_HOUR) per source IP and hour (429 `rate_limited`)."
    ),
    responses=responses(201, "Created, with the session token", AnonymousSession, 429, *WITH_BODY),
)
def handle_create_anonymous_session() -> Response[str]:
    if not conversations().settings.allow_anonymous:
        raise RouteNotFound()  # indistinguishable from API Gateway's answer to an unknown route
    return json_response(201, conversations().create_anonymous_session(client_ip()))


@app.post(
    "/v1/sessions",
    status_code=201,
    summary="Start a session",
    security=BEARER,
    description=(
        "At most SESSIONS_PER_HOUR per user and hour (429 `rate_limited`), at most MAX_LIVE_SESSIONS live at "
        "once (409 `too_many_sessions`)."
    ),
    responses=responses(201, "Created", Session, *AUTHORIZED, 409, 429, *WITH_BODY),
)
def handle_create_session() -> Response[str]:
    return json_response(201, conversations().create_session(principal()))


@app.get(
    "/v1/sessions",
    summary="List your live sessions, oldest first",
    security=BEARER,
    responses=responses(
        200, "One page of your live sessions (an anonymous token: its one session)", SessionList, *AUTHORIZED
    ),
)
def handle_list_sessions(limit: SessionPageSize = 50, cursor: Cursor = None) -> Response[str]:
    return json_response(200, conversations().list_sessions(principal(), limit, cursor))


@app.get(
    "/v1/sessions/<session_id>",
    summary="Get a session",
    security=BEARER,
    responses=responses(200, "The session", Session, *AUTHORIZED, 404),
)
def handle_get_session(session_id: SessionId) -> Response[str]:
    return json_response(200, conversations().get_session(principal(), str(session_id)))


@app.delete(
    "/v1/sessions/<session_id>",
    status_code=204,
    summary="Delete a session and erase its messages",
    security=BEARER,
    responses=responses(204, "Erased", None, *AUTHORIZED, 404),
)
def handle_delete_session(session_id: SessionId) -> None:
    conversations().delete_session(principal(), str(session_id))


@app.post(
    "/v1/sessions/<session_id>/messages",
    status_code=201,
    summary="Send a message and get the model's answer",
    description=(
        "A repeated `client_message_id` in the same session returns the first answer again (201, same ids) "
        "without a second model call."
    ),
    security=BEARER,
    responses=responses(201, "The stored turn", Turn, *AUTHORIZED, 404, 409, 429, 502, 504, *WITH_BODY),
)
def handle_post_message(session_id: SessionId, message: MessageRequest) -> Response[str]:
    return json_response(201, conversations().post_message(principal(), str(session_id), message))


@app.get(
    "/v1/sessions/<session_id>/messages",
    summary="Read a session's messages, oldest first",
    security=BEARER,
    responses=responses(200, "One page of messages", MessagePage, *AUTHORIZED, 404),
)
def handle_list_messages(session_id: SessionId, limit: PageSize = 50, cursor: Cursor = None) -> Response[str]:
    return json_response(200, conversations().list_messages(principal(), str(session_id), limit, cursor))


@app.delete(
    "/v1/admin/users/<subject>",
    status_code=204,
    summary="Erase every session of a user (admin role, MFA)",
    security=BEARER,
    responses=responses(204, "Erased", None, *AUTHORIZED, 404),
)
def handle_erase_user(subject: Subject) -> None:
    conversations().erase_user(principal(), subject)  # audited by the logic, whatever the outcome


@app.get(
    "/v1/usage",
    summary="Your model tokens today",
    description=(
        "Tokens (input and output) used this UTC day and the limit that binds you: TOKENS_PER_DAY (an "
        "anonymous token: ANON_TOKENS_PER_DAY), or less when the deployment's DAILY_TOKEN_BUDGET has less left."
    ),
    security=BEARER,
    responses=responses(200, "Today's usage", UsageReport, *AUTHORIZED, 404),
)
def handle_get_usage() -> Response[str]:
    caller = principal()
    owner = conversations().owner(caller)
    if owner.kind == "anonymous":  # its session ended or was erased: nothing to report (404)
        conversations().get_session(caller, owner.session_id or "")
    return json_response(200, conversations().quotas.report(owner.key, owner.kind))
