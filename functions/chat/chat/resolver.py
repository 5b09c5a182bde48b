"""The chat API's one resolver and what every route reads from the request: the caller (the
authorizer's principal only), the client address, the service, and the JSON response. The route
modules (:mod:`chat.api`, :mod:`chat.stream_routes`, :mod:`chat.data_rights_routes`) register on it;
:mod:`chat.all_routes` imports them all."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import BaseModel

from chat import error_handlers
from chat.request_guard import parsed_body
from chatbot_security.conversation.conversations import Conversations
from chatbot_security.conversation.errors import ForbiddenError
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


error_handlers.register(app)
