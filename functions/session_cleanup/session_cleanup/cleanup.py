"""Cleanup logic: purge every session whose expiry has passed or that was deleted.

Sessions are found through the sparse ``by-expiry`` index (no table scan): one query per shard key
(``EXP#<shard>``) for the entries whose ``expires_at`` has passed, however long ago. Each session is
first claimed (a conditional update that fails for a live session), then its messages are deleted and
its session item last, so a crash at any point is resumed by the next run. DynamoDB TTL stays as the
backstop.

Migration: items written before the index was sharded carry the hourly key ``EXP#<hour>``; until a
turn or a delete rewrites them they are found by querying the hourly keys of the last LOOKBACK_HOURS
as before. An untouched item ends at most SESSION_IDLE_SECONDS after its last write, so that sweep can
go once every deployment has run the sharded code for longer than the idle lifetime plus LOOKBACK_HOURS
plus one TTL period (SESSION_TTL_SECONDS) as margin: with the defaults, three days
(docs/operations.md, "The expiry index").
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from chatbot_security.storage.records import expiry_buckets, legacy_expiry_bucket

LOOKBACK_HOURS = 48


class ExpiredSessionStore(Protocol):
    """The three store methods the cleanup uses (the DynamoDB store and the tests' fake have them)."""

    def expiring_session_ids(self, bucket: str, now: int) -> Iterator[str]: ...
    def claim_for_purge(self, session_id: str, now: int) -> bool: ...
    def purge_session(self, session_id: str) -> int: ...


@dataclass(frozen=True)
class CleanupResult:
    sessions_removed: int
    items_removed: int
    sessions_skipped: int
    sessions_failed: int


def swept_buckets(now: int, lookback_hours: int = LOOKBACK_HOURS) -> list[str]:
    """The index keys one sweep queries: every shard, then (migration only) the hourly keys."""
    legacy = [legacy_expiry_bucket(now - hours_ago * 3600) for hours_ago in range(lookback_hours, -1, -1)]
    return [*expiry_buckets(), *legacy]


def purge_expired_sessions(store: ExpiredSessionStore, now: int, lookback_hours: int = LOOKBACK_HOURS) -> CleanupResult:
    sessions = items = skipped = failed = 0
    for bucket in swept_buckets(now, lookback_hours):
        for session_id in list(store.expiring_session_ids(bucket, now)):
            if not store.claim_for_purge(session_id, now):
                skipped += 1  # became live again (a turn moved its expiry) or is already gone
                continue
            try:
                items += store.purge_session(session_id)
            except Exception:  # keep going; the claimed session is resumed by the next run
                failed += 1
                continue
            sessions += 1
    return CleanupResult(sessions, items, skipped, failed)
