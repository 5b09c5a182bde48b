"""What an OpenAI-compatible answer says besides its text: token usage (the endpoint's own counts, else
an upper bound), and the largest answer read."""

from __future__ import annotations

from typing import Any

from chatbot_security.conversation.model_providers.base import estimate_tokens

MAX_ANSWER_BYTES = 1024 * 1024


def usage_of(answer: Any, body: dict[str, Any], text: str) -> tuple[int, int]:
    """The endpoint's own counts; where it gives none, an upper bound (:func:`estimate_tokens`)."""
    usage = answer.get("usage") if isinstance(answer, dict) else None
    usage = usage if isinstance(usage, dict) else {}
    prompt = _count(usage.get("prompt_tokens"))
    completion = _count(usage.get("completion_tokens"))
    input_tokens = prompt if prompt is not None else estimate_tokens(*(m["content"] for m in body["messages"]))
    output_tokens = completion if completion is not None else estimate_tokens(text)
    return input_tokens, output_tokens


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
