"""Who a conversation belongs to, without the credential that proved it.

The HTTP front door builds an :class:`Owner` from the authorizer's principal; the streaming front
door from the context its ``$connect`` authorizer bound to the connection. The conversation code
below both works on the owner only.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from chatbot_security.conversation.errors import NotFoundError
from chatbot_security.identity.identity_keys import IdentityKeys
from chatbot_security.identity.principal import Principal
from chatbot_security.storage.records import SessionRecord

OwnerKind = Literal["user", "anonymous"]


@dataclass(frozen=True)
class Owner:
    key: str  # pseudonymous owner key, as stored on the owner's sessions
    kind: OwnerKind
    session_id: str | None = None  # anonymous: the one session it may touch

    @classmethod
    def of(cls, principal: Principal, identity: IdentityKeys) -> Owner:
        return cls(identity.owner_of(principal), principal.kind, principal.session_id)

    def to_json(self) -> dict[str, str]:
        return {"key": self.key, "kind": self.kind, "session_id": self.session_id or ""}

    @classmethod
    def from_json(cls, value: Any) -> Owner:
        if not isinstance(value, dict) or value.get("kind") not in ("user", "anonymous"):
            raise ValueError("not an owner")
        key, session_id = value.get("key"), value.get("session_id")
        if not isinstance(key, str) or not key or not isinstance(session_id, str):
            raise ValueError("not an owner")
        return cls(key, value["kind"], session_id or None)


class Ownership:
    """The one ownership rule: a session answers only to its owner, and only while it is usable;
    anything else is 404, whether the session is missing, ended or someone else's."""

    def __init__(self, get_session: Callable[[str], SessionRecord | None], clock: Callable[[], float] = time.time):
        self._get_session = get_session
        self._clock = clock

    def owned_session(self, owner: Owner, session_id: str) -> SessionRecord:
        reject_other_anonymous_session(owner, session_id)
        return self.usable_owned(owner, self._get_session(session_id))

    def usable_owned(self, owner: Owner, record: SessionRecord | None) -> SessionRecord:
        if record is None or not record.is_usable(int(self._clock())):
            raise NotFoundError()
        if not owns(owner, record):
            raise NotFoundError()
        return record


def owns(owner: Owner, record: SessionRecord) -> bool:
    return hmac.compare_digest(record.owner_key, owner.key)


def reject_other_anonymous_session(owner: Owner, session_id: str) -> None:
    """An anonymous owner opens its own session only: nothing else is even looked up."""
    if owner.kind == "anonymous" and owner.session_id != session_id:
        raise NotFoundError()
