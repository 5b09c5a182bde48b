"""What the table holds: record types, statuses and the key schema (docs/architecture.md)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime

LIVE = "live"
DELETED = "deleted"
PURGING = "purging"
# Sorts after every "MSG#..." key, so one reverse Query returns the session item and its latest messages.
META = "SESSION"
MESSAGE_PREFIX = "MSG#"
# Idempotency records of message posts (one per client_message_id); sorts before every "MSG#" key.
TURN_PREFIX = "IDEM#"
TURN_PENDING = "pending"
TURN_DONE = "done"
# The per-owner counter of live sessions (MAX_LIVE_SESSIONS): one item per owner, changed in the same
# transaction as the session item that it counts, so that it holds under concurrent creates.
LIVE_PREFIX = "LIVE#"
LIVE_SK = "COUNT"
# A session item counted by its owner's live counter carries this attribute until it is uncounted
# (deleted, erased or claimed for purging), which happens exactly once.
COUNTED = "live_counted"
# The counter expires a day after the newest session it counts could have ended.
LIVE_COUNTER_MARGIN_SECONDS = 86400
MAX_SEQ = 99_999_999
BATCH_SIZE = 25
MAX_BATCH_ATTEMPTS = 8


@dataclass(frozen=True)
class SessionRecord:
    session_id: str
    owner_key: str
    created_at: int  # epoch seconds
    absolute_expires_at: int
    expires_at: int  # min(absolute expiry, last activity + idle lifetime)
    last_active_at: int
    message_count: int
    status: str
    wrapped_key: bytes
    created_ms: int = 0  # creation time in milliseconds: the listing order (0 means created_at * 1000)
    # Counted by its owner's live counter: True or False, or None when unknown (read from the owner index,
    # which does not project it).
    live_counted: bool | None = False

    def is_usable(self, now: int) -> bool:
        return self.status == LIVE and now < self.expires_at


@dataclass(frozen=True)
class MessageRecord:
    session_id: str
    seq: int
    message_id: str
    role: str
    created_at: int  # epoch milliseconds
    content: bytes  # ciphertext
    moderated: bool = False  # bound to the ciphertext like the fields above
    interrupted: bool = False
    tokens: tuple[int, int] | None = None  # an answer's model usage: input and output tokens


@dataclass(frozen=True)
class TurnClaim:
    """A post's claim on its client_message_id, written before the model is called."""

    session_id: str
    request_key: str  # the client_message_id
    fingerprint: str  # keyed hash of the request content: a reused id with other content is refused
    token: str  # this attempt's own id: only it may complete or release the claim
    now: int
    lease_until: int  # after this, a retry may take over a claim whose holder died
    ttl: int


@dataclass(frozen=True)
class TurnRecord:
    request_key: str
    fingerprint: str
    state: str  # TURN_PENDING or TURN_DONE
    token: str
    lease_until: int
    seq: int  # sequence number of the turn's user message once done (its reply is seq + 1)

    def is_done(self) -> bool:
        return self.state == TURN_DONE

    def is_abandoned(self, now: int) -> bool:
        return self.state == TURN_PENDING and self.lease_until <= now


def rfc3339(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# The `by-expiry` index is spread over EXPIRY_SHARDS partition keys, `EXP#<shard>` with the shard taken
# from a hash of the session id, because every turn rewrites its session's index entry (the sort key
# `expires_at` moves): under one key all sessions shared one index partition (1,000 write units/s, about
# 500 turns/s). 16 shards keep each key at half that limit at 100,000 chatters (4,000 turns/s, 2 index
# write units each: 500 per shard), and the cleanup pays 16 queries a sweep (docs/performance.md).
EXPIRY_SHARDS = 16
EXPIRY_PREFIX = "EXP#"


def expiry_shard(session_id: str) -> int:
    digest = hashlib.sha256(session_id.encode()).digest()
    return int.from_bytes(digest[:4], "big") % EXPIRY_SHARDS


def expiry_bucket(session_id: str) -> str:
    """The session's key in the expiry index: fixed for the session's life, so a turn that moves the
    expiry changes only the index's sort key."""
    return f"{EXPIRY_PREFIX}{expiry_shard(session_id):02d}"


def expiry_buckets() -> list[str]:
    """Every key of the expiry index the cleanup queries: one per shard."""
    return [f"{EXPIRY_PREFIX}{shard:02d}" for shard in range(EXPIRY_SHARDS)]


def legacy_expiry_bucket(epoch_seconds: int) -> str:
    """The earlier key, `EXP#<hour of the expiry>` (UTC): items written before the sharded key still
    carry it until their next turn or delete rewrites it. Migration only: remove with the cleanup's
    legacy sweep (docs/operations.md, "The expiry index")."""
    return EXPIRY_PREFIX + time.strftime("%Y-%m-%dT%H", time.gmtime(epoch_seconds))


def session_pk(session_id: str) -> str:
    return f"SESSION#{session_id}"


def message_sk(seq: int) -> str:
    return f"{MESSAGE_PREFIX}{seq:08d}"


def turn_sk(request_key: str) -> str:
    return f"{TURN_PREFIX}{request_key}"


def live_counter_pk(owner_key: str) -> str:
    return f"{LIVE_PREFIX}{owner_key}"
