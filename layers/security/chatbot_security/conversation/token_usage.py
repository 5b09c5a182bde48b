"""A turn's token accounting: the worst case it reserves before the model call, the limits that apply to
its owner, and the usage metrics it publishes afterwards (docs/contract.md, token quotas).

Why UTF-8 bytes bound input tokens: the tokenizers of the models this product calls (byte-level BPE,
such as Claude's and OpenAI's, and SentencePiece with byte fallback) turn a text into tokens that each
stand for at least one byte of its UTF-8 encoding, so a text of ``n`` bytes is at most ``n`` tokens. The
echo model counts whitespace-separated words, never more than bytes either. What a provider adds around
the texts (role markers, message separators) is not in the texts: :data:`FRAMING_TOKENS_PER_MESSAGE` per
message and :data:`FRAMING_TOKENS_PER_REQUEST` per request cover it, several times what any of these
formats spends. The bound is loose (about four bytes per token in English), which errs on the side of
refusing: a settlement gives back what the turn did not use as soon as it is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from chatbot_security.conversation.model_providers import ChatMessage, system_prompt
from chatbot_security.platform.observability import METRICS_NAMESPACE as NAMESPACE
from chatbot_security.platform.settings import Settings

FRAMING_TOKENS_PER_MESSAGE = 16
FRAMING_TOKENS_PER_REQUEST = 64
MILLION = 1_000_000


def text_bound(text: str) -> int:
    """At most this many tokens: the UTF-8 bytes of ``text`` (a lone surrogate counts its three bytes)."""
    return len(text.encode("utf-8", "surrogatepass"))


def input_bound(system: str, history: Sequence[ChatMessage], message: str) -> int:
    """An upper bound of the input tokens of one model call: the system prompt, the history sent and the
    user's message, each with its framing."""
    texts = [system, *(entry.content for entry in history), message]
    return FRAMING_TOKENS_PER_REQUEST + sum(text_bound(text) + FRAMING_TOKENS_PER_MESSAGE for text in texts)


def worst_case(settings: Settings, history: Sequence[ChatMessage], message: str) -> int:
    """What a turn reserves: its input bound plus the most the model may write (``MODEL_MAX_TOKENS``)."""
    return input_bound(system_prompt(settings), history, message) + settings.model_max_tokens


def history_within(
    settings: Settings, history: Sequence[ChatMessage], message: str, reserved: int
) -> list[ChatMessage]:
    """The most recent part of ``history`` whose worst case still fits in ``reserved`` tokens: a history
    that grew between the claim and the call (a concurrent turn) is cut, never sent beyond the bound."""
    kept = list(history)
    while kept and worst_case(settings, kept, message) > reserved:
        kept.pop(0)
    return kept


def daily_limit(settings: Settings, kind: Literal["user", "anonymous"]) -> int:
    """The owner's tokens per UTC day: ``TOKENS_PER_DAY`` for a signed-in user, ``ANON_TOKENS_PER_DAY``
    for an anonymous session."""
    return settings.tokens_per_day if kind == "user" else settings.anon_tokens_per_day


def metric_model_name(settings: Settings) -> str:
    """The ``Model`` dimension of the usage metrics: ``MODEL_ID``, or the provider's name when it is
    empty (the template's daily spend alarm watches the same value)."""
    return settings.model_id or settings.model_provider


def estimated_cost_usd(settings: Settings, input_tokens: int, output_tokens: int) -> float:
    return (
        input_tokens * settings.model_input_price_per_mtok + output_tokens * settings.model_output_price_per_mtok
    ) / MILLION


def publish_usage(settings: Settings, input_tokens: int, output_tokens: int) -> None:
    """``ModelInputTokens``, ``ModelOutputTokens`` and ``ModelEstimatedCostUsd``, each with the dimension
    ``Model``. Published on their own (not through the shared Metrics object), so that the dimension is
    not added to the function's other metrics, whose alarms match the ``service`` dimension alone."""
    model = metric_model_name(settings)
    cost = estimated_cost_usd(settings, input_tokens, output_tokens)
    with single_metric(name="ModelInputTokens", unit=MetricUnit.Count, value=input_tokens, namespace=NAMESPACE) as m:
        m.add_dimension(name="Model", value=model)
    with single_metric(name="ModelOutputTokens", unit=MetricUnit.Count, value=output_tokens, namespace=NAMESPACE) as m:
        m.add_dimension(name="Model", value=model)
    with single_metric(name="ModelEstimatedCostUsd", unit=MetricUnit.NoUnit, value=cost, namespace=NAMESPACE) as m:
        m.add_dimension(name="Model", value=model)
