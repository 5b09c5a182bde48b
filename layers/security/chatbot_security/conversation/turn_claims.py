"""Idempotency of message posts: the claim on a ``client_message_id``, waiting for a claim in flight,
replaying a finished turn, and releasing a claim whose turn failed.

"The same message" means the same masked content, exactly (code point for code point): the
idempotency record keeps only a keyed hash of it (docs/api.md), never the text.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from chatbot_security.conversation.errors import (
    IdempotencyConflictError,
    ModelTimeoutError,
    QuotaExceededError,
    RateLimitedError,
)
from chatbot_security.conversation.models import Turn
from chatbot_security.conversation.owner import Owner, Ownership
from chatbot_security.conversation.ports import ConversationStore
from chatbot_security.conversation.views import message_view
from chatbot_security.identity.identity_keys import IdentityKeys
from chatbot_security.platform.observability import logger
from chatbot_security.platform.settings import Settings
from chatbot_security.storage.errors import ChargeRefused, ConflictError, TurnAlreadyClaimed
from chatbot_security.storage.ratelimit import RateCharge
from chatbot_security.storage.records import MessageRecord, SessionRecord, TurnClaim, TurnRecord
from chatbot_security.storage.usage import QuotaRefused, Reservation

MAX_CLAIM_ATTEMPTS = 3
# A claim outlives any attempt that holds it (the model's time budget, twice, plus the writes).
LEASE_MARGIN_SECONDS = 10
POLL_FIRST_SECONDS = 0.1
POLL_MAX_SECONDS = 1.0


class Loaded(NamedTuple):
    """The session, its recent messages and its data key, as read when the turn was claimed."""

    session: SessionRecord
    recent: list[MessageRecord]
    key: bytes


@dataclass(frozen=True)
class ClaimedTurn:
    """A turn that passed every check before the model call; what a worker needs to finish it.

    ``content`` is the caller's message, already masked. ``loaded`` is kept only in the process
    that claimed the turn; another process reads the session again.
    """

    owner: Owner
    session_id: str
    content: str
    claim: TurnClaim | None
    loaded: Loaded | None = None
    reservation: Reservation | None = None  # the tokens it holds (docs/api.md, "Token quotas")

    def to_event(self) -> dict[str, Any]:
        claim = self.claim
        return {
            "owner": self.owner.to_json(),
            "session_id": self.session_id,
            "content": self.content,
            "reservation": None if self.reservation is None else self.reservation.to_json(),
            "claim": None if claim is None else {
                "request_key": claim.request_key, "fingerprint": claim.fingerprint, "token": claim.token,
                "now": claim.now, "lease_until": claim.lease_until, "ttl": claim.ttl,
            },
        }  # fmt: skip

    @classmethod
    def from_event(cls, event: Any) -> ClaimedTurn:
        """The claimed turn an event carries; ValueError when the event is not one."""
        if not isinstance(event, dict):
            raise ValueError("not a claimed turn")
        session_id, content, claim = event.get("session_id"), event.get("content"), event.get("claim")
        if not isinstance(session_id, str) or not isinstance(content, str):
            raise ValueError("not a claimed turn")
        turn_claim = None
        if claim is not None:
            if not isinstance(claim, dict):
                raise ValueError("not a claimed turn")
            try:
                turn_claim = TurnClaim(
                    session_id, str(claim["request_key"]), str(claim["fingerprint"]), str(claim["token"]),
                    int(claim["now"]), int(claim["lease_until"]), int(claim["ttl"]),
                )  # fmt: skip
            except (KeyError, TypeError) as error:
                raise ValueError("not a claimed turn") from error
        reservation = Reservation.from_json(event.get("reservation"))  # a turn is never answered unaccounted
        return cls(Owner.from_json(event.get("owner")), session_id, content, turn_claim, reservation=reservation)


@dataclass
class TurnReplays:
    settings: Settings
    store: ConversationStore
    identity: IdentityKeys
    ownership: Ownership
    require_room: Callable[[SessionRecord], None]
    clock: Callable[[], float]
    new_id: Callable[[], str]
    sleep: Callable[[float], None]

    def claim(
        self,
        owner: Owner,
        session: SessionRecord,
        key: bytes,
        request: tuple[str, str],
        charge: RateCharge,
        *,
        reservation: Reservation,
    ) -> tuple[TurnClaim, Reservation] | Turn:
        """Claim ``request_key`` for this post and hold its tokens, or return the turn an earlier post
        with it produced (which costs no tokens).

        ``request`` is the client_message_id and the masked content.
        """
        session_id, request_key = session.session_id, request[0]
        fingerprint = self.identity.request_fingerprint(session_id, request_key, request[1])
        lease_seconds = int(2 * self.settings.model_timeout_seconds) + LEASE_MARGIN_SECONDS
        for _attempt in range(MAX_CLAIM_ATTEMPTS):
            now = int(self.clock())
            claim = TurnClaim(session_id, request_key, fingerprint, self.new_id(), now, now + lease_seconds,
                              ttl=session.absolute_expires_at)  # fmt: skip
            try:
                held = self.store.claim_turn(
                    claim, session, self.settings.max_messages_per_session - 2, charge, reservation
                )
            except ChargeRefused:
                raise RateLimitedError(retry_after_seconds=charge.retry_after_seconds) from None
            except QuotaRefused as refused:
                raise QuotaExceededError(refused.retry_after_seconds) from None
            except ConflictError:
                self.require_room(self.ownership.owned_session(owner, session_id))  # 404 if it ended, 409 if full
                continue  # a transient conflict: try again
            except TurnAlreadyClaimed as taken:
                record = taken.record
                if record is not None and not hmac.compare_digest(record.fingerprint, fingerprint):
                    raise IdempotencyConflictError() from None  # the same id reused for another message
                if record is not None and not record.is_done() and not record.is_abandoned(now):
                    record = self._wait_for_turn(session_id, request_key)
                if record is not None and record.is_done():
                    return self.replay(session_id, key, record)
                if record is not None and not record.is_abandoned(int(self.clock())):
                    raise ModelTimeoutError() from None  # still being answered: the client may retry
                continue  # released or abandoned: claim it again
            except Exception:
                # The outcome is unknown (a timeout may hide a committed claim): give it up, so that the
                # retry is not kept waiting for a claim nobody holds (docs/resilience.md).
                self.release(claim)
                raise
            return claim, held or reservation
        raise ConflictError("turn claim kept changing")

    def after_lost_write(self, claim: TurnClaim, key: bytes) -> Turn | None:
        """After the turn's write lost: the turn a retry that took over the claim stored (a 504 while
        it is still being answered), or None when the claim is still ours and the write may be tried again."""
        record = self.store.get_turn(claim.session_id, claim.request_key)
        if record is None or record.token != claim.token:  # a retry took over the claim
            if record is not None and record.is_done():
                return self.replay(claim.session_id, key, record)
            raise ModelTimeoutError()
        return None

    def replay(self, session_id: str, key: bytes, record: TurnRecord) -> Turn:
        records, _ = self.store.messages(session_id, record.seq - 1, 2)
        if [r.role for r in records] != ["user", "assistant"]:
            raise ConflictError("the stored turn is incomplete")
        user, assistant = (message_view(key, r) for r in records)
        return Turn(user_message=user, assistant_message=assistant)

    def release(self, claim: TurnClaim) -> None:
        try:
            self.store.release_turn(claim)
        except Exception as error:  # the lease expires anyway; the original failure matters more
            logger.warning("turn claim not released", extra={"error_type": type(error).__name__})

    def _wait_for_turn(self, session_id: str, request_key: str) -> TurnRecord | None:
        """Poll an in-progress claim until it is answered, released or abandoned, within the model's timeout."""
        waited, delay = 0.0, POLL_FIRST_SECONDS
        record = self.store.get_turn(session_id, request_key)
        while record is not None and not record.is_done() and not record.is_abandoned(int(self.clock())):
            if waited >= self.settings.model_timeout_seconds:
                break
            self.sleep(delay)
            waited += delay
            delay = min(POLL_MAX_SECONDS, delay * 2)
            record = self.store.get_turn(session_id, request_key)
        return record
