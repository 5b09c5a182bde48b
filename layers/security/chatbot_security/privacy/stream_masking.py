"""PII masking of an answer that arrives in chunks (docs/contract.md section 6, rule 9, on a stream).

A card number, phone number or email split across model chunks must never reach the client unmasked,
and what is sent must never have to be taken back. :class:`StreamMasker` therefore only releases text
whose masking can no longer change, whatever the model writes next:

    Invariant. After chunks c1..cj have been fed, the text released so far is a prefix of
    ``mask_pii(c1 + ... + cj + x)`` for every continuation ``x``; after :meth:`StreamMasker.finish`, it is
    exactly ``mask_pii(c1 + ... + cn)``.

How. Every detector of :mod:`chatbot_security.privacy.pii` matches a bounded stretch of (normalised) text,
except the parts of an email and of an IPv6 zone that contain no whitespace. The longest bounded match is a
card-like digit run: a first digit and 38 more, each after a separator of up to two characters, 115
characters; the look-arounds add 3 on either side. So:

- the last word (the text after the last whitespace) is always held: an email or address may still grow;
- when the :data:`WINDOW` characters before that word hold no digit (of any script), no detector can
  reach across the whitespace in front of it (every match that can hold whitespace begins with digits
  within its first four characters), so everything up to the last word is released;
- otherwise the last :data:`WINDOW` characters before the last word are held too, and the cut moves back
  further to the start of any match it would split.

Released text is masked with the matches found on the held text plus a :data:`CONTEXT` of what was
released before it (what look-behinds and the "SSN: 123456789" keyword need), so each chunk costs
O(CONTEXT + held) work: a whole answer O(length x window), never quadratic. The held text is bounded by
WINDOW plus the last word (and a match that started before the cut); a word without whitespace is held
until it ends, however long (its length is bounded by the model's token cap).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from chatbot_security.privacy.pii import PLACEHOLDERS, ZERO_WIDTH, PiiMatch, find_pii, normalise

#: Characters (zero-width ones not counted) held before the last word once a digit is near: the longest
#: bounded match the detectors allow (115) plus their look-arounds, rounded up.
WINDOW = 128
#: Characters of released text kept for the detectors' look-behinds and keywords.
CONTEXT = 256

_LAST_WORD = re.compile(r"\S*\Z")
_LONG_SPACE = re.compile(r"(\s{3})\s+(\s{3})")
_ZERO_WIDTH = re.compile("[" + "".join(sorted(ZERO_WIDTH)) + "]")
_DIGIT = re.compile(r"\d")


class StreamMasker:
    """Feed it the model's chunks; it returns what may be sent now. ``finish()`` returns the rest."""

    def __init__(self, enabled: bool = True, find: Callable[[str], list[PiiMatch]] = find_pii) -> None:
        self._enabled = enabled
        self._find = find
        self._context = ""
        self._held = ""

    @property
    def held(self) -> int:
        """Characters received but not yet released."""
        return len(self._held)

    def feed(self, chunk: str) -> str:
        if not self._enabled:
            return chunk
        self._held += chunk
        return self._release(final=False)

    def finish(self) -> str:
        return self._release(final=True) if self._enabled else ""

    def _release(self, *, final: bool) -> str:
        text = self._context + self._held
        base = len(self._context)
        if not self._held:
            return ""
        matches = [match for match in self._find(text) if match.start >= base] if _has_trigger(text) else []
        cut = len(text) if final else _cut(text, base, matches)
        if cut <= base:
            return ""
        released = _masked(text, base, cut, matches)
        self._context = _reduced(self._context + text[base:cut])
        self._held = text[cut:]
        return released


def _has_trigger(text: str) -> bool:
    """What :func:`pii.could_hold_pii` asks, skipped for the common chunk of prose."""
    return any(char.isdigit() or char in "@\uff20\ufe6b:\uff1a" for char in text) or not text.isascii()


def _cut(text: str, base: int, matches: list[PiiMatch]) -> int:
    """Where the text may be cut: nothing after it can change the masking of what comes before."""
    last_word = _LAST_WORD.search(text, base)
    end = last_word.start() if last_word else len(text)
    cut = end
    start = _window_start(text, end)
    if _DIGIT.search(normalise(text[max(0, start) : end])[0]):
        cut = start
    for match in matches:
        if match.start < cut < match.end:
            cut = match.start
    return cut


def _window_start(text: str, end: int) -> int:
    """The index WINDOW visible characters before ``end`` (zero-width ones do not count)."""
    counted, index = 0, end
    while index > 0 and counted < WINDOW:
        index -= 1
        counted += text[index] not in ZERO_WIDTH
    return index if counted == WINDOW else -1


def _masked(text: str, base: int, cut: int, matches: list[PiiMatch]) -> str:
    parts: list[str] = []
    position = base
    for match in matches:
        if match.end <= cut:
            parts += [text[position : match.start], PLACEHOLDERS[match.kind]]
            position = match.end
    parts.append(text[position:cut])
    return "".join(parts)


def _reduced(released: str) -> str:
    """The last CONTEXT characters of the released text as the detectors see them: zero-width characters
    dropped (normalisation drops them anyway) and whitespace runs cut to their first and last three
    characters (no detector tells a run of seven from a longer one), starting after a whitespace so that
    no detector starts a match in the middle of a cut word."""
    reduced = _LONG_SPACE.sub(r"\1\2", _ZERO_WIDTH.sub("", released))
    if len(reduced) <= CONTEXT:
        return reduced
    reduced = reduced[-CONTEXT:]
    space = re.search(r"\s", reduced)
    return reduced[space.start() :] if space and space.start() < CONTEXT // 2 else reduced
