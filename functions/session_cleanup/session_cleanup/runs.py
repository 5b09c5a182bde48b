"""The cleanup's two runs: the scheduled one, which fans out one run per expiry shard that holds an
ended session (or, with no fan-out target, purges every shard itself), and a shard run, which purges
its one shard. An idle deployment so costs one invocation per period, not one per shard.

Either stops claiming sessions at its deadline and leaves the rest in the index for the next run.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatbot_security.platform.observability import logger
from session_cleanup.cleanup import (
    LOOKBACK_HOURS,
    CleanupResult,
    Deadline,
    ExpiredSessionStore,
    legacy_buckets,
    purge_buckets,
    swept_buckets,
)
from session_cleanup.events import ShardRun, shard_names
from session_cleanup.fan_out import ShardStarter


@dataclass(frozen=True)
class RunOutcome:
    result: CleanupResult
    shards_started: int = 0
    shards_not_started: int = 0

    @property
    def failures(self) -> int:
        return self.result.sessions_failed + self.shards_not_started


def scheduled_run(
    store: ExpiredSessionStore, starter: ShardStarter | None, now: int, deadline: Deadline, workers: int
) -> RunOutcome:
    """Start one run per shard that holds an ended session, then sweep the migration's hourly keys
    here; without ``starter`` (a local run with no fan-out target) purge every key in this process."""
    if starter is None:
        return RunOutcome(purge_buckets(store, swept_buckets(now, LOOKBACK_HOURS), now, deadline, workers))
    started = not_started = 0
    for shard in shard_names():
        run = ShardRun(shard)
        if not has_ended_sessions(store, run.bucket, now):
            continue  # an idle shard costs one empty query here, not an invocation
        try:
            starter.start(run)
        except Exception:  # the others still start; the failure fails this run (retry, then the DLQ)
            logger.exception("shard run not started", extra={"shard": shard})
            not_started += 1
            continue
        started += 1
    result = purge_buckets(store, legacy_buckets(now, LOOKBACK_HOURS), now, deadline, workers)
    return RunOutcome(result, started, not_started)


def has_ended_sessions(store: ExpiredSessionStore, bucket: str, now: int) -> bool:
    """Whether the shard key lists at least one ended session (the first page of its query only)."""
    return next(iter(store.expiring_session_ids(bucket, now)), None) is not None


def shard_run(store: ExpiredSessionStore, run: ShardRun, now: int, deadline: Deadline, workers: int) -> RunOutcome:
    """Purge the ended sessions of one shard key, and nothing else."""
    return RunOutcome(purge_buckets(store, [run.bucket], now, deadline, workers))
