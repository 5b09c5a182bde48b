"""A small deterministic guardrail for local runs (``MODERATION=guardrail`` in chatbot-local).

It behaves like the guardrail the template creates, on a handful of documented examples only
(docs/local-development.md), so that a developer sees each outcome of moderation without AWS:

* a question containing :data:`BLOCK_QUESTION` is refused (422 ``content_blocked``);
* an answer containing :data:`BLOCK_ANSWER` is replaced by the refusal text (``"moderated": true``); with
  the echo model, a question containing it passes and its echo is blocked;
* an access key id (``AKIA`` and 16 characters) or ``password:`` refuses a question and an answer;
* the names in :data:`KNOWN_NAMES` become ``{NAME}``, :data:`KNOWN_ADDRESS` becomes ``{ADDRESS}``.

It is no moderation at all for anything else: the settings accept it only in local runs.
"""

from __future__ import annotations

import re

from chatbot_security.conversation.errors import ContentBlockedError

BLOCK_QUESTION = "fake-guardrail:block-question"
BLOCK_ANSWER = "fake-guardrail:block-answer"
KNOWN_NAMES = ("Jane Doe", "John Smith")
KNOWN_ADDRESS = "221B Baker Street"

_CREDENTIAL = re.compile(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b|password\s*[:=]", re.IGNORECASE)
_NAMES = re.compile("|".join(re.escape(name) for name in KNOWN_NAMES), re.IGNORECASE)
_ADDRESS = re.compile(re.escape(KNOWN_ADDRESS), re.IGNORECASE)


class FakeGuardrail:
    checks_answers = True

    def __init__(self, refusal_text: str) -> None:
        self._refusal = refusal_text

    def check_input(self, text: str, time_left: float | None = None) -> str:
        if BLOCK_QUESTION in text.lower() or _CREDENTIAL.search(text):
            raise ContentBlockedError()
        return _anonymise(text)

    def check_output(self, text: str, time_left: float | None = None) -> tuple[str, bool]:
        lowered = text.lower()
        if BLOCK_ANSWER in lowered or BLOCK_QUESTION in lowered or _CREDENTIAL.search(text):
            return self._refusal, True
        return _anonymise(text), False


def _anonymise(text: str) -> str:
    return _ADDRESS.sub("{ADDRESS}", _NAMES.sub("{NAME}", text))
