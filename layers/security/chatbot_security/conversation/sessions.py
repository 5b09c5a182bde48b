"""Sessions: create (with their per-hour and live limits), list, read, page through messages, delete."""

from __future__ import annotations

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
from chatbot_security.conversation.errors import ForbiddenError, NotFoundError, RateLimitedError, TooManySessionsError
from chatbot_security.conversation.models import AnonymousSession, MessagePage, Session, SessionList
from chatbot_security.conversation.owner import Owner, Ownership, owns
from chatbot_security.conversation.ports import ConversationStore, RateLimits
from chatbot_security.conversation.views import created_ms, message_view, session_view
from chatbot_security.identity import session_tokens
from chatbot_security.identity.identity_keys import IdentityKeys
from chatbot_security.identity.principal import Principal
from chatbot_security.platform.settings import Settings
from chatbot_security.privacy import crypto
from chatbot_security.storage.errors import ConflictError, LiveLimitReached, RateLimitExceeded
from chatbot_security.storage.records import LIVE, SessionRecord

DEFAULT_PAGE_SIZE = 50
SESSION_RATE_SCOPE = "session-create"
ANON_RATE_SCOPE = "anon-create"
HOUR_SECONDS = 3600


@dataclass
class Sessions:
    settings: Settings
    store: ConversationStore
    data_keys: crypto.DataKeys
    identity: IdentityKeys
    rate_limiter: RateLimits
    session_token_key: Callable[[], bytes]
    clock: Callable[[], float] = time.time
    new_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))

    @property
    def ownership(self) -> Ownership:
        return Ownership(self.store.get_session, self.clock)

    def create(self, owner: Owner) -> Session:
        """A new session for a signed-in user: at most SESSIONS_PER_HOUR created per hour (429), at most
        MAX_LIVE_SESSIONS live at once (409), both held by DynamoDB counters under concurrent creates."""
        if owner.kind != "user":
            raise ForbiddenError()
        # Charged before the data key is made: a refused creation costs no KMS call.
        self._hit(SESSION_RATE_SCOPE, owner.key, self.settings.sessions_per_hour)
        session_id = self.new_id()
        try:
            record = self._new_session(owner.key, session_id, live_limit=self.settings.max_live_sessions)
        except LiveLimitReached:
            if not self._purge_ended_sessions(owner.key):
                raise TooManySessionsError() from None
            try:  # sessions that had ended without being purged yet no longer count
                record = self._new_session(owner.key, session_id, live_limit=self.settings.max_live_sessions)
            except LiveLimitReached:
                raise TooManySessionsError() from None
        return session_view(record)

    def create_anonymous(self, source_ip: str) -> AnonymousSession:
        """A new anonymous session, limited per source IP (the IP is the caller's only identity): the lower
        of ANON_SESSIONS_PER_HOUR and SESSIONS_PER_HOUR. Its owner is the session itself, so the live-session
        limit cannot apply (each anonymous owner has exactly one session)."""
        limit = min(self.settings.anon_sessions_per_hour, self.settings.sessions_per_hour)
        self._hit(ANON_RATE_SCOPE, self.identity.rate_key_of_ip(source_ip), limit)
        signing_key = self.session_token_key()  # before the session exists: no session without its token
        session_id = self.new_id()
        owner = self.identity.owner_of(Principal(kind="anonymous", subject=session_id, session_id=session_id))
        record = self._new_session(owner, session_id=session_id)
        token = session_tokens.issue(signing_key, session_id, record.absolute_expires_at)
        return AnonymousSession(**session_view(record).model_dump(), session_token=token)

    def list_owned(self, owner: Owner, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None) -> SessionList:
        """The owner's usable sessions, oldest first, one page at a time; a cursor only pages the listing
        of the owner it was minted for."""
        now = int(self.clock())
        after = decode_session_cursor(self.identity.cursor_key, owner.key, cursor) if cursor else None
        if owner.kind == "anonymous":
            record = self.store.get_session(owner.session_id or "")
            shown = record is not None and owns(owner, record) and record.is_usable(now) and after is None
            return SessionList(sessions=[session_view(record)] if shown and record else [], next_cursor=None)
        records, has_more = self.store.session_page(owner.key, now, after, limit)
        next_cursor = None
        if has_more:
            last = records[-1]
            next_cursor = encode_session_cursor(self.identity.cursor_key, owner.key, created_ms(last), last.session_id)
        return SessionList(sessions=[session_view(record) for record in records], next_cursor=next_cursor)

    def get(self, owner: Owner, session_id: str) -> Session:
        return session_view(self.ownership.owned_session(owner, session_id))

    def messages(self, owner: Owner, session_id: str, limit: int, cursor: str | None) -> MessagePage:
        session = self.ownership.owned_session(owner, session_id)
        after_seq = decode_cursor(self.identity.cursor_key, session_id, cursor) if cursor else 0
        records, has_more = self.store.messages(session_id, after_seq, limit)
        key = self.data_keys.unwrap(session_id, session.wrapped_key) if records else b""
        next_cursor = encode_cursor(self.identity.cursor_key, session_id, records[-1].seq) if has_more else None
        return MessagePage(messages=[message_view(key, record) for record in records], next_cursor=next_cursor)

    def delete(self, owner: Owner, session_id: str) -> SessionRecord:
        """End the owner's session now and purge it; the record as it was (for the audit trail)."""
        record = self.ownership.owned_session(owner, session_id)
        now = int(self.clock())
        try:
            self.store.mark_deleted(record, now)
        except ConflictError:
            raise NotFoundError() from None
        self.data_keys.forget(record.session_id)
        if self.store.claim_for_purge(record.session_id, now):
            self.store.purge_session(record.session_id)
        return record

    def _hit(self, scope: str, key: str, limit: int) -> None:
        try:
            self.rate_limiter.hit(scope, key, limit, HOUR_SECONDS)
        except RateLimitExceeded as refused:
            raise RateLimitedError(retry_after_seconds=refused.retry_after_seconds) from None

    def _purge_ended_sessions(self, owner_key: str) -> int:
        """Purge the owner's sessions that have ended but are still counted (the cleanup has not reached
        them yet); how many were purged. Only at the live-session limit, so never on a normal create."""
        now, purged = int(self.clock()), 0
        for record in self.store.sessions_of(owner_key):
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
