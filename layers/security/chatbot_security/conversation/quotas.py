"""Daily token quotas (docs/api.md, "Token quotas"): what a turn reserves before its model call, what it
settles to afterwards, and the caller's usage for ``GET /v1/usage``. No HTTP and no boto3 here: the
counters are behind :class:`UsageCounters`, and their refusals become :class:`QuotaExceededError`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from chatbot_security.conversation.errors import ModelTimeoutError, QuotaExceededError
from chatbot_security.conversation.model_providers import ChatMessage
from chatbot_security.conversation.models import UsageReport
from chatbot_security.conversation.token_usage import daily_limit, worst_case
from chatbot_security.platform.observability import logger
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

    def after_failure(self, reservation: Reservation, error: BaseException, *, answered: bool) -> None:
        """Settle a turn that failed after its reservation was held. Its tokens are given back (settled
        to 0) only when the model produced nothing: the call failed before answering (502) or never
        happened. A timeout (504) keeps the reservation, since the model may have spent it before the
        answer was given up; so does a failure after the answer (its tokens were spent, and a store whose
        outcome is unknown may already have settled them: settling twice would undercount).
        """
        if answered or isinstance(error, ModelTimeoutError):
            return
        try:
            self.counters.settle(reservation, 0)
        except Exception as failure:  # the reservation then stays counted: the safe side
            logger.warning("token reservation not released", extra={"error_type": type(failure).__name__})

    def report(self, owner_key: str, kind: OwnerKind) -> UsageReport:
        """The owner's usage today and the limit that binds it (one read)."""
        today = self.counters.today(owner_key, daily_limit(self.settings, kind), self.settings.daily_token_budget)
        return UsageReport(period=today.period, tokens_used=today.tokens_used, tokens_limit=today.tokens_limit)
