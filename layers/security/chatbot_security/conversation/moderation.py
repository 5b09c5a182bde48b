"""Moderation of each turn (docs/security.md "Moderation").

The turn engine calls :meth:`Moderator.check_input` on the user's text after PII masking and before the
model: a blocked text raises :class:`ContentBlockedError` (422 ``content_blocked``, nothing stored, no model
call); otherwise the returned text (names and addresses anonymised) is what is stored and sent. A provider
that does not apply the guardrail itself (anything but Bedrock's Converse) has its answer checked by
:meth:`Moderator.check_output`: a blocked answer becomes ``MODERATION_REFUSAL_TEXT`` with ``moderated``.

Calls per turn: Bedrock, one ApplyGuardrail (INPUT) and one Converse with the guardrail; any other provider,
ApplyGuardrail (INPUT), the model, ApplyGuardrail (OUTPUT). Moderation fails closed: a guardrail that cannot
be reached fails the turn, an intervention this code cannot read counts as a block.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from aws_lambda_powertools.metrics import MetricUnit

from chatbot_security.conversation.errors import (
    ContentBlockedError,
    ModelProviderError,
    ModelTimeoutError,
    ServiceUnavailableError,
)
from chatbot_security.platform.observability import logger, metrics
from chatbot_security.platform.settings import Settings

Source = Literal["INPUT", "OUTPUT"]

#: One ApplyGuardrail call never takes longer than this (nor than what is left of the turn).
APPLY_GUARDRAIL_TIMEOUT_SECONDS = 5.0
#: Below this much time left, no call is attempted: the turn ends in a timeout instead.
MIN_CALL_SECONDS = 0.5
_TEMPORARY = frozenset({"ThrottlingException", "ServiceUnavailableException", "InternalServerException"})


class Moderator(Protocol):
    """``time_left`` is what remains of the turn, in seconds (None: no bound but the call's own).

    ``checks_answers``: whether :meth:`check_output` judges the whole answer after the model has written
    it (an OpenAI-compatible provider, the local fake); a stream must then show nothing of an answer
    before it is judged."""

    @property
    def checks_answers(self) -> bool: ...

    def check_input(self, text: str, time_left: float | None = None) -> str:
        """The text to store and send (anonymised); raises ContentBlockedError when refused."""
        ...

    def check_output(self, text: str, time_left: float | None = None) -> tuple[str, bool]:
        """The answer to store and return, and whether moderation replaced it."""
        ...


class NoModeration:
    """MODERATION=off."""

    checks_answers = False

    def check_input(self, text: str, time_left: float | None = None) -> str:
        return text

    def check_output(self, text: str, time_left: float | None = None) -> tuple[str, bool]:
        return text, False


@dataclass(frozen=True)
class Verdict:
    blocked: bool
    text: str


def read_verdict(response: dict[str, Any], original: str) -> Verdict:
    """What an ApplyGuardrail response means: ``action`` says whether the guardrail intervened, the
    ``assessments`` say why (a BLOCKED policy, or only ANONYMIZED entities), ``outputs`` carry the text."""
    if response.get("action") != "GUARDRAIL_INTERVENED":
        return Verdict(blocked=False, text=original)
    actions = set(_policy_actions(response.get("assessments") or []))
    text = "".join(str(output.get("text", "")) for output in response.get("outputs") or [])
    # Fail closed: an intervention that is not only an anonymisation (a block, or a reason this code does
    # not know), or an anonymisation without its text, is a block.
    if "BLOCKED" in actions or "ANONYMIZED" not in actions or not text:
        return Verdict(blocked=True, text="")
    return Verdict(blocked=False, text=text)


def _policy_actions(node: Any) -> Iterator[str]:
    """Every ``action`` of every policy finding (topics, filters, words, entities, regexes, grounding)."""
    if isinstance(node, list):
        for item in node:
            yield from _policy_actions(item)
    elif isinstance(node, dict):
        action = node.get("action")
        if isinstance(action, str):
            yield action
        for key, value in node.items():
            if key not in ("invocationMetrics", "appliedGuardrailDetails"):
                yield from _policy_actions(value)


class BedrockGuardrail:
    """The configured Amazon Bedrock guardrail through ApplyGuardrail.

    ``runtime(read_timeout)`` gives the bedrock-runtime client of one call (built on the first call, never
    at import or construction). ``check_answers`` is False when the model provider applies the guardrail
    to its answer itself (Bedrock's Converse): the answer is then not checked a second time.
    """

    def __init__(
        self,
        settings: Settings,
        runtime: Callable[[float], Any] | None = None,
        *,
        check_answers: bool = True,
    ) -> None:
        self._identifier = settings.require("bedrock_guardrail_id")
        self._version = settings.bedrock_guardrail_version or "DRAFT"
        self._refusal = settings.moderation_refusal_text
        self._runtime = runtime or _guardrail_runtime
        self._check_answers = check_answers

    @property
    def checks_answers(self) -> bool:
        return self._check_answers

    def check_input(self, text: str, time_left: float | None = None) -> str:
        verdict = self._apply("INPUT", text, time_left)
        if verdict.blocked:
            _count("ModerationBlockedInput")
            logger.info("user message refused by the guardrail")
            raise ContentBlockedError()
        return verdict.text

    def check_output(self, text: str, time_left: float | None = None) -> tuple[str, bool]:
        if not self._check_answers:
            return text, False
        verdict = self._apply("OUTPUT", text, time_left)
        if verdict.blocked:
            _count("ModerationBlockedOutput")
            logger.info("model answer replaced by the refusal text")
            return self._refusal, True
        return verdict.text, False

    def _apply(self, source: Source, text: str, time_left: float | None) -> Verdict:
        from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

        timeout = APPLY_GUARDRAIL_TIMEOUT_SECONDS
        if time_left is not None:
            timeout = min(timeout, time_left)
        if timeout < MIN_CALL_SECONDS:
            raise ModelTimeoutError()
        try:
            response = self._runtime(_whole_seconds(timeout)).apply_guardrail(
                guardrailIdentifier=self._identifier,
                guardrailVersion=self._version,
                source=source,
                content=[{"text": {"text": text}}],
            )
        except ReadTimeoutError as error:
            raise ModelTimeoutError() from error
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            logger.warning("guardrail failed", extra={"source": source, "error_code": code})
            if code in _TEMPORARY:
                raise ServiceUnavailableError() from error
            raise ModelProviderError() from error
        except BotoCoreError as error:
            logger.warning("guardrail failed", extra={"source": source, "error_code": type(error).__name__})
            raise ModelProviderError() from error
        return read_verdict(response, text)


def _whole_seconds(timeout: float) -> float:
    """Whole seconds (so that few clients are ever built), at least the minimum a call is granted."""
    return float(max(1.0, math.floor(timeout)))


def _count(name: str) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def _guardrail_runtime(timeout_seconds: float) -> Any:
    from chatbot_security.platform.aws_clients import single_attempt_client

    # One attempt: a retry would not fit in the turn's time budget, and moderation fails closed.
    return single_attempt_client("bedrock-runtime", timeout_seconds)


def build_moderator(settings: Settings) -> Moderator:
    """The moderator the settings ask for; no client is created until the first turn. With Bedrock as the
    model provider, Converse applies the guardrail to the answer (``ModelAnswer.moderated``): only the
    input goes through ApplyGuardrail."""
    if not settings.moderation_enabled:
        return NoModeration()
    if settings.local_fake_guardrail:
        from chatbot_security.conversation.fake_guardrail import FakeGuardrail

        return FakeGuardrail(settings.moderation_refusal_text)
    return BedrockGuardrail(settings, check_answers=settings.model_provider != "bedrock")
