"""Session-cleanup entry point: run by an EventBridge schedule, and by itself once per expiry shard."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from chatbot_security.platform.aws_clients import client
from chatbot_security.platform.observability import logger, metrics, tracer
from chatbot_security.platform.settings import get_settings
from chatbot_security.storage.store import DynamoSessionStore
from session_cleanup.cleanup import Deadline, ExpiredSessionStore
from session_cleanup.events import RefusedEvent, ShardRun, parse_event
from session_cleanup.fan_out import LambdaShardStarter, ShardStarter
from session_cleanup.runs import RunOutcome, scheduled_run, shard_run

# A run stops claiming sessions with this share of its time left: one session's purge (a few
# DynamoDB calls per 25 messages) fits many times over in the 30 s this leaves of a 300 s timeout.
STOP_FRACTION = 0.1
# Sessions purged side by side in one run: each waits on DynamoDB most of its time (docs/performance.md,
# "The cleanup"), and the client's connection pool (10) holds them all.
PURGE_WORKERS = 4


class CleanupIncompleteError(Exception):
    """Some sessions were claimed but not purged, or a shard run did not start; the next run resumes."""


@functools.cache
def default_store() -> ExpiredSessionStore:
    settings = get_settings()
    return DynamoSessionStore(
        lambda: client("dynamodb"), settings.require("table_name"), idle_seconds=settings.session_idle_seconds
    )


@functools.cache
def default_starter() -> ShardStarter | None:
    """The fan-out to this function's own name; None (purge in this process) where none is configured."""
    name = get_settings().cleanup_function
    return None if name is None else LambdaShardStarter(lambda: client("lambda"), name)


def deadline_of(context: LambdaContext, clock: Callable[[], float]) -> Deadline:
    remaining = context.get_remaining_time_in_millis() / 1000
    return Deadline(clock() + remaining * (1 - STOP_FRACTION), clock)


@logger.inject_lambda_context(log_event=False)
@metrics.log_metrics
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
def lambda_handler(
    event: dict[str, Any],
    context: LambdaContext,
    store: ExpiredSessionStore | None = None,
    starter: ShardStarter | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    try:
        run = parse_event(event)
    except RefusedEvent:
        metrics.add_metric(name="CleanupEventsRefused", unit=MetricUnit.Count, value=1)
        logger.warning("cleanup event refused")  # never the event itself: it came from outside
        raise
    deadline = deadline_of(context, clock)
    now = int(time.time())
    if isinstance(run, ShardRun):
        outcome = shard_run(store or default_store(), run, now, deadline, PURGE_WORKERS)
    else:
        outcome = scheduled_run(store or default_store(), starter or default_starter(), now, deadline, PURGE_WORKERS)
    return _report(outcome, run.shard if isinstance(run, ShardRun) else None)


def _report(outcome: RunOutcome, shard: str | None) -> dict[str, Any]:
    result = outcome.result
    metrics.add_metric(name="CleanupSessionsRemoved", unit=MetricUnit.Count, value=result.sessions_removed)
    metrics.add_metric(name="CleanupItemsRemoved", unit=MetricUnit.Count, value=result.items_removed)
    metrics.add_metric(name="CleanupFailures", unit=MetricUnit.Count, value=outcome.failures)
    if result.deadline_reached:
        metrics.add_metric(name="CleanupRunsCutShort", unit=MetricUnit.Count, value=1)
    details = {**result.__dict__, "shard": shard, "shards_started": outcome.shards_started}
    logger.info("cleanup finished", extra={"result": details})
    if outcome.failures:
        # Fail the invocation so Lambda retries it and, after the retries, sends it to the DLQ.
        raise CleanupIncompleteError(f"{outcome.failures} sessions or shard runs failed")
    answer: dict[str, Any] = {"sessions_removed": result.sessions_removed, "items_removed": result.items_removed}
    if shard is not None:
        answer["shard"] = shard
    elif outcome.shards_started:
        answer["shards_started"] = outcome.shards_started
    return answer
