"""Every benchmark in one run, then one table of every budget of docs/performance.md (``make bench``).

    .venv/bin/python benchmarks/run_all.py [--strict]
    .venv/bin/python benchmarks/run_all.py --quick       # CI (make bench-quick): structural gates only

Runs each ``benchmarks/bench_*.py`` in turn, whatever its name (its own figures are printed as it
goes), collects the budget lines they record (``budgets.record``) and prints them as one table:
measured, budget, PASS or MISS, and the previous method's figure beside it. An item no script measured
is listed as MISSING.

``--quick`` runs only the scripts that accept ``--quick`` (their source says so), with it, and fails
only on a structural gate (AWS calls per turn, modules imported on the authorizer path, package sizes),
never on a time. Without it the exit status is 1 when a script failed or, with ``--strict``, when a
budget is missed.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from budgets import ITEMS, RESULTS_ENV, gates_hold, load, summary

HERE = Path(__file__).resolve().parent
QUICK_FLAG = "--quick"
QUICK_ITEMS = ("3", "5", "6")  # the structural ones


def scripts() -> list[Path]:
    return sorted(HERE.glob("bench_*.py"))


def supports_quick(script: Path) -> bool:
    return f'"{QUICK_FLAG}"' in script.read_text(encoding="utf-8")


def plan(quick: bool) -> list[tuple[Path, list[str]]]:
    """(script, arguments) to run: every script; in quick mode, only those that accept --quick."""
    if not quick:
        return [(script, []) for script in scripts()]
    return [(script, [QUICK_FLAG]) for script in scripts() if supports_quick(script)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run every benchmark and print one table of the budgets")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a budget is missed")
    parser.add_argument(QUICK_FLAG, action="store_true", help="CI: structural gates only, never a time")
    options = parser.parse_args(argv)

    started = time.monotonic()
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        results_file = Path(scratch) / "results.jsonl"
        environment = {**os.environ, RESULTS_ENV: str(results_file)}
        chosen = plan(options.quick)
        for script in scripts():
            if all(script != planned for planned, _ in chosen):
                print(f"== {script.relative_to(HERE.parent)}: skipped (no {QUICK_FLAG} mode: it only times)")
        for script, arguments in chosen:
            print(f"== {script.relative_to(HERE.parent)} {' '.join(arguments)}".rstrip(), flush=True)
            finished = subprocess.run([sys.executable, str(script), *arguments], env=environment, check=False)  # noqa: S603
            if finished.returncode != 0:
                failed.append(script.name)
        results = load(results_file)

    expected = {item: ITEMS[item] for item in QUICK_ITEMS} if options.quick else None
    table, all_met = summary(results, expected)
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    kind = "Structural gates (quick: no time is gated)" if options.quick else "Budgets of docs/performance.md"
    print(f"\n== {kind}, measured in this run ({when}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs, {time.monotonic() - started:.0f} s)")  # fmt: skip
    print(table)
    if failed:
        print(f"FAILED: {', '.join(failed)} (see its output above)")
        return 1
    if options.quick:
        missing = [item for item in QUICK_ITEMS if not any(result.item == item for result in results)]
        if missing or not gates_hold(results):
            print(f"GATE MISSED{': not measured ' + ', '.join(missing) if missing else ''}")
            return 1
        return 0
    return 1 if options.strict and not all_met else 0


if __name__ == "__main__":
    sys.exit(main())
