"""What data access raises: storage facts, never HTTP answers (the conversation maps them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chatbot_security.platform.transient_errors import TemporaryFailure

if TYPE_CHECKING:
    from chatbot_security.storage.records import TurnRecord


class ConflictError(TemporaryFailure):
    """A conditional write lost: the session changed, ended, or belongs to someone else."""


class ChargeRefused(Exception):
    """The rate counter charged with a turn claim was already at its limit."""


class LiveLimitReached(Exception):
    """The owner already has as many live sessions as the limit allows."""


class TurnAlreadyClaimed(Exception):
    """A post with this client_message_id was answered already, or is being answered right now."""

    def __init__(self, record: TurnRecord | None) -> None:
        super().__init__("turn already claimed")
        self.record = record


class RateLimitExceeded(Exception):
    """A rate counter is at its limit for the current window."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__("rate limit reached")
        self.retry_after_seconds = retry_after_seconds
