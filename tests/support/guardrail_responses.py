"""ApplyGuardrail responses as the Bedrock runtime API reference describes them (action NONE |
GUARDRAIL_INTERVENED, outputs[].text, assessments[] per policy); the Stubber checks every one against
botocore's model of the API."""

from __future__ import annotations

from typing import Any

BLOCKED_INPUT_MESSAGE = "Sorry, I can't help with that request."

USAGE: dict[str, Any] = {
    "topicPolicyUnits": 1,
    "contentPolicyUnits": 1,
    "wordPolicyUnits": 1,
    "sensitiveInformationPolicyUnits": 1,
    "sensitiveInformationPolicyFreeUnits": 0,
    "contextualGroundingPolicyUnits": 0,
}
COVERAGE = {"textCharacters": {"guarded": 48, "total": 48}}
METRICS = {"guardrailProcessingLatency": 212, "usage": USAGE, "guardrailCoverage": COVERAGE}

PASSED = {"usage": USAGE, "action": "NONE", "outputs": [], "assessments": [{"invocationMetrics": METRICS}]}

INSULT_BLOCKED = {
    "usage": USAGE,
    "action": "GUARDRAIL_INTERVENED",
    "actionReason": "Guardrail blocked.",
    "outputs": [{"text": BLOCKED_INPUT_MESSAGE}],
    "assessments": [
        {
            "contentPolicy": {
                "filters": [
                    {
                        "type": "INSULTS",
                        "confidence": "HIGH",
                        "filterStrength": "HIGH",
                        "action": "BLOCKED",
                        "detected": True,
                    }
                ]
            },
            "invocationMetrics": METRICS,
        }
    ],
    "guardrailCoverage": COVERAGE,
}

NAMES_ANONYMISED = {
    "usage": USAGE,
    "action": "GUARDRAIL_INTERVENED",
    "actionReason": "Guardrail masked.",
    "outputs": [{"text": "My name is {NAME} and I live at {ADDRESS}."}],
    "assessments": [
        {
            "sensitiveInformationPolicy": {
                "piiEntities": [
                    {"match": "Jane Doe", "type": "NAME", "action": "ANONYMIZED", "detected": True},
                    {"match": "12 Rue de la Paix", "type": "ADDRESS", "action": "ANONYMIZED", "detected": True},
                ],
                "regexes": [],
            },
            "invocationMetrics": METRICS,
        }
    ],
    "guardrailCoverage": COVERAGE,
}

ACCESS_KEY_BLOCKED_WITH_A_NAME = {
    "usage": USAGE,
    "action": "GUARDRAIL_INTERVENED",
    "actionReason": "Guardrail blocked.",
    "outputs": [{"text": BLOCKED_INPUT_MESSAGE}],
    "assessments": [
        {
            "sensitiveInformationPolicy": {
                "piiEntities": [
                    {"match": "Jane Doe", "type": "NAME", "action": "ANONYMIZED", "detected": True},
                    {"match": "AKIAIOSFODNN7EXAMPLE", "type": "AWS_ACCESS_KEY", "action": "BLOCKED", "detected": True},
                ],
                "regexes": [],
            },
            "invocationMetrics": METRICS,
        }
    ],
    "guardrailCoverage": COVERAGE,
}

DENIED_TOPIC_IN_ANSWER = {
    "usage": USAGE,
    "action": "GUARDRAIL_INTERVENED",
    "actionReason": "Guardrail blocked.",
    "outputs": [{"text": "Sorry, I can't share that answer."}],
    "assessments": [
        {
            "topicPolicy": {
                "topics": [{"name": "investment advice", "type": "DENY", "action": "BLOCKED", "detected": True}]
            },
            "invocationMetrics": METRICS,
        }
    ],
    "guardrailCoverage": COVERAGE,
}


def converse_reply(text: str, stop_reason: str = "end_turn", trace: Any = None) -> dict[str, Any]:
    """A Converse response; ``trace`` is the guardrail trace Converse returns with ``trace`` enabled."""
    reply: dict[str, Any] = {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": stop_reason,
        "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15},
        "metrics": {"latencyMs": 100},
    }
    if trace is not None:
        reply["trace"] = trace
    return reply


def converse_trace(*, input_action: str = "NONE", output_action: str = "NONE") -> dict[str, Any]:
    """The guardrail trace of a Converse response (``guardrailConfig.trace`` enabled), guardrail gr-1."""

    def assessment(action: str) -> dict[str, Any]:
        return {
            "contentPolicy": {"filters": [{"type": "VIOLENCE", "confidence": "HIGH", "filterStrength": "HIGH",
                                           "action": action, "detected": action != "NONE"}]},
            "sensitiveInformationPolicy": {"piiEntities": [], "regexes": []},
        }  # fmt: skip

    return {"guardrail": {"inputAssessment": {"gr-1": assessment(input_action)},
                          "outputAssessments": {"gr-1": [assessment(output_action)]}}}  # fmt: skip
