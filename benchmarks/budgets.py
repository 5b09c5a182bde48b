"""One summary table for every budget of DESIGN.md section 7, gathered from several scripts.

Each ``bench_*.py`` prints its own figures and, through :func:`record`, appends one JSON line per
budget to the file named by ``$BENCH_RESULTS``; ``run_all.py`` sets it, runs every script and prints
:func:`summary` at the end. Run alone, a script writes nothing.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS_ENV = "BENCH_RESULTS"
ITEMS = {
    "7.1": "cold start",
    "7.2": "authorizer, warm",
    "7.3": "AWS calls per warm turn",
    "7.4": "handler work per turn",
    "7.5": "package size",
}


@dataclass(frozen=True)
class Result:
    item: str  # "7.1" ... "7.5"
    name: str
    measured: str
    budget: str
    passed: bool | None  # None: printed for information, never a miss


def record(item: str, name: str, measured: str, budget: str, passed: bool | None) -> None:
    """Append one budget's outcome (``passed=None``: a figure for information) to ``$BENCH_RESULTS``
    (nothing when it is unset)."""
    target = os.environ.get(RESULTS_ENV)
    if not target:
        return
    with Path(target).open("a", encoding="utf-8") as results:
        results.write(json.dumps(asdict(Result(item, name, measured, budget, passed))) + "\n")


def load(path: Path) -> list[Result]:
    if not path.exists():
        return []
    return [Result(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def summary(results: list[Result]) -> tuple[str, bool]:
    """The table, and whether every item of section 7 was measured and met."""
    width = max([len(result.name) for result in results] + [40])
    lines = [f"{'item':5s} {'budget':{width}s} {'measured':>22s}  {'budget':>10s}  verdict"]
    complete = True
    for item, title in ITEMS.items():
        rows = [result for result in results if result.item == item]
        if not rows:
            complete = False
            lines.append(f"{item:5s} {title:{width}s} {'not measured':>22s}  {'':>10s}  MISSING")
        for row in rows:
            verdict = "info" if row.passed is None else "PASS" if row.passed else "MISS"
            lines.append(f"{item:5s} {row.name:{width}s} {row.measured:>22s}  {row.budget:>10s}  {verdict}")
    return "\n".join(lines), complete and all(result.passed is not False for result in results)
