"""HTTP routes of the chat API (docs/contract.md section 3). Each route parses, calls one logic method and
returns a model; the route declarations are also the source of the OpenAPI document (tools.openapi)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFound
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import BaseModel

from chat import error_handlers
from chat.request_guard import parsed_body
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
from chatbot_security.conversation.conversations import Conversations
from chatbot_security.conversation.errors import ForbiddenError
from chatbot_security.conversation.models import (
    AnonymousSession,
    MessagePage,
    MessageRequest,
    Session,
    SessionList,
    Turn,
)
from chatbot_security.identity.principal import Principal

# debug=False whatever POWERTOOLS_DEV says: in debug mode the resolver prints every event (bodies included)
# to stdout and answers unhandled errors with their traceback.
app = APIGatewayHttpResolver(enable_validation=True, debug=False, json_body_deserializer=parsed_body)


def reject_unknown_input(resolver: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[str]:
    """Unknown query parameters, and any JSON field on a route that takes no body, are a 422 (a route
    with a body model forbids unknown fields itself). Runs after the resolver has matched the route."""
    route = resolver.context.get("_route")
    declared = {parameter.alias for parameter in route.dependant.query_params} if route else set()
    problems = [{"type": "extra_forbidden", "loc": ("query", name)} for name in _query_names() - declared]
    if route is None or not route.dependant.body_params:
        problems += _body_problems()
    if problems:
        raise RequestValidationError(problems)
    return next_middleware(resolver)


def _query_names() -> set[str]:
    event = app.current_event.raw_event
    names = set(event.get("queryStringParameters") or ())
    if event.get("rawQueryString"):
        names.update(parse_qs(event["rawQueryString"], keep_blank_values=True))
    return names


def _body_problems() -> list[dict[str, Any]]:
    """A route without a body model accepts no body, an empty one or ``{}``; every field is unknown."""
    body = app.current_event.decoded_body
    if body is None or not body.strip():
        return []
    parsed = app.current_event.json_body  # parsed once, by the request guard
    if not isinstance(parsed, dict):
        return [{"type": "model_attributes_type", "loc": ("body",)}]
    return [{"type": "extra_forbidden", "loc": ("body", name)} for name in parsed]


app.use(middlewares=[reject_unknown_input])


def conversations() -> Conversations:
    service: Conversations = app.context["conversations"]
    return service


def json_response(status: int, model: BaseModel) -> Response[str]:
    """Our own models, serialised by pydantic-core: the documented response models (see ``responses``)
    without a second validation of what the code just built."""
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON, body=model.model_dump_json())


def client_ip() -> str:
    """The caller's address as the handler established it (CloudFront's viewer address behind a
    verified edge, else API Gateway's source address)."""
    address: str = app.context.get("client_ip") or app.current_event.request_context.http.source_ip
    return address


def principal() -> Principal:
    """The caller as established by the authorizer: the only identity this function trusts."""
    context = ((app.current_event.raw_event.get("requestContext") or {}).get("authorizer") or {}).get("lambda")
    try:
        return Principal.from_authorizer_context(context)
    except ValueError:
        raise ForbiddenError() from None


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


error_handlers.register(app)

# Routes kept in their own modules register on ``app`` here, once everything above is defined.
from chat import stream_routes  # noqa: E402, F401
