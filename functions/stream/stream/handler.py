"""Stream function entry point (StreamFunction): the WebSocket API's four routes."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from chatbot_security.platform.observability import logger, metrics, tracer
from chatbot_security.platform.settings import get_settings
from stream import connect
from stream.dependencies import default_callbacks, default_connections, default_handoff
from stream.routes import StreamRoutes

OK = {"statusCode": 200}
# API Gateway answers a $connect whose integration does not return 2xx as a refused upgrade.
REFUSED = {"statusCode": 403}
FAILED = {"statusCode": 500}
# The codes the template's alarms count, as the chat function counts the same HTTP statuses.
_OUTCOME_METRICS = {
    "rate_limited": "RateLimited",
    "bad_request": "ValidationFailed",
    "payload_too_large": "ValidationFailed",
    "validation_error": "ValidationFailed",
    "service_unavailable": "DependencyErrors",
    "internal_error": "InternalErrors",
}


@logger.inject_lambda_context(correlation_id_path="requestContext.requestId", log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
def handler(event: dict[str, Any], context: LambdaContext, routes: StreamRoutes | None = None) -> dict[str, Any]:
    request_context = event.get("requestContext") or {}
    route = str(request_context.get("routeKey") or "")
    connection_id = str(request_context.get("connectionId") or "")
    request_id = str(request_context.get("requestId") or context.aws_request_id)
    try:
        return _route(routes or default_routes(), route, connection_id, request_id, event)
    except Exception as error:  # nothing to tell a client whose frame could not even be answered
        logger.error("frame not handled", extra={"error_type": type(error).__name__})
        return FAILED


def _route(
    routes: StreamRoutes, route: str, connection_id: str, request_id: str, event: dict[str, Any]
) -> dict[str, Any]:
    if route == "$connect":
        found = connect.connect_context(event)
        if found is None or not routes.connect(connection_id, found):
            logger.info("connection refused")
            metrics.add_metric(name="StreamConnectRefused", unit=MetricUnit.Count, value=1)
            return REFUSED
        return OK
    if route == "$disconnect":
        routes.disconnect(connection_id)
        return OK
    body, is_base64 = event.get("body"), bool(event.get("isBase64Encoded"))
    if route == "sendMessage":
        outcome = routes.send_message(connection_id, request_id, body, is_base64)
    else:
        outcome = routes.unknown_action(connection_id, request_id, body, is_base64)
    logger.info("frame handled", extra={"route": route if route == "sendMessage" else "$default", "outcome": outcome})
    if outcome in _OUTCOME_METRICS:
        metrics.add_metric(name=_OUTCOME_METRICS[outcome], unit=MetricUnit.Count, value=1)
    return OK


def default_routes() -> StreamRoutes:
    from stream.engine import default_engine  # the turn engine's collaborators, built on first use

    settings = get_settings()
    return StreamRoutes(
        connections=default_connections(),
        callbacks=default_callbacks(),
        engine=default_engine(),
        handoff=default_handoff(),
        max_message_chars=settings.max_message_chars,
        model_timeout_seconds=settings.model_timeout_seconds,
    )
