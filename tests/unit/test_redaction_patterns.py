"""No pattern that scans text for tokens or personal data can backtrack catastrophically.

Log redaction and PII masking run regular expressions over text that an attacker writes. A pattern
that backtracks can take seconds on a few kilobytes (a quadratic email pattern took 20 s on 200 KB, an
exponential phone pattern minutes on 60 digits) and run the function into its timeout. The work is
counted, not timed (tests/support/regex_work.py runs each pattern's parse tree with ``re``'s semantics
and counts every step), on crafted inputs of growing size: multiplying the input by 4 must multiply
the work by about 4, never by 16. The 1 MB wall-clock comparison lives in
benchmarks/bench_redaction.py."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest
from support.regex_work import RegexWork, WorkLimitExceeded

from chatbot_security.privacy import pii, redaction, text_policy

SMALL, LARGE = 128, 512
LINEAR_GROWTH = 5.0  # 4 for linear work (with some slack for fixed costs), 16 for quadratic

# Every module-level pattern, so that a new one cannot escape the check.
PATTERNS = [
    *(pattern for pattern, _ in redaction.PATTERNS),
    *(value for module in (pii, text_policy) for value in vars(module).values() if isinstance(value, re.Pattern)),
]
# Runs of the characters the patterns are made of, alone and after the prefixes that open a match.
PUMPS = ["a", "A", "1", "0", " ", "1 ", "1.", "1-", "1/", "1:", "a.", "a-", "a@", "a@a.", "a:", ":", "+1", "+1 ",
         "A1", "11 ", "1.1.", "eyJa-", "eyJaa.", "cs1.", "bearer ", "(1)", "1\u00a0", "\uff11"]  # fmt: skip
OPENED = [("+", "1"), ("+", "1 "), ("+1", "(1)"), ("00", "1"), ("x@", "a."), ("x@", "a-"), ("x@", "a@a."),
          ("DE89", "1"), ("DE89", "A "), ("eyJ", "a-"), ("eyJaa", ".a"), ("cs1.", "a"), ("1", "a1:"),
          ("(415) ", "1"), ("0", "1 ")]  # fmt: skip
FAMILIES = [("", pump) for pump in PUMPS] + OPENED


def crafted(prefix: str, pump: str, size: int) -> str:
    return prefix + pump * (size // len(pump)) + "!"


def pattern_id(pattern: re.Pattern[str]) -> str:
    return pattern.pattern[:40]


@pytest.mark.parametrize("pattern", PATTERNS, ids=pattern_id)
def test_no_pattern_does_more_than_linear_work_on_crafted_input(pattern: re.Pattern[str]) -> None:
    work = RegexWork(pattern, limit=2_000_000)
    superlinear: list[tuple[str, str, Sequence[object]]] = []
    for prefix, pump in FAMILIES:
        steps = []
        try:
            for size in (SMALL, LARGE):
                work.finditer(crafted(prefix, pump, size))
                steps.append(work.steps)
        except WorkLimitExceeded:
            superlinear.append((prefix, pump, [*steps, "over the limit"]))
            continue
        if steps[1] > LINEAR_GROWTH * steps[0]:
            superlinear.append((prefix, pump, steps))
    assert superlinear == []


@pytest.mark.parametrize("pattern", PATTERNS, ids=pattern_id)
def test_the_work_counter_finds_what_re_finds(pattern: re.Pattern[str]) -> None:
    # The instrument models the patterns it measures: same matches as the real engine
    work = RegexWork(pattern)
    samples = [crafted(prefix, pump, 24) for prefix, pump in FAMILIES]
    samples += ["mail jane.doe@example.com. or +44 20 7946 0958, card 4111 1111 1111 1111",
                "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln cs1.0c3e9e5e-1b7a-4f1e-9c55-3b1f0c0d9a11.1767225600.abc",
                "Bearer abc.def IBAN GB82 WEST 1234 5698 7654 32 ssn 078-05-1120 ip 2001:db8::1 192.0.2.1"]  # fmt: skip
    for text in samples:
        assert work.finditer(text) == [match.span() for match in pattern.finditer(text)], text


def test_the_counter_tells_quadratic_from_linear() -> None:
    # The check itself: the unanchored email pattern that redaction used is caught
    unanchored = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
    anchored = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]++@")
    counts: dict[re.Pattern[str], list[int]] = {}
    for pattern in (unanchored, anchored):
        work = RegexWork(pattern)
        counts[pattern] = []
        for size in (SMALL, LARGE):
            work.finditer(crafted("", "a", size))
            counts[pattern].append(work.steps)
    assert counts[unanchored][1] > 10 * counts[unanchored][0]
    assert counts[anchored][1] < LINEAR_GROWTH * counts[anchored][0]


def test_every_logged_string_is_bounded_before_redaction() -> None:
    long_text = "word " * 200 + "tail-" * 2000
    redacted = redaction.redact_text(long_text)
    assert len(redacted) <= redaction.MAX_LOGGED_CHARS + len("[CUT 99999 CHARS]")
    assert redacted.endswith(f"[CUT {len(long_text) - 255} CHARS]")


@pytest.mark.parametrize(
    "secret",
    ["4111 1111 1111 1111", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl", "jane.doe@example.com"],
)
def test_a_value_cut_by_the_bound_leaves_no_recognisable_half(secret: str) -> None:
    for offset in range(len(secret) + 1):
        text = "x " * ((redaction.MAX_LOGGED_CHARS - offset) // 2) + secret + " more"
        redacted = redaction.redact_text(text)
        assert re.search(r"\d(?: ?\d){4}", redacted) is None  # at most a card's first group (its BIN)
        assert secret[:6] not in redacted or secret[0].isdigit()
