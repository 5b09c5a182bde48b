"""The benchmark plumbing (benchmarks/), checked without running a benchmark: budgets live only there."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def benchmarks(monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    return ROOT / "benchmarks"


@pytest.fixture
def budgets(benchmarks: Path) -> ModuleType:
    import budgets

    return budgets


def pins(requirements: Path) -> dict[str, tuple[str, frozenset[str]]]:
    """name: (version, hashes) of a hashed requirements file."""
    found: dict[str, tuple[str, frozenset[str]]] = {}
    name = ""
    for line in requirements.read_text().splitlines():
        if re.match(r"[A-Za-z0-9]", line):
            name, version = re.split(r"[ ;]", line, maxsplit=1)[0].lower().split("==")
            found[name] = (version, frozenset())
        elif "--hash=" in line and name:
            version, hashes = found[name]
            found[name] = (version, hashes | {line.strip().removeprefix("--hash=").rstrip(" \\")})
    return found


def test_the_reference_layer_pins_exactly_what_the_security_layer_pins() -> None:
    # Given the two layers' requirements
    reference = pins(ROOT / "benchmarks" / "reference" / "layer" / "requirements.txt")
    security = pins(ROOT / "layers" / "security" / "requirements.txt")
    # Then Powertools, its tracer extra and boto3 are the same versions, with the same hashes
    assert {"aws-lambda-powertools", "aws-xray-sdk", "boto3", "botocore"} <= reference.keys()
    assert {name: security.get(name) for name in reference} == reference


def test_a_script_run_alone_records_nothing(budgets: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(budgets.RESULTS_ENV, raising=False)
    budgets.record("7.1", "cold start: chat", "0.90x", "<= 1.0x", True)  # no file named: nothing happens


def test_the_summary_lists_every_item_and_flags_misses_and_gaps(
    budgets: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two recorded budgets, one missed, a figure for information, and nothing for the other items
    results = tmp_path / "results.jsonl"
    monkeypatch.setenv(budgets.RESULTS_ENV, str(results))
    budgets.record("7.1", "cold start: chat", "1.20x", "<= 1.0x", False)
    budgets.record("7.2", "whole handler", "20.00x", "(6x)", None)
    budgets.record("7.5", "layer zipped", "25.00 MiB", "<= 30 MiB", True)
    # When the summary is printed
    table, met = budgets.summary(budgets.load(results))
    # Then the miss and the unmeasured items show, and the run does not count as met
    assert json.loads(results.read_text().splitlines()[0])["passed"] is False
    assert re.search(r"7\.1\s+cold start: chat\s+1\.20x\s+<= 1\.0x\s+MISS", table)
    assert re.search(r"7\.5\s+layer zipped\s+25\.00 MiB\s+<= 30 MiB\s+PASS", table)
    assert re.search(r"7\.2\s+whole handler\s+20\.00x\s+\(6x\)\s+info", table)
    assert [line.split()[0] for line in table.splitlines() if line.endswith("MISSING")] == ["7.3", "7.4"]
    assert met is False


def test_figures_for_information_never_count_as_a_miss(
    budgets: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = tmp_path / "results.jsonl"
    monkeypatch.setenv(budgets.RESULTS_ENV, str(results))
    for item in budgets.ITEMS:
        budgets.record(item, "measured", "1.00x", "<= 1x", True)
    budgets.record("7.1", "for information", "9.00x", "(1x)", None)

    assert budgets.summary(budgets.load(results))[1] is True


def test_the_cold_start_probe_imports_a_handler_from_a_lambda_layout(benchmarks: Path, tmp_path: Path) -> None:
    import bench_cold_start

    # Given a build output laid out as sam build writes it: the function, and the layer's python/ folder
    (tmp_path / "Fn" / "app").mkdir(parents=True)
    (tmp_path / "Layer" / "python" / "shared").mkdir(parents=True)
    (tmp_path / "Layer" / "python" / "shared" / "__init__.py").write_text("VALUE = 1\n")
    (tmp_path / "Fn" / "app" / "__init__.py").write_text("")
    handler = "import shared\n\n\ndef lambda_handler(event, context):\n    return shared.VALUE\n"
    (tmp_path / "Fn" / "app" / "handler.py").write_text(handler)
    target = bench_cold_start.Target("probe", "product", "Fn", "Layer", "app.handler", 1.0)
    # When it is imported in a fresh interpreter, as on Lambda
    sample = bench_cold_start.probe(tmp_path, target)
    # Then the import was timed and nothing was written next to the sources
    assert sample.import_cpu > 0
    assert sample.clients_cpu >= 0
    assert not list(tmp_path.rglob("__pycache__"))


def test_package_sizes_are_taken_from_a_deflated_zip(benchmarks: Path, tmp_path: Path) -> None:
    import bench_cold_start

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "module.py").write_text("x = 1\n" * 10_000)

    zipped = bench_cold_start.zipped_size(tmp_path)

    assert 0 < zipped < bench_cold_start.unzipped_size(tmp_path) / 10
