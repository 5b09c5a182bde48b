"""Chat function entry point: guard the request, resolve the route, secure the response."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from chat.all_routes import app
from chat.data_rights_routes import handle_export_my_data  # noqa: F401  (registers the data-rights routes)
from chat.dependencies import default_conversations
from chat.http_responses import error_response, secure
from chat.request_guard import check_json_body
from chatbot_security.conversation.conversations import Conversations
from chatbot_security.conversation.errors import ForbiddenError
from chatbot_security.conversation.failures import as_chatbot_error
from chatbot_security.identity import edge
from chatbot_security.platform.observability import logger, metrics, tracer
from chatbot_security.platform.settings import get_settings


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
def lambda_handler(
    event: dict[str, Any],
    context: LambdaContext,
    conversations: Conversations | None = None,
    origin: edge.OriginVerifier | None = None,
) -> dict[str, Any]:
    response = _handle(event, context, conversations, origin)
    _count_outcome(int(response["statusCode"]))
    return response


def _handle(
    event: dict[str, Any],
    context: LambdaContext,
    conversations: Conversations | None,
    origin: edge.OriginVerifier | None,
) -> dict[str, Any]:
    request_id = str((event.get("requestContext") or {}).get("requestId") or context.aws_request_id)
    try:
        settings = get_settings()
        origin_verified = _check_origin(event, settings.edge_enabled, origin)
        check_json_body(event, settings.max_body_bytes)
        app.append_context(  # type: ignore[no-untyped-call]
            conversations=conversations or default_conversations(),
            client_ip=edge.client_ip(event, origin_verified),
        )
        response: dict[str, Any] = app.resolve(event, context)
    except Exception as error:  # a check before the resolver failed: the same error path, never a stack trace
        return error_response(as_chatbot_error(error), request_id)
    return secure(response)


def _check_origin(event: dict[str, Any], edge_enabled: bool, origin: edge.OriginVerifier | None) -> bool:
    """With the edge on, refuse (403) a request that did not come through CloudFront, on every route:
    the anonymous-session route has no authorizer, and a cached authorizer allow must not serve a
    direct call either. Returns whether the origin header was verified."""
    if not edge_enabled:
        return False
    if not (origin or edge.default_verifier()).is_valid(event.get("headers")):
        logger.info("origin header rejected")
        metrics.add_metric(name="OriginRejected", unit=MetricUnit.Count, value=1)
        raise ForbiddenError()
    return True


def _count_outcome(status: int) -> None:
    """Count the outcomes the template's alarms watch (the metric names are part of that contract)."""
    if status == 429:
        metrics.add_metric(name="RateLimited", unit=MetricUnit.Count, value=1)
    elif status in {400, 413, 415, 422}:
        metrics.add_metric(name="ValidationFailed", unit=MetricUnit.Count, value=1)
    elif status in {502, 504}:
        metrics.add_metric(name="ModelErrors", unit=MetricUnit.Count, value=1)
    elif status == 503:
        metrics.add_metric(name="DependencyErrors", unit=MetricUnit.Count, value=1)
    elif status >= 500:
        metrics.add_metric(name="InternalErrors", unit=MetricUnit.Count, value=1)
