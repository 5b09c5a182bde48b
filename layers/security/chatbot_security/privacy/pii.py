"""Detectors for personal data in free text, and masking (docs/contract.md section 6, rule 9).

One source of truth for what counts as PII: the chat function masks messages with it before the
model sees them and before they are stored, and the log redaction can use the same detectors.

Each detector finds candidates with a regular expression and then validates them, so that look-alikes
stay untouched: a card number must pass the Luhn check, an IBAN its country length and mod-97
checksum, an SSN the ranges the SSA never assigns, an IP address :mod:`ipaddress`. Every pattern is
anchored by a look-behind, so a long run of similar characters is scanned once, not once per start.

Detection runs on a normalised copy of the text, so that look-alike characters cannot hide a value:
each character in NFKC form (full-width digits become ASCII), every decimal digit of any script as its
ASCII digit, every Unicode space separator (no-break, narrow, thin ...) as an ASCII space, and the
zero-width characters removed. An index map from the copy back to the original gives the span of the
original to mask, zero-width characters and all.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

from chatbot_security.privacy import pii_numbers

PiiKind = Literal["email", "iban", "card", "ssn", "ip", "phone"]

PLACEHOLDERS: dict[PiiKind, str] = {
    "email": "[EMAIL]",
    "iban": "[IBAN]",
    "card": "[CARD]",
    "ssn": "[SSN]",
    "ip": "[IP]",
    "phone": "[PHONE]",
}


@dataclass(frozen=True)
class PiiMatch:
    kind: PiiKind
    start: int
    end: int


# -- normalisation ----------------------------------------------------------------------------
# Invisible characters that could split a value: zero-width space, non-joiner and joiner, word joiner,
# the invisible operators, BOM, Mongolian vowel separator, soft hyphen.
ZERO_WIDTH = frozenset("\u200b\u200c\u200d\u2060\u2061\u2062\u2063\u2064\ufeff\u180e\u00ad")


def normalise(text: str) -> tuple[str, list[int]]:
    """The copy the detectors read, and for each of its characters (plus one past the end) the index
    of the original character it comes from."""
    if text.isascii():
        return text, list(range(len(text) + 1))
    characters: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        if char.isascii():
            replacement = char
        elif char in ZERO_WIDTH:
            continue
        elif unicodedata.category(char) == "Zs":
            replacement = " "
        elif char.isdecimal():
            replacement = str(unicodedata.decimal(char))
        else:
            replacement = unicodedata.normalize("NFKC", char)
            if replacement.isdecimal() and not replacement.isascii():
                replacement = str(unicodedata.decimal(replacement))
        characters.append(replacement)
        origin.extend([index] * len(replacement))
    origin.append(len(text))
    return "".join(characters), origin


# -- email ------------------------------------------------------------------------------------
_EMAIL = re.compile(r"(?<![\w.%+-])[\w.%+-]+@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,63}(?![\w-])")


def _emails(text: str) -> Iterator[tuple[int, int]]:
    for match in _EMAIL.finditer(text):
        yield match.span()


_DETECTORS: tuple[tuple[PiiKind, Callable[[str], Iterator[tuple[int, int]]]], ...] = (
    ("email", _emails),
    ("iban", pii_numbers.ibans),
    ("card", pii_numbers.cards),
    ("ssn", pii_numbers.ssns),
    ("ip", pii_numbers.ips),
    ("phone", pii_numbers.phones),
)


_DIGIT_OR_AT = re.compile(r"[\d@\uff20\ufe6b]")


def could_hold_pii(text: str) -> bool:
    """Cheap pre-check: every detector needs a digit (of any script) or an "@" (or its full-width and
    small forms), except hex-only IPv6 (two colons at least, full-width ones too)."""
    return _DIGIT_OR_AT.search(text) is not None or text.count(":") + text.count("\uff1a") >= 2


def find_pii(text: str) -> list[PiiMatch]:
    """Every detected item, in text order, without overlaps, as spans of ``text`` itself."""
    if not could_hold_pii(text):
        return []
    normalised, origin = normalise(text)
    found: list[PiiMatch] = []
    for kind, detect in _DETECTORS:
        for start, end in detect(normalised):
            if all(end <= other.start or start >= other.end for other in found):
                found.append(PiiMatch(kind, start, end))
    spans = (PiiMatch(match.kind, origin[match.start], origin[match.end - 1] + 1) for match in found)
    return sorted(spans, key=lambda match: match.start)


def mask_pii(text: str) -> str:
    """``text`` with each detected item replaced by a placeholder such as ``[EMAIL]``."""
    if not text or not could_hold_pii(text):
        return text
    parts: list[str] = []
    position = 0
    for match in find_pii(text):
        parts.append(text[position : match.start])
        parts.append(PLACEHOLDERS[match.kind])
        position = match.end
    parts.append(text[position:])
    return "".join(parts)
