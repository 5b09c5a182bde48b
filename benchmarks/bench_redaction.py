"""Redaction and PII masking on 1 MB of crafted input: linear, as a ratio against ``str.replace``.

    .venv/bin/python benchmarks/bench_redaction.py [--megabytes N] [--bound R]

Log redaction and PII masking run regular expressions over text an attacker writes; a pattern that
backtracks takes seconds on kilobytes (docs/data-protection.md). For each pattern of
``chatbot_security.privacy.redaction`` and ``chatbot_security.privacy.pii``, and for the whole of ``mask_pii``, the
redacting log formatter and ``redact_text`` on an unbounded string, this script feeds 1 MB of each
crafted input (runs of the characters the patterns are made of, after the prefixes that open a match)
and prints the slowest time as a ratio against a plain ``str.replace`` over the same input (of the
input's most frequent character, so that it writes every character once: one linear pass over a
megabyte). Budget: every ratio at most ``--bound`` (default 5000: a regular expression that tries
each position does tens to hundreds of times more work per character than ``str.replace``, a
quadratic one about a million times more at this size, an exponential one never finishes); a whole
pipeline (``mask_pii``, the formatter) gets that budget once per pattern it runs. Each target runs in
its own process with a time limit, so a pattern that never finishes is a MISS, not a hang. The exit
status is non-zero on any MISS.

The unit test tests/unit/test_redaction_patterns.py proves the same property by counting steps on
small inputs; this measures it at the size of a real attack.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "security")]

# (prefix, pump): crafted texts are prefix + pump repeated to the size + "!".
FAMILIES = [
    ("", "a"), ("", "A"), ("", "1"), ("", " "), ("", "1 "), ("", "1."), ("", "1-"), ("", "1/"), ("", "1:"),
    ("", "a."), ("", "a-"), ("", "a@"), ("", "a@a."), ("", ":"), ("", "+1"), ("", "+1 "), ("", "A1"),
    ("", "1.1."), ("", "eyJa-"), ("", "eyJaa."), ("", "cs1."), ("", "bearer "), ("", "(1)"), ("", "1\u00a0"),
    ("", "\uff11"), ("+", "1"), ("00", "1"), ("x@", "a."), ("x@", "a-"), ("DE89", "1"), ("DE89", "A "),
    ("eyJ", "a-"), ("(415) ", "1"), ("0", "1 "),
]  # fmt: skip
TIME_LIMIT_SECONDS = 120.0


def crafted(prefix: str, pump: str, size: int) -> str:
    return prefix + pump * ((size - len(prefix)) // len(pump)) + "!"


def targets() -> dict[str, tuple[Callable[[str], object], int]]:
    """Name -> (the work measured on one text, how many pattern passes it makes over the text)."""
    import logging

    from chatbot_security.platform.observability import RedactingFormatter
    from chatbot_security.privacy import pii, redaction

    found: dict[str, tuple[Callable[[str], object], int]] = {}
    for index, (pattern, replacement) in enumerate(redaction.PATTERNS):
        found[f"redaction[{index}] {pattern.pattern[:36]}"] = (functools.partial(pattern.sub, replacement), 1)
    pii_patterns = [value for _, value in sorted(vars(pii).items()) if isinstance(value, re.Pattern)]
    for name, value in sorted(vars(pii).items()):
        if isinstance(value, re.Pattern):
            found[f"pii.{name}"] = (match_counter(value), 1)
    formatter = RedactingFormatter()

    def format_record(text: str) -> object:
        record = logging.LogRecord("bench", logging.INFO, __file__, 1, text, None, None)
        record.field = text  # an extra key as well as the message
        return formatter.format(record)

    def unbounded_redaction(text: str) -> object:
        for pattern, replacement in redaction.PATTERNS:
            text = pattern.sub(replacement, text)
        return pii.mask_pii(text)

    passes = len(redaction.PATTERNS) + len(pii_patterns)
    found["mask_pii (whole)"] = (pii.mask_pii, len(pii_patterns))
    found["RedactingFormatter (whole record)"] = (format_record, passes)
    found["redaction patterns + mask_pii, unbounded"] = (unbounded_redaction, passes)
    return found


def match_counter(pattern: re.Pattern[str]) -> Callable[[str], int]:
    return lambda text: sum(1 for _ in pattern.finditer(text))


def replacer(common: str) -> Callable[[str], str]:
    """``str.replace`` of ``common`` all over a text: one write per character, as a substitution does."""
    return lambda text: text.replace(common, "#" if common != "#" else "%")


def seconds(work: Callable[[str], object], text: str, repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        work(text)
        runs.append(time.perf_counter() - started)
    return min(runs)


def measure_one(name: str, size: int) -> dict[str, float]:
    """Run in a child: the slowest family's time for ``name`` and the same text's ``str.replace``."""
    work, _ = targets()[name]
    worst = {"seconds": 0.0, "baseline": 1.0}
    for prefix, pump in FAMILIES:
        text = crafted(prefix, pump, size)
        spent = seconds(work, text, repeats=1)
        common = pump[0]  # replaced all over the text: one write per character, as a substitution does
        baseline = seconds(replacer(common), text, repeats=5)
        if spent / baseline > worst["seconds"] / worst["baseline"]:
            worst = {"seconds": spent, "baseline": baseline, "family": FAMILIES.index((prefix, pump))}
    return worst


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--megabytes", type=float, default=1.0)
    parser.add_argument("--bound", type=float, default=5000.0, help="largest ratio to str.replace that passes")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = int(args.megabytes * 1_000_000)
    if args.one:
        print(json.dumps(measure_one(args.one, size)))
        return 0

    print(f"{args.megabytes:g} MB of crafted input per family, {len(FAMILIES)} families; ratio = slowest time / ")
    print(f"str.replace over the same text; budget: {args.bound:g}x per pattern pass over the text")
    misses = 0
    ratios = []
    for name, (_, passes) in targets().items():
        budget = args.bound * passes
        try:
            child = subprocess.run(  # noqa: S603 - this script, with a target name it listed itself
                [sys.executable, __file__, "--one", name, "--megabytes", str(args.megabytes)],
                capture_output=True,
                text=True,
                timeout=TIME_LIMIT_SECONDS,
                check=True,
            )
        except subprocess.TimeoutExpired:
            misses += 1
            print(f"  MISS  {name:<48} did not finish in {TIME_LIMIT_SECONDS:g} s")
            continue
        figure = json.loads(child.stdout)
        ratio = figure["seconds"] / figure["baseline"]
        ratios.append(ratio)
        verdict = "PASS" if ratio <= budget else "MISS"
        misses += verdict == "MISS"
        prefix, pump = FAMILIES[int(figure["family"])]
        print(
            f"  {verdict}  {name:<48} {ratio:9.1f}x <= {budget:7.0f}x ({figure['seconds'] * 1000:7.1f} ms,"
            f" worst input {prefix + pump * 3!r}...)"
        )
    if ratios:
        print(f"median ratio {statistics.median(ratios):.1f}x, largest {max(ratios):.1f}x")
    print("PASS" if not misses else f"MISS: {misses} target(s) over the budget")
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
