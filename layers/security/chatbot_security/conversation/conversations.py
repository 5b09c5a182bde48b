"""Chat logic: sessions, turns and history for one principal. No HTTP and no boto3 here."""

from __future__ import annotations

import contextlib
import hmac
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from chatbot_security.conversation.cursors import (
    decode_cursor,
    decode_session_cursor,
    encode_cursor,
    encode_session_cursor,
)
from chatbot_security.conversation.errors import (
    ForbiddenError,
    IdempotencyConflictError,
    ModelTimeoutError,
    NotFoundError,
    QuotaExceededError,
    SchemaError,
    ServiceUnavailableError,
    SessionFullError,
    TooManySessionsError,
)
from chatbot_security.conversation.model_providers import ChatMessage, ModelProvider
from chatbot_security.conversation.models import (
    AnonymousSession,
    Message,
    MessagePage,
    MessageRequest,
    Session,
    SessionList,
    Turn,
)
from chatbot_security.conversation.ports import ConversationStore, RateLimits
from chatbot_security.conversation.quotas import Quotas
from chatbot_security.conversation.token_usage import history_within
from chatbot_security.identity import session_tokens
from chatbot_security.identity.identity_keys import IdentityKeys
from chatbot_security.identity.principal import Principal
from chatbot_security.platform import audit
from chatbot_security.platform.observability import logger
from chatbot_security.platform.settings import Settings
from chatbot_security.privacy import crypto, pii
from chatbot_security.storage.ratelimit import RateCharge
from chatbot_security.storage.store import (
    LIVE,
    ChargeRefused,
    ConflictError,
    LiveLimitReached,
    MessageRecord,
    SessionRecord,
    TurnAlreadyClaimed,
    TurnClaim,
    TurnRecord,
    rfc3339,
)
from chatbot_security.storage.usage import QuotaRefused, Reservation

MAX_WRITE_ATTEMPTS = 3
MAX_CLAIM_ATTEMPTS = 3
DEFAULT_PAGE_SIZE = 50
RATE_WINDOW_SECONDS = 60
# A claim outlives any attempt that holds it (the model's time budget, twice, plus the writes).
LEASE_MARGIN_SECONDS = 10
POLL_FIRST_SECONDS = 0.1
POLL_MAX_SECONDS = 1.0

POST_RATE_SCOPE = "post"
MESSAGE_ROLES = ("user", "assistant")
SESSION_RATE_SCOPE = "session-create"
ANON_RATE_SCOPE = "anon-create"
HOUR_SECONDS = 3600


@dataclass
class Conversations:
    settings: Settings
    store: ConversationStore
    data_keys: crypto.DataKeys
    identity: IdentityKeys
    model: ModelProvider
    rate_limiter: RateLimits
    session_token_key: Callable[[], bytes]
    quotas: Quotas
    clock: Callable[[], float] = time.time
    new_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))
    sleep: Callable[[float], None] = time.sleep

    # -- sessions ---------------------------------------------------------------------------
    def create_session(self, principal: Principal) -> Session:
        """A new session for a signed-in user: at most SESSIONS_PER_HOUR created per hour (429), at most
        MAX_LIVE_SESSIONS live at once (409), both held by DynamoDB counters under concurrent creates."""
        if principal.kind != "user":
            raise ForbiddenError()
        owner = self.identity.owner_of(principal)
        # Charged before the data key is made: a refused creation costs no KMS call.
        self.rate_limiter.hit(SESSION_RATE_SCOPE, owner, self.settings.sessions_per_hour, HOUR_SECONDS)
        session_id = self.new_id()
        try:
            record = self._new_session(owner, session_id, live_limit=self.settings.max_live_sessions)
        except LiveLimitReached:
            if not self._purge_ended_sessions(owner):
                raise TooManySessionsError() from None
            try:  # sessions that had ended without being purged yet no longer count
                record = self._new_session(owner, session_id, live_limit=self.settings.max_live_sessions)
            except LiveLimitReached:
                raise TooManySessionsError() from None
        return self._session_view(record)

    def create_anonymous_session(self, source_ip: str) -> AnonymousSession:
        """A new anonymous session, limited per source IP (the IP is the caller's only identity): the lower
        of ANON_SESSIONS_PER_HOUR and SESSIONS_PER_HOUR. Its owner is the session itself, so the live-session
        limit cannot apply (each anonymous owner has exactly one session)."""
        limit = min(self.settings.anon_sessions_per_hour, self.settings.sessions_per_hour)
        self.rate_limiter.hit(ANON_RATE_SCOPE, self.identity.rate_key_of_ip(source_ip), limit, HOUR_SECONDS)
        signing_key = self.session_token_key()  # before the session exists: no session without its token
        session_id = self.new_id()
        owner = self.identity.owner_of(Principal(kind="anonymous", subject=session_id, session_id=session_id))
        record = self._new_session(owner, session_id=session_id)
        token = session_tokens.issue(signing_key, session_id, record.absolute_expires_at)
        return AnonymousSession(**self._session_view(record).model_dump(), session_token=token)

    def list_sessions(
        self, principal: Principal, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
    ) -> SessionList:
        """The caller's usable sessions, oldest first, one page at a time; a cursor only pages the listing
        of the owner it was minted for."""
        now = int(self.clock())
        owner = self.identity.owner_of(principal)
        after = decode_session_cursor(self.identity.cursor_key, owner, cursor) if cursor else None
        if principal.kind == "anonymous":
            record = self.store.get_session(principal.session_id or "")
            owned = record is not None and self._owns(principal, record) and record.is_usable(now) and after is None
            return SessionList(sessions=[self._session_view(record)] if owned and record else [], next_cursor=None)
        records, has_more = self.store.session_page(owner, now, after, limit)
        next_cursor = None
        if has_more:
            last = records[-1]
            next_cursor = encode_session_cursor(self.identity.cursor_key, owner, _created_ms(last), last.session_id)
        return SessionList(sessions=[self._session_view(record) for record in records], next_cursor=next_cursor)

    def get_session(self, principal: Principal, session_id: str) -> Session:
        return self._session_view(self._owned_session(principal, session_id))

    def delete_session(self, principal: Principal, session_id: str) -> None:
        record = self._owned_session(principal, session_id)
        self._erase(record)
        audit.record("delete_session", actor=record.owner_key, target=record.owner_key, count=1, outcome="erased")

    def erase_user(self, principal: Principal, subject: str) -> int:
        """Admin erasure of every session of ``subject`` at the configured issuer; the number erased.

        The owner index is eventually consistent, and a session may end while this runs (the user's own
        delete, the cleanup): one already gone counts as erased and the others are still erased. When
        some session cannot be erased now, the rest still is and the caller gets a 503 with
        ``Retry-After``; repeating the call finishes the job.
        """
        actor = self.identity.owner_of(principal)
        issuer = self.settings.oidc_issuer
        target = self.identity.owner_of_user(issuer, subject) if issuer is not None else None
        if not self._is_admin(principal):
            audit.record("admin_erase_user", actor=actor, target=target, count=0, outcome="denied")
            raise ForbiddenError()
        if target is None:
            audit.record("admin_erase_user", actor=actor, target=None, count=0, outcome="not_found")
            raise NotFoundError()
        try:
            records = self.store.sessions_of(target)
        except Exception:
            audit.record("admin_erase_user", actor=actor, target=target, count=0, outcome="incomplete")
            raise
        erased = sum(_attempt(self._erase_for_good, record) for record in records)
        complete = _attempt(self.rate_limiter.forget, POST_RATE_SCOPE, target) and erased == len(records)
        # The index may not list a session created just before: the live counter (strongly consistent)
        # says whether any session of the user is still counted, and goes once none is. A retry, once the
        # index lists that session, erases it.
        complete = complete and _attempt(self._drop_live_counter, target)
        outcome: audit.Outcome = "erased" if complete else "incomplete"
        audit.record("admin_erase_user", actor=actor, target=target, count=erased, outcome=outcome)
        if not complete:
            raise ServiceUnavailableError()
        return erased

    def _drop_live_counter(self, owner: str) -> None:
        if not self.store.drop_live_counter(owner):
            raise ConflictError("a session of the user is not in the owner index yet")

    def _is_admin(self, principal: Principal) -> bool:
        if principal.kind != "user" or self.settings.admin_role not in principal.roles:
            return False
        return principal.mfa or not self.settings.admin_require_mfa

    # -- messages ---------------------------------------------------------------------------
    def post_message(self, principal: Principal, session_id: str, request: MessageRequest) -> Turn:
        """One turn: the user's message (masked) and the model's answer, stored together or not at all.

        DynamoDB calls on a warm turn: one Query (session and recent history), one write that charges
        the rate counter (a transaction that also claims ``client_message_id`` when there is one), one
        transaction that stores the turn. KMS is called only the first time a container sees a session.
        """
        if len(request.content) > self.settings.max_message_chars:
            raise SchemaError(f"content: at most {self.settings.max_message_chars} characters")
        self._reject_other_anonymous_session(principal, session_id)
        owner = self.identity.owner_of(principal)
        found, recent = self.store.session_with_recent(session_id, self.model.history_window)
        session = self._usable_owned(principal, found, owner)
        key = self.data_keys.unwrap(session_id, session.wrapped_key)
        charge = self.rate_limiter.charge(
            POST_RATE_SCOPE, owner, self.settings.rate_limit_per_minute, RATE_WINDOW_SECONDS
        )
        content = self._mask(request.content)
        history = _readable_history(key, recent)
        reservation = self.quotas.plan(owner, principal.kind, history, content)  # 429 if it can never fit
        claim: TurnClaim | None = None
        if request.client_message_id is None:
            self._require_room(session)
            reservation = self._reserve(charge, reservation)
        else:
            claimed = self._claim(principal, session, key, request=(str(request.client_message_id), content),
                                  charge=charge, reservation=reservation)  # fmt: skip
            if isinstance(claimed, Turn):
                return claimed  # a repeat: the first answer, no model call, no tokens
            claim, reservation = claimed
        answered = False
        try:
            sent = history_within(self.settings, history, content, reservation.tokens)
            received_ms = int(self.clock() * 1000)
            reply = self.model.reply(sent, content)
            answered = True
            text, used = self._mask(reply), reservation.tokens  # no usage reported: settles at the reservation
            replied_ms = max(int(self.clock() * 1000), received_ms + 1)
            return self._store_turn(
                principal, session, key, claim=claim, question=(content, received_ms), answer=(text, replied_ms),
                settlement=(reservation, used),
            )  # fmt: skip
        except BaseException as error:
            if claim is not None:
                self._release(claim)
            self.quotas.after_failure(reservation, error, answered=answered)
            raise

    def list_messages(self, principal: Principal, session_id: str, limit: int, cursor: str | None) -> MessagePage:
        session = self._owned_session(principal, session_id)
        after_seq = decode_cursor(self.identity.cursor_key, session_id, cursor) if cursor else 0
        records, has_more = self.store.messages(session_id, after_seq, limit)
        key = self.data_keys.unwrap(session_id, session.wrapped_key) if records else b""
        messages = [self._message_view(key, record) for record in records]
        next_cursor = encode_cursor(self.identity.cursor_key, session_id, records[-1].seq) if has_more else None
        return MessagePage(messages=messages, next_cursor=next_cursor)

    # -- turns ------------------------------------------------------------------------------
    def _claim(
        self,
        principal: Principal,
        session: SessionRecord,
        key: bytes,
        *,
        request: tuple[str, str],
        charge: RateCharge,
        reservation: Reservation,
    ) -> tuple[TurnClaim, Reservation] | Turn:
        """Claim ``request_key`` for this post, or return the turn an earlier post with it produced.

        ``request`` is the client_message_id and the masked content. "The same message" means the same
        masked content, exactly (code point for code point): the idempotency record keeps only a keyed
        hash of it (docs/api.md), never the text.
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
                raise charge.refused() from None
            except QuotaRefused as refused:
                raise QuotaExceededError(refused.retry_after_seconds) from None
            except ConflictError:
                self._require_room(self._owned_session(principal, session_id))  # 404 if it ended, 409 if full
                continue  # a transient conflict: try again
            except TurnAlreadyClaimed as taken:
                record = taken.record
                if record is not None and not hmac.compare_digest(record.fingerprint, fingerprint):
                    raise IdempotencyConflictError() from None  # the same id reused for another message
                if record is not None and not record.is_done() and not record.is_abandoned(now):
                    record = self._wait_for_turn(session_id, request_key)
                if record is not None and record.is_done():
                    return self._replay(session_id, key, record)
                if record is not None and not record.is_abandoned(int(self.clock())):
                    raise ModelTimeoutError() from None  # still being answered: the client may retry
                continue  # released or abandoned: claim it again
            except Exception:
                # The outcome is unknown (a timeout may hide a committed claim): give it up, so that the
                # retry is not kept waiting for a claim nobody holds (docs/resilience.md).
                self._release(claim)
                raise
            return claim, held or reservation
        raise ConflictError("turn claim kept changing")

    def _reserve(self, charge: RateCharge, reservation: Reservation) -> Reservation:
        """Charge the rate counter and hold the turn's tokens in one write (a post without
        client_message_id: there is no claim for them to ride in)."""
        try:
            return self.store.reserve_turn(charge, reservation)
        except ChargeRefused:
            raise charge.refused() from None
        except QuotaRefused as refused:
            raise QuotaExceededError(refused.retry_after_seconds) from None

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

    def _replay(self, session_id: str, key: bytes, record: TurnRecord) -> Turn:
        records, _ = self.store.messages(session_id, record.seq - 1, 2)
        if [r.role for r in records] != ["user", "assistant"]:
            raise ConflictError("the stored turn is incomplete")
        user, assistant = (self._message_view(key, r) for r in records)
        return Turn(user_message=user, assistant_message=assistant)

    def _store_turn(
        self,
        principal: Principal,
        session: SessionRecord,
        key: bytes,
        *,
        claim: TurnClaim | None,
        question: tuple[str, int],
        answer: tuple[str, int],
        settlement: tuple[Reservation, int] | None = None,
    ) -> Turn:
        session_id = session.session_id
        user_id, assistant_id = self.new_id(), self.new_id()
        for _attempt in range(MAX_WRITE_ATTEMPTS):
            seq = session.message_count
            messages = [
                _sealed_record(key, crypto.MessageBinding(session_id, user_id, "user", seq + 1, question[1]),
                               question[0]),
                _sealed_record(key, crypto.MessageBinding(session_id, assistant_id, "assistant", seq + 2, answer[1]),
                               answer[0]),
            ]  # fmt: skip
            try:
                self.store.append_turn(session, messages, now=int(self.clock()), claim=claim, settlement=settlement)
            except ConflictError:
                if claim is not None:
                    record = self.store.get_turn(session_id, claim.request_key)
                    if record is None or record.token != claim.token:  # a retry took over the claim
                        if record is not None and record.is_done():
                            return self._replay(session_id, key, record)
                        raise ModelTimeoutError() from None
                session = self._owned_session(principal, session_id)  # a concurrent turn moved the count
                self._require_room(session)
                continue
            return Turn(
                user_message=Message(message_id=user_id, role="user", content=question[0],
                                     created_at=rfc3339(question[1] / 1000)),
                assistant_message=Message(message_id=assistant_id, role="assistant", content=answer[0],
                                          created_at=rfc3339(answer[1] / 1000)),
            )  # fmt: skip
        raise ConflictError("session kept changing")

    def _release(self, claim: TurnClaim) -> None:
        try:
            self.store.release_turn(claim)
        except Exception as error:  # the lease expires anyway; the original failure matters more
            logger.warning("turn claim not released", extra={"error_type": type(error).__name__})

    def _require_room(self, session: SessionRecord) -> None:
        if session.message_count + 2 > self.settings.max_messages_per_session:
            raise SessionFullError()

    def _mask(self, text: str) -> str:
        return pii.mask_pii(text) if self.settings.pii_masking else text

    @staticmethod
    def _message_view(key: bytes, record: MessageRecord) -> Message:
        """The stored message; one that fails to open is served as unreadable, not as a failed page."""
        content = _open_record(key, record)
        if content is None:
            logger.warning("unreadable message", extra={"error_type": "DecryptionError"})
            return Message(
                message_id=record.message_id,
                role="user" if record.role == "user" else "assistant",
                content="",
                created_at=_created_at(record),
                unreadable=True,
            )
        return Message(
            message_id=record.message_id,
            role=record.role,  # type: ignore[arg-type]
            content=content,
            created_at=_created_at(record),
        )

    # -- helpers ----------------------------------------------------------------------------
    def _purge_ended_sessions(self, owner: str) -> int:
        """Purge the owner's sessions that have ended but are still counted (the cleanup has not reached
        them yet); how many were purged. Only at the live-session limit, so never on a normal create."""
        now, purged = int(self.clock()), 0
        for record in self.store.sessions_of(owner):
            if not record.is_usable(now) and self.store.claim_for_purge(record.session_id, now):
                self.store.purge_session(record.session_id)
                purged += 1
        return purged

    def _new_session(self, owner_key: str, session_id: str, live_limit: int | None = None) -> SessionRecord:
        now_ms = int(self.clock() * 1000)
        now = now_ms // 1000
        absolute = now + self.settings.session_ttl_seconds
        data_key = self.data_keys.new_key(session_id)
        record = SessionRecord(
            session_id=session_id,
            owner_key=owner_key,
            created_at=now,
            absolute_expires_at=absolute,
            expires_at=min(absolute, now + self.settings.session_idle_seconds),
            last_active_at=now,
            message_count=0,
            status=LIVE,
            wrapped_key=data_key.wrapped,
            created_ms=now_ms,
        )
        self.store.put_new_session(record, live_limit)
        return replace(record, live_counted=live_limit is not None)

    def _owned_session(self, principal: Principal, session_id: str) -> SessionRecord:
        """The caller's live session, or 404 whether it is missing, ended or someone else's."""
        self._reject_other_anonymous_session(principal, session_id)
        return self._usable_owned(principal, self.store.get_session(session_id))

    def _usable_owned(
        self, principal: Principal, record: SessionRecord | None, owner: str | None = None
    ) -> SessionRecord:
        if record is None or not record.is_usable(int(self.clock())):
            raise NotFoundError()
        if not hmac.compare_digest(record.owner_key, owner or self.identity.owner_of(principal)):
            raise NotFoundError()
        return record

    @staticmethod
    def _reject_other_anonymous_session(principal: Principal, session_id: str) -> None:
        """An anonymous token opens its own session only: nothing else is even looked up."""
        if principal.kind == "anonymous" and principal.session_id != session_id:
            raise NotFoundError()

    def _owns(self, principal: Principal, record: SessionRecord) -> bool:
        return hmac.compare_digest(record.owner_key, self.identity.owner_of(principal))

    def _erase(self, record: SessionRecord) -> None:
        now = int(self.clock())
        try:
            self.store.mark_deleted(record, now)
        except ConflictError:
            raise NotFoundError() from None
        self.data_keys.forget(record.session_id)
        if self.store.claim_for_purge(record.session_id, now):
            self.store.purge_session(record.session_id)

    def _erase_for_good(self, record: SessionRecord) -> None:
        """Erase a session whatever state it is in; one already gone is erased (its leftovers swept)."""
        now = int(self.clock())
        # A ConflictError: purged meanwhile (the user's own delete, the cleanup); nothing left to end.
        with contextlib.suppress(ConflictError):
            self.store.mark_deleted(record, now)
        self.data_keys.forget(record.session_id)
        if self.store.claim_for_purge(record.session_id, now):
            self.store.purge_session(record.session_id)
        elif self.store.get_session(record.session_id) is None:
            self.store.purge_session(record.session_id)  # items a crashed purge may have left behind

    @staticmethod
    def _session_view(record: SessionRecord) -> Session:
        return Session(
            session_id=record.session_id,
            created_at=rfc3339(_created_ms(record) / 1000),
            expires_at=rfc3339(record.expires_at),
            message_count=record.message_count,
        )


def _attempt(step: Callable[..., object], *args: object) -> bool:
    """Run one step of an erasure; False (logged) when it failed, so that the others still run."""
    try:
        step(*args)
    except Exception as error:  # a retry of the whole erasure finishes this step
        logger.warning("erasure step failed", extra={"error_type": type(error).__name__})
        return False
    return True


def _binding(record: MessageRecord) -> crypto.MessageBinding:
    return crypto.MessageBinding(record.session_id, record.message_id, record.role, record.seq, record.created_at)


def _sealed_record(key: bytes, binding: crypto.MessageBinding, text: str) -> MessageRecord:
    """The stored form of a new message: its ciphertext bound to everything its item says."""
    return MessageRecord(
        binding.session_id,
        binding.seq,
        binding.message_id,
        binding.role,
        binding.created_ms,
        crypto.seal(key, binding, text),
    )


def _open_record(key: bytes, record: MessageRecord) -> str | None:
    """The plaintext of a stored message, or None when it does not open (moved, rewritten or damaged).

    Version 2 ciphertexts bind the role, the position and the time, so a message whose role was
    rewritten does not open; a version 1 one (older messages) must at least carry a role we know.
    """
    if record.role not in MESSAGE_ROLES:
        return None
    try:
        return crypto.open_sealed(key, _binding(record), record.content)
    except crypto.DecryptionError:
        return None


def _readable_history(key: bytes, records: list[MessageRecord]) -> list[ChatMessage]:
    """The history the model sees: messages that do not open are left out, never guessed at."""
    history = []
    for record in records:
        content = _open_record(key, record)
        if content is not None:
            history.append(ChatMessage(role=record.role, content=content))  # type: ignore[arg-type]
    if len(history) < len(records):
        logger.warning("unreadable messages left out of the history", extra={"count": len(records) - len(history)})
    return history


def _created_at(record: MessageRecord) -> str:
    """The message's time as RFC 3339; the epoch when the stored value is no representable time."""
    try:
        return rfc3339(record.created_at / 1000)
    except (OverflowError, OSError, ValueError):
        return rfc3339(0)


def _created_ms(record: SessionRecord) -> int:
    return record.created_ms or record.created_at * 1000
