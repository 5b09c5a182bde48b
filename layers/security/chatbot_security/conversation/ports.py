"""What the chat logic needs from data access: the store and rate-limiter methods it really calls.

The DynamoDB store and rate limiter (``chatbot_security.storage.store``, ``chatbot_security.storage.ratelimit``) and the
in-memory fakes of the unit tests both satisfy these; tests/integration/test_store_contract.py and
test_rate_limiter_contract.py run the same cases against both.
"""

from __future__ import annotations

from typing import Protocol

from chatbot_security.storage.ratelimit import RateCharge
from chatbot_security.storage.store import SessionAccess


class ConversationStore(SessionAccess, Protocol):
    """The session store as the chat logic uses it: sessions, turns, messages and erasure, not the
    expiry index (that is the cleanup's)."""


class RateLimits(Protocol):
    def charge(self, scope: str, key: str, limit: int, window_seconds: int) -> RateCharge: ...
    def apply(self, charge: RateCharge) -> None: ...
    def hit(self, scope: str, key: str, limit: int, window_seconds: int) -> None: ...
