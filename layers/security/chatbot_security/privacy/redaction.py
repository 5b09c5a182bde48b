"""Log redaction: the safety net that keeps tokens and personal data out of log records.

Code never logs message content or credentials on purpose; this masks them anyway if one slips into
any field of a record (message, extra keys, exception text).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from chatbot_security.privacy.pii import mask_pii

# Every string is cut to this many characters before it is redacted (and logged): the patterns'
# work is linear, this bounds it per field, and nobody reads a longer value in a log line anyway.
MAX_LOGGED_CHARS = 256

# Each pattern is linear in its input: a negative look-behind or a literal keeps a match attempt from
# starting inside a run that an earlier attempt already scanned, and a run that the rest of the pattern
# never needs to give back is possessive (``++``, ``*+``). tests/unit/test_redaction_patterns.py
# counts their work on crafted inputs of growing size.
PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Compact JWS/JWE (OIDC tokens): base64url segments joined by dots.
    (re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{2,}+(?:\.[A-Za-z0-9_-]*+){1,4}+"), "[REDACTED-TOKEN]"),
    # Anonymous session tokens (chatbot_security.identity.session_tokens), or what is left of one.
    (
        re.compile(r"\bcs1\.[0-9a-f-]{8,36}+(?:\.[0-9]{0,10}+)?+(?:\.[A-Za-z0-9_-]*+)?+"),
        "[REDACTED-TOKEN]",
    ),
    (re.compile(r"(?i)\b(bearer|basic)\s++[A-Za-z0-9._~+/=-]++"), r"\1 [REDACTED-TOKEN]"),
    # The local part cannot hold "@" and a domain label cannot hold ".": neither is ever given back.
    (
        re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]++@(?:[A-Za-z0-9-]*+\.(?=[A-Za-z0-9-]))++[A-Za-z]{2,}+"),
        "[REDACTED-EMAIL]",
    ),
    # Long digit runs with optional separators: card numbers, phone numbers, national identifiers.
    (re.compile(r"(?<![\w-])\+?\d(?:[ .-]?\d){7,22}(?![\w-])"), "[REDACTED-NUMBER]"),
    (re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"), "[REDACTED-IBAN]"),
)


def bound(text: str, limit: int = MAX_LOGGED_CHARS) -> str:
    """``text`` cut to at most ``limit`` characters at a white-space boundary, so that no half of a
    token or number (which the patterns would no longer recognise) is left at the end."""
    if len(text) <= limit:
        return text
    cut = limit
    if not text[cut].isspace():
        while cut > 0 and not text[cut - 1].isspace():
            cut -= 1
    # A number written in groups ("4111 1111 1111 1111", "415 555 2671") has white space inside it:
    # a cut there would leave its first groups, which no pattern recognises alone. Drop the whole
    # run of digits and separators that ends at the cut.
    end = cut
    while end > 0 and text[end - 1].isspace():
        end -= 1
    if end > 0 and (text[end - 1].isdigit() or text[end - 1] in _NUMBER_JOINERS):
        cut = end
        while cut > 0 and (text[cut - 1].isdigit() or text[cut - 1].isspace() or text[cut - 1] in _NUMBER_JOINERS):
            cut -= 1
    return text[:cut]


# What may join the groups of a number: separators, and the invisible characters PII detection ignores.
_NUMBER_JOINERS = frozenset("-./_()+\u200b\u200c\u200d\u2060\ufeff")


def redact_text(text: str) -> str:
    """Bound, then mask credentials first, then every kind of personal data the PII detectors know
    (which adds what the broad patterns above miss, such as IPv6 addresses), so logs are held to the
    same list of kinds as stored messages. A cut text says how many characters it lost."""
    kept = bound(text)
    dropped = len(text) - len(kept)
    for pattern, replacement in PATTERNS:
        kept = pattern.sub(replacement, kept)
    kept = mask_pii(kept)
    return f"{kept}[CUT {dropped} CHARS]" if dropped else kept


def redact_value(value: Any) -> Any:
    """Redact strings anywhere inside a JSON-like value, mapping keys included."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {redact_text(key) if isinstance(key, str) else key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(item) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    # Anything else would be written as its str() by the JSON encoder (an exception object in
    # Powertools' stack_trace, for one): redact that text.
    return redact_text(str(value))
