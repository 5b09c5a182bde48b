"""Chat logic: sessions, turns and history for one principal. No HTTP and no boto3 here."""

from __future__ import annotations

import hmac
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from chat.cursors import decode_cursor, encode_cursor
from chat.model_providers import ChatMessage, ModelProvider
from chat.models import AnonymousSession, Message, MessagePage, MessageRequest, Session, Turn
from chatbot_security import crypto, session_tokens
from chatbot_security.errors import ForbiddenError, NotFoundError, SchemaError, SessionFullError
from chatbot_security.identity_keys import IdentityKeys
from chatbot_security.principal import Principal
from chatbot_security.ratelimit import RateLimiter
from chatbot_security.settings import Settings
from chatbot_security.store import LIVE, ConflictError, MessageRecord, SessionRecord, SessionStore, rfc3339

MAX_WRITE_ATTEMPTS = 3
DEFAULT_PAGE_SIZE = 50


@dataclass
class Conversations:
    settings: Settings
    store: SessionStore
    data_keys: crypto.DataKeys
    identity: IdentityKeys
    model: ModelProvider
    rate_limiter: RateLimiter
    session_token_key: Callable[[], bytes]
    clock: Callable[[], float] = time.time
    new_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))

    # -- sessions ---------------------------------------------------------------------------
    def create_session(self, principal: Principal) -> Session:
        if principal.kind != "user":
            raise ForbiddenError()
        return self._session_view(self._new_session(self.identity.owner_of(principal), session_id=self.new_id()))

    def create_anonymous_session(self, source_ip: str) -> AnonymousSession:
        self.rate_limiter.hit(
            "anon-create", self.identity.rate_key_of_ip(source_ip), self.settings.anon_sessions_per_hour, 3600
        )
        session_id = self.new_id()
        owner = self.identity.owner_of(Principal(kind="anonymous", subject=session_id, session_id=session_id))
        record = self._new_session(owner, session_id=session_id)
        token = session_tokens.issue(self.session_token_key(), session_id, record.absolute_expires_at)
        return AnonymousSession(**self._session_view(record).model_dump(), session_token=token)

    def list_sessions(self, principal: Principal) -> list[Session]:
        now = int(self.clock())
        if principal.kind == "anonymous":
            record = self.store.get_session(principal.session_id or "")
            owned = record is not None and self._owns(principal, record) and record.is_usable(now)
            return [self._session_view(record)] if owned and record else []
        records = self.store.sessions_of(self.identity.owner_of(principal))
        usable = sorted((r for r in records if r.is_usable(now)), key=lambda r: r.created_at)
        return [self._session_view(record) for record in usable]

    def get_session(self, principal: Principal, session_id: str) -> Session:
        return self._session_view(self._owned_session(principal, session_id))

    def delete_session(self, principal: Principal, session_id: str) -> None:
        record = self._owned_session(principal, session_id)
        self._erase(record)

    def erase_user(self, principal: Principal, subject: str) -> int:
        """Admin erasure of every session of ``subject`` at the configured issuer."""
        if principal.kind != "user" or self.settings.admin_role not in principal.roles:
            raise ForbiddenError()
        if self.settings.admin_require_mfa and not principal.mfa:
            raise ForbiddenError()
        if self.settings.oidc_issuer is None:
            raise NotFoundError()
        records = self.store.sessions_of(self.identity.owner_of_user(self.settings.oidc_issuer, subject))
        for record in records:
            self._erase(record)
        return len(records)

    # -- messages ---------------------------------------------------------------------------
    def post_message(self, principal: Principal, session_id: str, request: MessageRequest) -> Turn:
        if len(request.content) > self.settings.max_message_chars:
            raise SchemaError()
        session = self._owned_session(principal, session_id)
        self.rate_limiter.hit("post", self.identity.owner_of(principal), self.settings.rate_limit_per_minute, 60)
        if session.message_count + 2 > self.settings.max_messages_per_session:
            raise SessionFullError()
        key = self.data_keys.unwrap(session_id, session.wrapped_key)
        history = [
            ChatMessage(role=m.role, content=crypto.open_sealed(key, session_id, m.message_id, m.content))  # type: ignore[arg-type]
            for m in self.store.recent_messages(session_id, self.model.history_window)
        ]
        received_ms = int(self.clock() * 1000)
        reply = self.model.reply(history, request.content)
        replied_ms = max(int(self.clock() * 1000), received_ms + 1)
        user_id, assistant_id = self.new_id(), self.new_id()
        for _attempt in range(MAX_WRITE_ATTEMPTS):
            seq = session.message_count
            messages = [
                MessageRecord(session_id, seq + 1, user_id, "user", received_ms,
                              crypto.seal(key, session_id, user_id, request.content)),
                MessageRecord(session_id, seq + 2, assistant_id, "assistant", replied_ms,
                              crypto.seal(key, session_id, assistant_id, reply)),
            ]  # fmt: skip
            try:
                self.store.append_turn(session, messages, now=int(self.clock()))
            except ConflictError:
                session = self._owned_session(principal, session_id)  # a concurrent turn moved the count
                if session.message_count + 2 > self.settings.max_messages_per_session:
                    raise SessionFullError() from None
                continue
            return Turn(
                user_message=Message(message_id=user_id, role="user", content=request.content,
                                     created_at=rfc3339(received_ms / 1000)),
                assistant_message=Message(message_id=assistant_id, role="assistant", content=reply,
                                          created_at=rfc3339(replied_ms / 1000)),
            )  # fmt: skip
        raise ConflictError("session kept changing")

    def list_messages(self, principal: Principal, session_id: str, limit: int, cursor: str | None) -> MessagePage:
        session = self._owned_session(principal, session_id)
        after_seq = decode_cursor(self.identity.cursor_key, session_id, cursor) if cursor else 0
        records, has_more = self.store.messages(session_id, after_seq, limit)
        key = self.data_keys.unwrap(session_id, session.wrapped_key) if records else b""
        messages = [
            Message(
                message_id=record.message_id,
                role=record.role,  # type: ignore[arg-type]
                content=crypto.open_sealed(key, session_id, record.message_id, record.content),
                created_at=rfc3339(record.created_at / 1000),
            )
            for record in records
        ]
        next_cursor = encode_cursor(self.identity.cursor_key, session_id, records[-1].seq) if has_more else None
        return MessagePage(messages=messages, next_cursor=next_cursor)

    # -- helpers ----------------------------------------------------------------------------
    def _new_session(self, owner_key: str, session_id: str) -> SessionRecord:
        now = int(self.clock())
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
        )
        self.store.put_new_session(record)
        return record

    def _owned_session(self, principal: Principal, session_id: str) -> SessionRecord:
        """The caller's live session, or 404 whether it is missing, ended or someone else's."""
        if principal.kind == "anonymous" and principal.session_id != session_id:
            raise NotFoundError()
        record = self.store.get_session(session_id)
        if record is None or not self._owns(principal, record) or not record.is_usable(int(self.clock())):
            raise NotFoundError()
        return record

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

    @staticmethod
    def _session_view(record: SessionRecord) -> Session:
        return Session(
            session_id=record.session_id,
            created_at=rfc3339(record.created_at),
            expires_at=rfc3339(record.expires_at),
            message_count=record.message_count,
        )
