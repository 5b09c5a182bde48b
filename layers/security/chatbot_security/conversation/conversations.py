"""The HTTP front door's view of the conversation: the caller is the authorizer's principal.

It turns the principal into an :class:`Owner` and hands over to the modules that do the work:
sessions (:mod:`.sessions`), turns (:mod:`.turns`, shared with the streaming front door) and
erasure (:mod:`.erasure`). No HTTP and no boto3 here.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from chatbot_security.conversation.erasure import Erasure
from chatbot_security.conversation.model_providers import ModelProvider
from chatbot_security.conversation.models import (
    AnonymousSession,
    MessagePage,
    MessageRequest,
    Session,
    SessionList,
    Turn,
)
from chatbot_security.conversation.moderation import Moderator, NoModeration
from chatbot_security.conversation.owner import Owner
from chatbot_security.conversation.ports import ConversationStore, RateLimits
from chatbot_security.conversation.quotas import Quotas
from chatbot_security.conversation.sessions import DEFAULT_PAGE_SIZE, Sessions
from chatbot_security.conversation.turns import TurnEngine
from chatbot_security.identity.identity_keys import IdentityKeys
from chatbot_security.identity.principal import Principal
from chatbot_security.platform import audit
from chatbot_security.platform.settings import Settings
from chatbot_security.privacy import crypto


@dataclass
class Conversations:
    settings: Settings
    store: ConversationStore
    data_keys: crypto.DataKeys
    identity: IdentityKeys
    model: ModelProvider
    rate_limiter: RateLimits
    session_token_key: Callable[[], bytes]
    clock: Callable[[], float] = time.time
    new_id: Callable[[], str] = field(default=lambda: str(uuid.uuid4()))
    sleep: Callable[[float], None] = time.sleep
    moderator: Moderator = field(default_factory=NoModeration)
    quotas: Quotas = field(kw_only=True)

    @property
    def sessions(self) -> Sessions:
        return Sessions(self.settings, self.store, self.data_keys, self.identity, self.rate_limiter,
                        self.session_token_key, self.clock, self.new_id)  # fmt: skip

    @property
    def turns(self) -> TurnEngine:
        return TurnEngine(self.settings, self.store, self.data_keys, self.identity, self.model, self.rate_limiter,
                          self.clock, self.new_id, self.sleep, self.moderator, quotas=self.quotas)  # fmt: skip

    @property
    def erasure(self) -> Erasure:
        return Erasure(self.settings, self.store, self.data_keys, self.identity, self.clock)

    def owner(self, principal: Principal) -> Owner:
        return Owner.of(principal, self.identity)

    def create_session(self, principal: Principal) -> Session:
        return self.sessions.create(self.owner(principal))

    def create_anonymous_session(self, source_ip: str) -> AnonymousSession:
        return self.sessions.create_anonymous(source_ip)

    def list_sessions(
        self, principal: Principal, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
    ) -> SessionList:
        return self.sessions.list_owned(self.owner(principal), limit, cursor)

    def get_session(self, principal: Principal, session_id: str) -> Session:
        return self.sessions.get(self.owner(principal), session_id)

    def delete_session(self, principal: Principal, session_id: str) -> None:
        record = self.sessions.delete(self.owner(principal), session_id)
        audit.record("delete_session", actor=record.owner_key, target=record.owner_key, count=1, outcome="erased")

    def erase_user(self, principal: Principal, subject: str) -> int:
        return self.erasure.erase_user(principal, subject)

    def post_message(self, principal: Principal, session_id: str, request: MessageRequest) -> Turn:
        return self.turns.post(self.owner(principal), session_id, request)

    def list_messages(self, principal: Principal, session_id: str, limit: int, cursor: str | None) -> MessagePage:
        return self.sessions.messages(self.owner(principal), session_id, limit, cursor)
