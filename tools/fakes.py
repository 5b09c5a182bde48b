"""In-memory fakes of the chat function's data access, KMS and rate limiter.

They keep the same guarantees as the DynamoDB store (conditional writes, one transaction per turn),
behind one lock, so the chat logic can be tested (and benchmarked) without AWS.
tests/integration/test_store_contract.py and test_rate_limiter_contract.py run the same cases against
these fakes and the DynamoDB ones: a difference between them fails there.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from chatbot_security.identity.identity_keys import IdentityKeys
from chatbot_security.platform.settings import Settings
from chatbot_security.privacy.crypto import DataKeys
from chatbot_security.storage.errors import (
    ChargeRefused,
    ConflictError,
    LiveLimitReached,
    RateLimitExceeded,
    TurnAlreadyClaimed,
)
from chatbot_security.storage.ratelimit import RateCharge, RateLimiter
from chatbot_security.storage.records import (
    DELETED,
    LIVE,
    PURGING,
    TURN_DONE,
    TURN_PENDING,
    MessageRecord,
    SessionRecord,
    TurnClaim,
    TurnRecord,
    expiry_bucket,
)
from chatbot_security.storage.usage import Reservation
from tools.usage_fake import InMemoryUsage


@dataclass
class InMemorySessionStore:
    """A :class:`chatbot_security.storage.store.SessionStore` in a dict, with the same write conditions."""

    sessions: dict[str, SessionRecord] = field(default_factory=dict)
    message_items: dict[str, dict[int, MessageRecord]] = field(default_factory=dict)
    turns: dict[tuple[str, str], TurnRecord] = field(default_factory=dict)
    counters: dict[tuple[str, str], int] = field(default_factory=dict)
    live: dict[str, int] = field(default_factory=dict)  # the owners' live-session counters
    idle_seconds: int = 1800
    calls: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    usage: InMemoryUsage = field(default_factory=InMemoryUsage)  # the token counters, under the same lock

    def __post_init__(self) -> None:
        self.usage.lock = self.lock

    # -- sessions ---------------------------------------------------------------------------
    def put_new_session(self, session: SessionRecord, live_limit: int | None = None) -> None:
        with self.lock:
            self.calls.append("put_new_session")
            if live_limit is not None and self.live.get(session.owner_key, 0) >= live_limit:
                raise LiveLimitReached()
            if session.session_id in self.sessions:
                raise ConflictError("exists")
            if live_limit is not None:
                self.live[session.owner_key] = self.live.get(session.owner_key, 0) + 1
            # The table keeps the creation time in milliseconds (from the seconds when none is given).
            created_ms = session.created_ms or session.created_at * 1000
            self.sessions[session.session_id] = replace(
                session, created_ms=created_ms, live_counted=live_limit is not None
            )
            self.message_items[session.session_id] = {}

    def drop_live_counter(self, owner_key: str) -> bool:
        with self.lock:
            self.calls.append("drop_live_counter")
            if self.live.get(owner_key, 0) > 0:
                return False
            self.live.pop(owner_key, None)
            return True

    def session_page(
        self, owner_key: str, now: int, after: tuple[int, str] | None, limit: int
    ) -> tuple[list[SessionRecord], bool]:
        with self.lock:
            self.calls.append("session_page")
            order = sorted(
                (s for s in self.sessions.values() if s.owner_key == owner_key and s.is_usable(now)),
                key=lambda s: (s.created_ms or s.created_at * 1000, s.session_id),
            )
            later = [s for s in order if after is None or (s.created_ms or s.created_at * 1000, s.session_id) > after]
            return [_as_listed(s) for s in later[:limit]], len(later) > limit

    def _uncount(self, session: SessionRecord) -> SessionRecord:
        """The caller holds the lock."""
        if session.live_counted and self.live.get(session.owner_key, 0) > 0:
            self.live[session.owner_key] -= 1
        return replace(session, live_counted=False)

    def get_session(self, session_id: str) -> SessionRecord | None:
        with self.lock:
            self.calls.append("get_session")
            return self.sessions.get(session_id)

    def sessions_of(self, owner_key: str) -> list[SessionRecord]:
        with self.lock:
            self.calls.append("sessions_of")
            return [_as_listed(s) for s in self.sessions.values() if s.owner_key == owner_key]

    def session_with_recent(self, session_id: str, limit: int) -> tuple[SessionRecord | None, list[MessageRecord]]:
        with self.lock:
            self.calls.append("session_with_recent")
            session = self.sessions.get(session_id)
            if session is None:
                return None, []
            items = self.message_items.get(session_id, {})
            recent = [items[seq] for seq in sorted(items)[-limit:]] if limit > 0 else []
            return session, recent

    # -- turns ------------------------------------------------------------------------------
    def claim_turn(
        self,
        claim: TurnClaim,
        session: SessionRecord,
        max_count_before: int,
        charge: RateCharge,
        reservation: Reservation | None = None,
    ) -> Reservation | None:
        with self.lock:
            self.calls.append("claim_turn")
            existing = self.turns.get((claim.session_id, claim.request_key))
            if existing is not None and not existing.is_abandoned(claim.now):
                raise TurnAlreadyClaimed(existing)
            current = self.sessions.get(claim.session_id)
            if (
                current is None
                or current.owner_key != session.owner_key
                or current.status != LIVE
                or current.expires_at <= claim.now
                or current.message_count > max_count_before
            ):
                raise ConflictError("session is full or ended")
            if self.counters.get((charge.pk, charge.sk), 0) >= charge.limit:
                raise ChargeRefused()
            held = self.usage.hold(reservation) if reservation is not None else None  # QuotaRefused: nothing written
            self.counters[(charge.pk, charge.sk)] = self.counters.get((charge.pk, charge.sk), 0) + 1
            self.turns[(claim.session_id, claim.request_key)] = TurnRecord(
                claim.request_key, claim.fingerprint, TURN_PENDING, claim.token, claim.lease_until, 0
            )
            return held

    def reserve_turn(self, charge: RateCharge, reservation: Reservation) -> Reservation:
        with self.lock:
            self.calls.append("reserve_turn")
            if self.counters.get((charge.pk, charge.sk), 0) >= charge.limit:
                raise ChargeRefused()
            held = self.usage.hold(reservation)
            self.counters[(charge.pk, charge.sk)] = self.counters.get((charge.pk, charge.sk), 0) + 1
            return held

    def get_turn(self, session_id: str, request_key: str) -> TurnRecord | None:
        with self.lock:
            self.calls.append("get_turn")
            return self.turns.get((session_id, request_key))

    def release_turn(self, claim: TurnClaim) -> None:
        with self.lock:
            self.calls.append("release_turn")
            existing = self.turns.get((claim.session_id, claim.request_key))
            if existing is not None and existing.token == claim.token and existing.state == TURN_PENDING:
                del self.turns[(claim.session_id, claim.request_key)]

    def append_turn(
        self,
        session: SessionRecord,
        messages: Sequence[MessageRecord],
        now: int,
        claim: TurnClaim | None = None,
        settlement: tuple[Reservation, int] | None = None,
    ) -> SessionRecord:
        with self.lock:
            self.calls.append("append_turn")
            current = self.sessions.get(session.session_id)
            if (
                current is None
                or current.owner_key != session.owner_key
                or current.status != LIVE
                or current.message_count != session.message_count
                or current.expires_at <= now
            ):
                raise ConflictError("turn was not written")
            if any(message.seq in self.message_items.get(session.session_id, {}) for message in messages):
                raise ConflictError("a message with this sequence number exists")
            if claim is not None:
                record = self.turns.get((claim.session_id, claim.request_key))
                if record is None or record.token != claim.token or record.state != TURN_PENDING:
                    raise ConflictError("claim lost")
                self.turns[(claim.session_id, claim.request_key)] = replace(
                    record, state=TURN_DONE, seq=messages[0].seq, lease_until=0
                )
            if settlement is not None:
                self.usage.lower(*settlement)
            updated = replace(
                current,
                message_count=current.message_count + len(messages),
                last_active_at=now,
                expires_at=min(current.absolute_expires_at, now + self.idle_seconds),
            )
            self.sessions[session.session_id] = updated
            for message in messages:
                self.message_items[session.session_id][message.seq] = message
            return updated

    def messages(self, session_id: str, after_seq: int, limit: int) -> tuple[list[MessageRecord], bool]:
        with self.lock:
            self.calls.append("messages")
            items = self.message_items.get(session_id, {})
            after = [items[seq] for seq in sorted(items) if seq > after_seq]
            return after[:limit], len(after) > limit

    # -- retention --------------------------------------------------------------------------
    def mark_deleted(self, session: SessionRecord, now: int) -> None:
        with self.lock:
            self.calls.append("mark_deleted")
            current = self.sessions.get(session.session_id)
            if current is None or current.owner_key != session.owner_key:
                raise ConflictError("session not deleted")
            self.sessions[session.session_id] = replace(self._uncount(current), status=DELETED, expires_at=now)

    def claim_for_purge(self, session_id: str, now: int) -> bool:
        with self.lock:
            self.calls.append("claim_for_purge")
            current = self.sessions.get(session_id)
            if current is None or (current.status == LIVE and current.expires_at > now):
                return False
            self.sessions[session_id] = replace(self._uncount(current), status=PURGING)
            return True

    def purge_session(self, session_id: str) -> int:
        with self.lock:
            self.calls.append("purge_session")
            removed = len(self.message_items.pop(session_id, {}))
            removed += len([key for key in self.turns if key[0] == session_id])
            self.turns = {key: value for key, value in self.turns.items() if key[0] != session_id}
            current = self.sessions.get(session_id)
            if current is None or current.status != PURGING:  # the session item goes only once claimed
                return removed
            del self.sessions[session_id]
            return removed + 1

    def expiring_session_ids(self, bucket: str, now: int) -> Iterator[str]:
        with self.lock:
            self.calls.append("expiring_session_ids")
            found = [s.session_id for s in self.sessions.values()
                     if expiry_bucket(s.session_id) == bucket and s.expires_at <= now]  # fmt: skip
        yield from found


def _as_listed(session: SessionRecord) -> SessionRecord:
    """A session as the owner index returns it: without the wrapped key and the counted flag."""
    return replace(session, wrapped_key=b"", live_counted=None)


class FakeKms:
    """generate_data_key / decrypt with the encryption context checked, and a call count."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._keys: dict[bytes, tuple[bytes, dict[str, str]]] = {}

    def generate_data_key(self, KeyId: str, KeySpec: str, EncryptionContext: dict[str, str]) -> dict[str, Any]:  # noqa: N803
        self.calls.append("GenerateDataKey")
        plaintext, wrapped = os.urandom(32), os.urandom(64)
        self._keys[wrapped] = (plaintext, dict(EncryptionContext))
        return {"Plaintext": plaintext, "CiphertextBlob": wrapped}

    def decrypt(self, CiphertextBlob: bytes, KeyId: str, EncryptionContext: dict[str, str]) -> dict[str, Any]:  # noqa: N803
        self.calls.append("Decrypt")
        plaintext, context = self._keys[CiphertextBlob]
        if context != EncryptionContext:
            raise ValueError("InvalidCiphertextException")
        return {"Plaintext": plaintext}


class InMemoryRateLimiter(RateLimiter):
    """Counts in the fake store's counters, like the DynamoDB limiter counts in the table."""

    def __init__(self, store: InMemorySessionStore, clock: Any = None) -> None:
        import time

        super().__init__(lambda: None, "in-memory", clock or time.time)
        self._store = store

    def apply(self, charge: RateCharge) -> None:
        with self._store.lock:
            self._store.calls.append("rate_limit")
            key = (charge.pk, charge.sk)
            if self._store.counters.get(key, 0) >= charge.limit:
                raise RateLimitExceeded(charge.retry_after_seconds)
            self._store.counters[key] = self._store.counters.get(key, 0) + 1

    def forget(self, scope: str, key: str) -> int:
        with self._store.lock:
            self._store.calls.append("rate_forget")
            pk = f"RATE#{scope}#{key}"
            gone = [counter for counter in self._store.counters if counter[0] == pk]
            for counter in gone:
                del self._store.counters[counter]
            return len(gone)


def in_memory_conversations(model: Any, settings: Settings | None = None, **overrides: Any) -> Any:
    """A Conversations service on the fakes above (echo model unless told otherwise)."""
    from chatbot_security.conversation.conversations import Conversations
    from chatbot_security.conversation.quotas import Quotas

    store = overrides.pop("store", None) or InMemorySessionStore()
    kms = overrides.pop("kms", None) or FakeKms()
    settings = settings or Settings.model_validate({"OIDC_ISSUER": "https://issuer.example.test"})
    if "clock" in overrides:
        store.usage.clock = overrides["clock"]
    return Conversations(
        settings=settings,
        store=store,
        data_keys=DataKeys(lambda: kms, "alias/fake"),
        identity=IdentityKeys("pepper-for-tests"),
        model=model,
        rate_limiter=InMemoryRateLimiter(store),
        session_token_key=lambda: b"k" * 32,
        quotas=Quotas(settings, store.usage),
        **overrides,
    )
