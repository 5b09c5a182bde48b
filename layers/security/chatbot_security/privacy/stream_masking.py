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
- otherwise the last :data:`WINDOW` characters before the last word are held too;
- either way the cut then moves back to the start of any detector's finding it would split, masked or not
  (of two overlapping findings the earlier detector's is masked, and which one that is can change with
  the text that follows). What follows the cut can only change findings that reach past the last word's
  start, which all start after the cut; any chain of overlapping findings from one of those to a match
  before the cut would have to contain the cut, and none does.

Released text is masked with the matches found on the held text plus a :data:`CONTEXT` of what was
released before it (what look-behinds and the "SSN: 123456789" keyword need), so each chunk costs
O(CONTEXT + held) work: a whole answer O(length x window), never quadratic. Near digits, text is released
in steps of :data:`RELEASE_STEP` characters, so the detectors run once a step rather than once a chunk.

One deliberate difference: :func:`pii.mask_pii` looks for PII only when the whole text holds a decimal
digit, an "@" or two colons, so digits that only normalisation reveals (circled or superscript ones) are
masked only when such a character appears anywhere else. A stream cannot know yet whether one will, so it
masks them in any case (fail closed); only then can its output differ from ``mask_pii``'s. The held text is bounded by
WINDOW plus the last word (and a match that started before the cut); a word without whitespace is held
until it ends, however long (its length is bounded by the model's token cap).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from chatbot_security.privacy import pii
from chatbot_security.privacy.pii import PLACEHOLDERS, ZERO_WIDTH, PiiKind, PiiMatch, normalise

#: Characters (zero-width ones not counted) held before the last word once a digit is near: the longest
#: bounded match the detectors allow (115) plus their look-arounds, rounded up.
WINDOW = 128
#: Characters of released text kept for the detectors' look-behinds and keywords.
CONTEXT = 256
#: Near digits, text is released in steps of at least this many characters, so that the detectors run
#: once per step rather than once per chunk.
RELEASE_STEP = 16

_LAST_WORD = re.compile(r"\S*\Z")
_LONG_SPACE = re.compile(r"(\s{3})\s+(\s{3})")
_ZERO_WIDTH = re.compile("[" + "".join(sorted(ZERO_WIDTH)) + "]")
_DIGIT = re.compile(r"\d")


#: A finding: the detector's kind, its span in the normalised text and its span in the text itself.
Finding = tuple[PiiKind, int, int, int, int]


def findings(text: str) -> list[Finding]:
    """Every span each detector finds, in detector order, before overlaps are resolved."""
    normalised, origin = normalise(text)
    return [
        (kind, start, end, origin[start], origin[end - 1] + 1)
        for kind, detect in pii._DETECTORS  # the detectors themselves: the same ones mask_pii runs
        for start, end in detect(normalised)
    ]


def _resolved(found: list[Finding]) -> list[PiiMatch]:
    """:func:`pii.find_pii`'s rule: an earlier detector's finding wins where two overlap."""
    kept: list[Finding] = []
    for finding in found:
        if all(finding[2] <= other[1] or finding[1] >= other[2] for other in kept):
            kept.append(finding)
    return sorted((PiiMatch(kind, start, end) for kind, _, _, start, end in kept), key=lambda match: match.start)


class StreamMasker:
    """Feed it the model's chunks; it returns what may be sent now. ``finish()`` returns the rest."""

    def __init__(self, enabled: bool = True, detect: Callable[[str], list[Finding]] = findings) -> None:
        self._enabled = enabled
        self._detect = detect
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
        cut = len(text) if final else _tentative_cut(text, base)
        if cut < base + (1 if final else RELEASE_STEP) and not (cut > base and _is_prose(text, base, cut)):
            return ""  # nothing (or too little to be worth the detectors' work) can be released yet
        matches: list[PiiMatch] = []
        if _TRIGGER.search(text):  # fail closed: any digit of any script, "@", ":" or non-ASCII text
            found = self._detect(text)
            matches = [match for match in _resolved(found) if match.start >= base]
            cut = cut if final else _around(cut, [finding for finding in found if finding[3] >= base])
        if cut <= base:
            return ""
        released = _masked(text, base, cut, matches)
        self._context = _reduced(self._context + text[base:cut])
        self._held = text[cut:]
        return released


_TRIGGER = re.compile(r"[\d@:\uff20\ufe6b\uff1a]|[^\x00-\x7f]")


def _is_prose(text: str, base: int, cut: int) -> bool:
    """Plain ASCII without a digit, "@" or ":" up to the cut: released at once, word by word."""
    return _TRIGGER.search(text, base, cut) is None


def _tentative_cut(text: str, base: int) -> int:
    """The cut before looking at findings: the last word's start, or WINDOW characters before it when a
    digit is near."""
    last_word = _LAST_WORD.search(text, base)
    end = last_word.start() if last_word else len(text)
    start = _window_start(text, end)
    window = text[max(0, start) : end]
    near = _DIGIT.search(window) if window.isascii() else _DIGIT.search(normalise(window)[0])
    return start if near else end


def _around(cut: int, found: list[Finding]) -> int:
    """Back to the start of any finding the cut would split (masked or not: which of two overlapping
    findings is masked can change with the text that follows), until none is split."""
    moved = True
    while moved:
        moved = False
        for _, _, _, start, end in found:
            if start < cut < end:
                cut, moved = start, True
    return cut


def _window_start(text: str, end: int) -> int:
    """The index WINDOW visible characters before ``end`` (zero-width ones do not count), or -1."""
    start = end - WINDOW
    while start >= 0:
        invisible = len(_ZERO_WIDTH.findall(text, start, end))
        if end - start - invisible >= WINDOW:
            return start
        start = end - WINDOW - invisible
    return -1


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
