"""The chat function's one error path: every failure inside the resolver becomes its response here.

Domain errors, schema errors, unknown routes and unexpected exceptions all go through
:func:`chatbot_security.conversation.failures.as_chatbot_error` (which logs the 5xx ones once) and
leave as the contract's error body with the security headers. ``handler.py`` uses the same
function for the few checks that run before the resolver (origin header, request guard).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFound
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from chat.http_responses import error_body, error_headers
from chat.routes import ROUTES_WITH_PARAMETERS, UNROUTABLE_RULES
from chatbot_security.conversation.errors import ChatbotError, SchemaError
from chatbot_security.conversation.failures import as_chatbot_error
from chatbot_security.conversation.models import MessageRequest
from chatbot_security.conversation.schema_errors import describe
from chatbot_security.platform.observability import logger

# What a schema error may name in the logs: where the fault is and the API's own fields and
# parameters. Any other name (an unknown JSON key, up to MAX_BODY_BYTES long) was chosen by the
# caller, so it is only counted.
_LOCATIONS = frozenset({"body", "query", "path"})
KNOWN_FIELDS = frozenset({*MessageRequest.model_fields, "session_id", "subject", "limit", "cursor"})


def register(app: APIGatewayHttpResolver) -> None:
    """Install the error handlers on ``app``; the most specific handler matches first."""

    def respond(error: ChatbotError) -> Response[str]:
        headers = error_headers(error)
        content_type = headers.pop("Content-Type")
        request_id = app.current_event.request_context.request_id
        return Response(error.status, content_type, error_body(error, request_id), headers)

    @app.exception_handler(Exception)  # type: ignore[untyped-decorator]
    def handle_failure(error: Exception) -> Response[str]:
        return respond(as_chatbot_error(error))

    @app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
    def handle_schema_error(error: RequestValidationError) -> Response[str]:
        fields, unknown_fields = loggable_schema_faults(error.errors())
        logger.info("request rejected by schema", extra={"fields": fields, "unknown_fields": unknown_fields})
        return respond(SchemaError(describe(error.errors())))

    @app.not_found
    def handle_unknown_route(_not_found: RouteNotFound) -> Response[str]:
        route_key = app.current_event.raw_event.get("routeKey")
        if route_key in ROUTES_WITH_PARAMETERS:
            # API Gateway matched one of our routes, but a path parameter holds characters the resolver
            # does not route (API Gateway hands the path over percent-decoded: `"`, `/`, `?`, `#`,
            # controls): a schema violation of that parameter, like a session id that is not a UUID.
            parameter = "subject" if "{subject}" in route_key else "session_id"
            return respond(SchemaError(f"{parameter}: {UNROUTABLE_RULES[parameter]}"))
        return Response(404, content_types.APPLICATION_JSON, json.dumps({"message": "Not Found"}))


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
