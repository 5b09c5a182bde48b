"""Session-cleanup entry point, run by an EventBridge schedule."""

from __future__ import annotations

import functools
import time
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from chatbot_security.platform.aws_clients import client
from chatbot_security.platform.observability import logger, metrics, tracer
from chatbot_security.platform.settings import get_settings
from chatbot_security.storage.store import DynamoSessionStore
from session_cleanup.cleanup import ExpiredSessionStore, purge_expired_sessions


class CleanupIncompleteError(Exception):
    """Some sessions were claimed but not purged; the next run resumes them."""


@functools.cache
def default_store() -> ExpiredSessionStore:
    settings = get_settings()
    return DynamoSessionStore(
        lambda: client("dynamodb"), settings.require("table_name"), idle_seconds=settings.session_idle_seconds
    )


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
def lambda_handler(
    event: dict[str, Any], context: LambdaContext, store: ExpiredSessionStore | None = None
) -> dict[str, int]:
    result = purge_expired_sessions(store or default_store(), now=int(time.time()))
    metrics.add_metric(name="CleanupSessionsRemoved", unit=MetricUnit.Count, value=result.sessions_removed)
    metrics.add_metric(name="CleanupItemsRemoved", unit=MetricUnit.Count, value=result.items_removed)
    metrics.add_metric(name="CleanupFailures", unit=MetricUnit.Count, value=result.sessions_failed)
    logger.info("cleanup finished", extra={"result": result.__dict__})
    if result.sessions_failed:
        # Fail the invocation so Lambda retries it and, after the retries, sends it to the DLQ.
        raise CleanupIncompleteError(f"{result.sessions_failed} sessions could not be purged")
    return {"sessions_removed": result.sessions_removed, "items_removed": result.items_removed}
