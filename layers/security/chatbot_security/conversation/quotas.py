"""Daily token quotas (docs/api.md, "Token quotas"): what a turn reserves before its model call, what it
settles to afterwards, and the caller's usage for ``GET /v1/usage``. No HTTP and no boto3 here: the
counters are behind :class:`UsageCounters`, and their refusals become :class:`QuotaExceededError`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from chatbot_security.conversation.errors import QuotaExceededError
from chatbot_security.conversation.model_providers import ChatMessage
from chatbot_security.conversation.models import UsageReport
from chatbot_security.conversation.token_usage import daily_limit, worst_case
from chatbot_security.platform.settings import Settings
from chatbot_security.storage.usage import QuotaRefused, Reservation, UsageToday

OwnerKind = Literal["user", "anonymous"]


class UsageCounters(Protocol):
    """The token counters (chatbot_security.storage.usage_table.DynamoUsage, or the tests' fake)."""

    def reservation(self, owner_key: str, tokens: int, owner_limit: int, budget: int) -> Reservation: ...
    def reserve(self, reservation: Reservation) -> Reservation: ...
    def settle(self, reservation: Reservation, used: int) -> None: ...
    def today(self, owner_key: str, owner_limit: int, budget: int) -> UsageToday: ...


@dataclass(frozen=True)
class Quotas:
    settings: Settings
    counters: UsageCounters

    def plan(self, owner_key: str, kind: OwnerKind, history: Sequence[ChatMessage], message: str) -> Reservation:
        """The reservation of a turn that sends ``history`` and ``message``: its worst case against the
        owner's daily limit and the deployment budget. Nothing is written yet; a turn that could never
        fit is refused at once (429 ``quota_exceeded``)."""
        settings = self.settings
        tokens = worst_case(settings, history, message)
        try:
            return self.counters.reservation(
                owner_key, tokens, daily_limit(settings, kind), settings.daily_token_budget
            )
        except QuotaRefused as refused:
            raise QuotaExceededError(refused.retry_after_seconds) from None

    def reserve(self, reservation: Reservation) -> Reservation:
        """Hold the reservation on its own (one write); a turn puts it in its claim instead."""
        try:
            return self.counters.reserve(reservation)
        except QuotaRefused as refused:
            raise QuotaExceededError(refused.retry_after_seconds) from None

    def report(self, owner_key: str, kind: OwnerKind) -> UsageReport:
        """The owner's usage today and the limit that binds it (one read)."""
        today = self.counters.today(owner_key, daily_limit(self.settings, kind), self.settings.daily_token_budget)
        return UsageReport(period=today.period, tokens_used=today.tokens_used, tokens_limit=today.tokens_limit)
