"""What a Bedrock answer says besides its text: token usage, and the guardrail's assessments (a blocked
input, a replaced output), for Converse and ConverseStream alike."""

from __future__ import annotations

from typing import Any

from chatbot_security.conversation.errors import ContentBlockedError
from chatbot_security.platform.observability import logger


def usage_of(response: dict[str, Any]) -> tuple[int, int]:
    usage = response.get("usage") or {}
    return int(usage.get("inputTokens") or 0), int(usage.get("outputTokens") or 0)


def check_input_not_blocked(response: dict[str, Any]) -> None:
    """Converse ends both an input and an output block with ``guardrail_intervened``; the trace tells them
    apart. A blocked input is the caller's to fix (422), not an answer to store."""
    trace = (response.get("trace") or {}).get("guardrail") or {}
    if any(_blocked(assessment) for assessment in (trace.get("inputAssessment") or {}).values()):
        logger.info("model input blocked by the guardrail")
        raise ContentBlockedError()


def output_replaced(response: dict[str, Any], text: str) -> bool:
    """Whether a ``guardrail_intervened`` answer was replaced. An answer whose every finding was only
    anonymised (names, addresses) is the answer itself; anything else (a block, a reason this code does not
    know, no trace at all, no text) counts as replaced: it fails closed."""
    trace = (response.get("trace") or {}).get("guardrail") or {}
    actions = set(_actions(trace.get("outputAssessments") or {}))
    return not text or "ANONYMIZED" not in actions or not actions <= {"ANONYMIZED", "NONE"}


def _actions(node: Any) -> list[str]:
    """Every policy finding's ``action`` in a guardrail assessment."""
    if isinstance(node, dict):
        own = [node["action"]] if isinstance(node.get("action"), str) else []
        return own + [action for value in node.values() for action in _actions(value)]
    if isinstance(node, list):
        return [action for value in node for action in _actions(value)]
    return []


def _blocked(node: Any) -> bool:
    """Whether any policy finding in a guardrail assessment has the action BLOCKED."""
    if isinstance(node, dict):
        return node.get("action") == "BLOCKED" or any(_blocked(value) for value in node.values())
    if isinstance(node, list):
        return any(_blocked(value) for value in node)
    return False
