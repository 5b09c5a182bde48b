"""Log redaction: the safety net that keeps tokens and personal data out of log records.

Code never logs message content or credentials on purpose; this masks them anyway if one slips into
any field of a record (message, extra keys, exception text).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from chatbot_security.pii import mask_pii

REDACTED = "[REDACTED]"

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Compact JWS/JWE (OIDC tokens): base64url segments joined by dots.
    (re.compile(r"\beyJ[A-Za-z0-9_-]{2,}(?:\.[A-Za-z0-9_-]*){1,4}"), "[REDACTED-TOKEN]"),
    # Anonymous session tokens (chatbot_security.session_tokens), or what is left of one.
    (re.compile(r"\bcs1\.[0-9a-f-]{8,36}(?:\.[0-9]{0,10})?(?:\.[A-Za-z0-9_-]*)?"), "[REDACTED-TOKEN]"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 [REDACTED-TOKEN]"),
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "[REDACTED-EMAIL]"),
    # Long digit runs with optional separators: card numbers, phone numbers, national identifiers.
    (re.compile(r"(?<![\w-])\+?\d(?:[ .-]?\d){7,22}(?![\w-])"), "[REDACTED-NUMBER]"),
    (re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"), "[REDACTED-IBAN]"),
)


def redact_text(text: str) -> str:
    """Mask credentials first, then every kind of personal data the PII detectors know (which adds
    what the broad patterns above miss, such as IPv6 addresses), so logs are held to the same list of
    kinds as stored messages."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return mask_pii(text)


def redact_value(value: Any) -> Any:
    """Redact strings anywhere inside a JSON-like value."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(item) for item in value]
    return value
