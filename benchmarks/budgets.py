"""One summary table for every budget of docs/performance.md, gathered from several scripts.

Each ``bench_*.py`` prints its own figures and, through :func:`record`, appends one JSON line per
budget to the file named by ``$BENCH_RESULTS``; ``run_all.py`` sets it, runs every script and prints
:func:`summary` at the end. Run alone, a script writes nothing.

A result may carry the figure the previous method gave (``old``: import-only cold start, tracing off,
the decision function instead of the handler), printed beside the honest one. A ``gate`` is a
structural figure (AWS calls per turn, modules imported on the authorizer path, package sizes): the
only kind ``run_all.py --quick`` fails on. A time is never a gate.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS_ENV = "BENCH_RESULTS"
ITEMS = {
    "1": "init + first request, wall",
    "2": "authorizer handler, warm, tracing on",
    "3": "AWS calls per warm turn",
    "4": "chat handler per warm turn, tracing on",
    "5": "package size",
    "6": "modules on the authorizer path",
    "7": "memory and cost",
}


@dataclass(frozen=True)
class Result:
    item: str  # a key of ITEMS
    name: str
    measured: str
    budget: str
    passed: bool | None  # None: printed for information, never a miss
    old: str = ""  # the same figure by the previous method, for comparison
    gate: bool = False  # structural: fails `run_all.py --quick` when missed


def record(
    item: str, name: str, measured: str, budget: str, passed: bool | None, *, old: str = "", gate: bool = False
) -> None:
    """Append one budget's outcome (``passed=None``: a figure for information) to ``$BENCH_RESULTS``
    (nothing when it is unset)."""
    target = os.environ.get(RESULTS_ENV)
    if not target:
        return
    with Path(target).open("a", encoding="utf-8") as results:
        results.write(json.dumps(asdict(Result(item, name, measured, budget, passed, old, gate))) + "\n")


def load(path: Path) -> list[Result]:
    if not path.exists():
        return []
    return [Result(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def verdict(result: Result) -> str:
    return "info" if result.passed is None else "PASS" if result.passed else "MISS"


def summary(results: list[Result], items: dict[str, str] | None = None) -> tuple[str, bool]:
    """The table, and whether every item was measured and met. ``items``: the items expected (all by
    default; ``--quick`` expects only the structural ones)."""
    expected = ITEMS if items is None else items
    width = max([len(result.name) for result in results] + [40])
    lines = [f"{'item':4s} {'budget':{width}s} {'measured':>20s}  {'budget':>12s}  {'verdict':8s} old method"]
    complete = True
    others = sorted({result.item for result in results} - ITEMS.keys())  # a script's own items, listed last
    for item in (*ITEMS, *others):
        rows = [result for result in results if result.item == item]
        if not rows and item in expected:
            complete = False
            lines.append(f"{item:4s} {ITEMS[item]:{width}s} {'not measured':>20s}  {'':>12s}  MISSING")
        for row in rows:
            mark = verdict(row) + (" gate" if row.gate else "")
            lines.append(
                f"{item:4s} {row.name:{width}s} {row.measured:>20s}  {row.budget:>12s}  {mark:8s} {row.old}".rstrip()
            )
    return "\n".join(lines), complete and all(result.passed is not False for result in results)


def gates_hold(results: list[Result]) -> bool:
    """Every structural gate recorded was met (what CI's quick run fails on)."""
    return all(result.passed is not False for result in results if result.gate)
