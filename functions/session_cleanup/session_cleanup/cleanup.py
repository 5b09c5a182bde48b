"""Cleanup logic: purge every session whose expiry has passed or that was deleted.

Sessions are found through the sparse ``by-expiry`` index (no table scan): one query per shard key
(``EXP#<shard>``) for the entries whose ``expires_at`` has passed, however long ago. Each session is
first claimed (a conditional update that fails for a live session), then its messages are deleted and
its session item last, so a crash at any point is resumed by the next run. DynamoDB TTL stays as the
backstop.

A run stops taking new sessions once its :class:`Deadline` has passed (the Lambda timeout less a
margin) and leaves the rest of its keys to the next run: what is left is still in the index.

Migration: items written before the index was sharded carry the hourly key ``EXP#<hour>``; until a
turn or a delete rewrites them they are found by querying the hourly keys of the last LOOKBACK_HOURS
as before. An untouched item ends at most SESSION_IDLE_SECONDS after its last write, so that sweep can
go once every deployment has run the sharded code for longer than the idle lifetime plus LOOKBACK_HOURS
plus one TTL period (SESSION_TTL_SECONDS) as margin: with the defaults, three days
(docs/operations.md, "The expiry index").
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from chatbot_security.storage.records import expiry_buckets, legacy_expiry_bucket

LOOKBACK_HOURS = 48


class ExpiredSessionStore(Protocol):
    """The three store methods the cleanup uses (the DynamoDB store and the tests' fake have them)."""

    def expiring_session_ids(self, bucket: str, now: int) -> Iterator[str]: ...
    def claim_for_purge(self, session_id: str, now: int) -> bool: ...
    def purge_session(self, session_id: str) -> int: ...


@dataclass(frozen=True)
class Deadline:
    """The moment a run stops claiming sessions, on ``clock`` (monotonic seconds; injected in tests)."""

    ends_at: float
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def never(cls) -> Deadline:
        return cls(math.inf)

    def passed(self) -> bool:
        return self.clock() >= self.ends_at


@dataclass(frozen=True)
class CleanupResult:
    sessions_removed: int
    items_removed: int
    sessions_skipped: int
    sessions_failed: int
    deadline_reached: bool = False  # sessions may be left for the next run


def legacy_buckets(now: int, lookback_hours: int = LOOKBACK_HOURS) -> list[str]:
    """The hourly keys of the look-back (migration only), oldest first."""
    return [legacy_expiry_bucket(now - hours_ago * 3600) for hours_ago in range(lookback_hours, -1, -1)]


def swept_buckets(now: int, lookback_hours: int = LOOKBACK_HOURS) -> list[str]:
    """The index keys one whole sweep queries: every shard, then (migration only) the hourly keys."""
    return [*expiry_buckets(), *legacy_buckets(now, lookback_hours)]


def purge_expired_sessions(store: ExpiredSessionStore, now: int, lookback_hours: int = LOOKBACK_HOURS) -> CleanupResult:
    """One whole sweep in this process, without a deadline."""
    return purge_buckets(store, swept_buckets(now, lookback_hours), now, Deadline.never())


@dataclass
class _Tally:
    sessions: int = 0
    items: int = 0
    skipped: int = 0
    failed: int = 0
    deadline_reached: bool = False
    query_error: Exception | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def purge_buckets(
    store: ExpiredSessionStore, buckets: Iterable[str], now: int, deadline: Deadline, workers: int = 1
) -> CleanupResult:
    """Purge the ended sessions of ``buckets`` until ``deadline``, ``workers`` sessions at a time.

    The ids are read page by page as the purge goes (claiming changes no index key, and a purged
    session leaves the index, so the query's pages stay valid); each id is purged by exactly one worker.
    """
    tally = _Tally()
    ids = _ids(store, buckets, now)
    taking = threading.Lock()  # the id generator is not thread-safe

    def next_id() -> str | None:
        with taking:
            if tally.deadline_reached or tally.query_error is not None:
                return None
            if deadline.passed():
                tally.deadline_reached = True
                return None
            try:
                return next(ids, None)
            except Exception as error:  # the index query failed: stop, and fail the run below
                tally.query_error = error
                return None

    def work() -> None:
        while (session_id := next_id()) is not None:
            _purge_one(store, session_id, now, tally)

    if workers <= 1:
        work()
    else:
        threads = [threading.Thread(target=work, name=f"purge-{n}", daemon=True) for n in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    if tally.query_error is not None:
        raise tally.query_error
    return CleanupResult(tally.sessions, tally.items, tally.skipped, tally.failed, tally.deadline_reached)


def _ids(store: ExpiredSessionStore, buckets: Iterable[str], now: int) -> Iterator[str]:
    for bucket in buckets:
        yield from store.expiring_session_ids(bucket, now)


def _purge_one(store: ExpiredSessionStore, session_id: str, now: int, tally: _Tally) -> None:
    try:
        claimed = store.claim_for_purge(session_id, now)
    except Exception:  # keep going; the session is still in the index for the next run
        with tally.lock:
            tally.failed += 1
        return
    if not claimed:
        with tally.lock:
            tally.skipped += 1  # became live again (a turn moved its expiry) or is already gone
        return
    try:
        items = store.purge_session(session_id)
    except Exception:  # keep going; the claimed session is resumed by the next run
        with tally.lock:
            tally.failed += 1
        return
    with tally.lock:
        tally.sessions += 1
        tally.items += items
