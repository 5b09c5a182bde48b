"""Every benchmark of DESIGN.md section 7 in one run, then one table of every budget (``make bench``).

    .venv/bin/python benchmarks/run_all.py [--strict] [--quick]

Runs each ``benchmarks/bench_*.py`` in turn (its own figures are printed as it goes), collects the
budget lines they record (``budgets.record``) and prints them as one table: measured, budget, PASS or
MISS. An item no script measured is listed as MISSING. Exit status: 1 when a script failed, or, with
``--strict``, when a budget is missed. ``--quick`` passes small round counts (a smoke run, not figures
to quote).
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

from budgets import RESULTS_ENV, load, summary

HERE = Path(__file__).resolve().parent
QUICK = {
    "bench_cold_start.py": ["--runs", "3"],
    "bench_authorizer.py": ["--rounds", "3"],
    "bench_chat_turn.py": ["--rounds", "3"],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run every benchmark and print one table of the budgets")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a budget is missed")
    parser.add_argument("--quick", action="store_true", help="few rounds: a smoke run, not figures to quote")
    options = parser.parse_args(argv)

    started = time.monotonic()
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        results_file = Path(scratch) / "results.jsonl"
        environment = {**os.environ, RESULTS_ENV: str(results_file)}
        for script in sorted(HERE.glob("bench_*.py")):
            print(f"== {script.relative_to(HERE.parent)}", flush=True)
            extra = QUICK.get(script.name, []) if options.quick else []
            finished = subprocess.run([sys.executable, str(script), *extra], env=environment, check=False)  # noqa: S603
            if finished.returncode != 0:
                failed.append(script.name)
        results = load(results_file)

    table, all_met = summary(results)
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"\n== Budgets of DESIGN.md section 7, measured in this run ({when}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs, {time.monotonic() - started:.0f} s)")  # fmt: skip
    print(table)
    if failed:
        print(f"FAILED: {', '.join(failed)} (see its output above)")
        return 1
    return 1 if options.strict and not all_met else 0


if __name__ == "__main__":
    sys.exit(main())
