"""HTTP routes of the chat API (docs/contract.md section 3). Each route parses, calls one logic method and
returns a model; the route declarations are also the source of the OpenAPI document (chat.openapi)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any
from urllib.parse import parse_qs

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFound
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import UUID4, BaseModel

from chat.http_responses import error_body, error_headers
from chatbot_security.conversation.conversations import Conversations
from chatbot_security.conversation.errors import ChatbotError, ForbiddenError, SchemaError
from chatbot_security.conversation.models import (
    AnonymousSession,
    ErrorBody,
    GatewayError,
    MessagePage,
    MessageRequest,
    Session,
    SessionList,
    Turn,
    UsageReport,
)
from chatbot_security.conversation.quotas import Quotas
from chatbot_security.conversation.schema_errors import describe
from chatbot_security.identity.principal import Principal
from chatbot_security.platform.observability import logger

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

# Path parameters holding characters the resolver cannot route (see handle_unknown_route).
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
    429: (
        "`rate_limited` (RATE_LIMIT_PER_MINUTE, SESSIONS_PER_HOUR, ANON_SESSIONS_PER_HOUR) or `quota_exceeded` "
        "(the daily token quota or the deployment's daily token budget); see the Retry-After header (seconds)"
    ),
    500: "Internal error",
    502: "The model provider failed",
    503: "DynamoDB, KMS or Secrets Manager is throttled or failing; retry after Retry-After seconds",
    504: "The model provider timed out",
}
_ERROR_MODELS: dict[int, Any] = {401: GatewayError, 403: ErrorBody | GatewayError}
_AUTHORIZED = (401, 403)
_WITH_BODY = (400, 413, 415)


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


# debug=False whatever POWERTOOLS_DEV says: in debug mode the resolver prints every event (bodies included)
# to stdout and answers unhandled errors with their traceback.
app = APIGatewayHttpResolver(enable_validation=True, debug=False)


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
    parsed = json.loads(body)  # the request guard has already refused anything that is not JSON
    if not isinstance(parsed, dict):
        return [{"type": "model_attributes_type", "loc": ("body",)}]
    return [{"type": "extra_forbidden", "loc": ("body", name)} for name in parsed]


app.use(middlewares=[reject_unknown_input])


def conversations() -> Conversations:
    service: Conversations = app.context["conversations"]
    return service


def quotas() -> Quotas:
    service: Quotas = app.context["quotas"]
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
    responses=responses(201, "Created, with the session token", AnonymousSession, 429, *_WITH_BODY),
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
    responses=responses(201, "Created", Session, *_AUTHORIZED, 409, 429, *_WITH_BODY),
)
def handle_create_session() -> Response[str]:
    return json_response(201, conversations().create_session(principal()))


@app.get(
    "/v1/sessions",
    summary="List your live sessions, oldest first",
    security=BEARER,
    responses=responses(
        200, "One page of your live sessions (an anonymous token: its one session)", SessionList, *_AUTHORIZED
    ),
)
def handle_list_sessions(limit: SessionPageSize = 50, cursor: Cursor = None) -> Response[str]:
    return json_response(200, conversations().list_sessions(principal(), limit, cursor))


@app.get(
    "/v1/sessions/<session_id>",
    summary="Get a session",
    security=BEARER,
    responses=responses(200, "The session", Session, *_AUTHORIZED, 404),
)
def handle_get_session(session_id: SessionId) -> Response[str]:
    return json_response(200, conversations().get_session(principal(), str(session_id)))


@app.delete(
    "/v1/sessions/<session_id>",
    status_code=204,
    summary="Delete a session and erase its messages",
    security=BEARER,
    responses=responses(204, "Erased", None, *_AUTHORIZED, 404),
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
    responses=responses(201, "The stored turn", Turn, *_AUTHORIZED, 404, 409, 429, 502, 504, *_WITH_BODY),
)
def handle_post_message(session_id: SessionId, message: MessageRequest) -> Response[str]:
    return json_response(201, conversations().post_message(principal(), str(session_id), message))


@app.get(
    "/v1/sessions/<session_id>/messages",
    summary="Read a session's messages, oldest first",
    security=BEARER,
    responses=responses(200, "One page of messages", MessagePage, *_AUTHORIZED, 404),
)
def handle_list_messages(session_id: SessionId, limit: PageSize = 50, cursor: Cursor = None) -> Response[str]:
    return json_response(200, conversations().list_messages(principal(), str(session_id), limit, cursor))


@app.delete(
    "/v1/admin/users/<subject>",
    status_code=204,
    summary="Erase every session of a user (admin role, MFA)",
    security=BEARER,
    responses=responses(204, "Erased", None, *_AUTHORIZED, 404),
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
    responses=responses(200, "Today's usage", UsageReport, *_AUTHORIZED, 404),
)
def handle_get_usage() -> Response[str]:
    caller = principal()
    if caller.kind == "anonymous":  # its session ended or was erased: nothing to report (404)
        conversations().get_session(caller, caller.session_id or "")
    owner = conversations().identity.owner_of(caller)
    return json_response(200, quotas().report(owner, caller.kind))


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


# What a schema error may name in the logs: where the fault is and the API's own fields and
# parameters. Any other name (an unknown JSON key, up to MAX_BODY_BYTES long) was chosen by the
# caller, so it is only counted.
_LOCATIONS = frozenset({"body", "query", "path"})
KNOWN_FIELDS = frozenset({*MessageRequest.model_fields, "session_id", "subject", "limit", "cursor"})


def _names_only_known(location: tuple[Any, ...]) -> bool:
    if not location or location[0] not in _LOCATIONS:
        return False
    return len(location) == 1 or location[1] in KNOWN_FIELDS


def loggable_schema_faults(errors: Sequence[Any]) -> tuple[list[str], int]:
    """The known fields at fault (``body.content``), and how many faults name anything else."""
    known: set[str] = set()
    unknown = 0
    for fault in errors:
        location = tuple(fault.get("loc", ()))[:2]
        if fault.get("type") != "extra_forbidden" and _names_only_known(location):
            known.add(".".join(location))
        else:
            unknown += 1
    return sorted(known), unknown


@app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
def handle_schema_error(error: RequestValidationError) -> Response[str]:
    fields, unknown_fields = loggable_schema_faults(error.errors())
    logger.info("request rejected by schema", extra={"fields": fields, "unknown_fields": unknown_fields})
    return _error(SchemaError(describe(error.errors())))


@app.not_found
def handle_unknown_route(_not_found: RouteNotFound) -> Response[str]:
    if app.current_event.raw_event.get("routeKey") in ROUTES_WITH_PARAMETERS:
        # API Gateway matched one of our routes, but a path parameter holds characters the resolver does
        # not route (API Gateway hands the path over percent-decoded: `"`, `/`, `?`, `#`, controls): a
        # schema violation of that parameter, like a session id that is not a UUID.
        route_key = app.current_event.raw_event["routeKey"]
        parameter = "subject" if "{subject}" in route_key else "session_id"
        return _error(SchemaError(f"{parameter}: {UNROUTABLE_RULES[parameter]}"))
    return Response(404, content_types.APPLICATION_JSON, json.dumps({"message": "Not Found"}))
