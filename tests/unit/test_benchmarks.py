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
    budgets.record("1", "init + first request: chat", "0.90x", "<= 0.8x", False)  # no file named: nothing happens


def test_the_summary_lists_every_item_and_flags_misses_and_gaps(
    budgets: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given two recorded budgets, one missed with the old method's figure, a figure for information,
    # and nothing for the other items
    results = tmp_path / "results.jsonl"
    monkeypatch.setenv(budgets.RESULTS_ENV, str(results))
    budgets.record("1", "init + first request: chat", "1.20x", "<= 0.8x", False, old="import CPU 0.99x")
    budgets.record("2", "whole handler", "20.00x", "(6x)", None)
    budgets.record("5", "layer zipped", "25.00 MiB", "<= 30 MiB", True, gate=True)
    # When the summary is printed
    table, met = budgets.summary(budgets.load(results))
    # Then the miss, the old figure beside it, the gate and the unmeasured items show; the run is not met
    assert json.loads(results.read_text().splitlines()[0])["passed"] is False
    assert re.search(r"1\s+init \+ first request: chat\s+1\.20x\s+<= 0\.8x\s+MISS\s+import CPU 0\.99x", table)
    assert re.search(r"5\s+layer zipped\s+25\.00 MiB\s+<= 30 MiB\s+PASS gate", table)
    assert re.search(r"2\s+whole handler\s+20\.00x\s+\(6x\)\s+info", table)
    assert [line.split()[0] for line in table.splitlines() if line.endswith("MISSING")] == ["3", "4", "6", "7"]
    assert met is False


def test_figures_for_information_never_count_as_a_miss(
    budgets: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = tmp_path / "results.jsonl"
    monkeypatch.setenv(budgets.RESULTS_ENV, str(results))
    for item in budgets.ITEMS:
        budgets.record(item, "measured", "1.00x", "<= 1x", True)
    budgets.record("1", "for information", "9.00x", "(1x)", None)

    assert budgets.summary(budgets.load(results))[1] is True


def test_a_figure_under_an_item_of_its_own_is_listed_too(
    budgets: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a new script recording under an item the table does not know
    results = tmp_path / "results.jsonl"
    monkeypatch.setenv(budgets.RESULTS_ENV, str(results))
    budgets.record("redaction", "redaction per log record", "3.00x", "<= 2x", False)
    # Then it is printed, after the known items, and its miss counts
    table, met = budgets.summary(budgets.load(results))
    assert re.search(r"redaction per log record\s+3\.00x\s+<= 2x\s+MISS", table.splitlines()[-1])
    assert met is False


def test_only_a_missed_structural_gate_fails_the_quick_run(
    budgets: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = tmp_path / "results.jsonl"
    monkeypatch.setenv(budgets.RESULTS_ENV, str(results))
    # Given a missed time and a met size gate
    budgets.record("1", "init + first request: chat", "1.20x", "<= 0.8x", False)
    budgets.record("5", "layer zipped", "11.85 MiB", "<= 12 MiB", True, gate=True)
    assert budgets.gates_hold(budgets.load(results)) is True
    # When a structural gate is missed, the quick run fails
    budgets.record("6", "forbidden modules, authorizer rs256 path", "boto3 of 600", "none", False, gate=True)
    assert budgets.gates_hold(budgets.load(results)) is False


def test_the_quick_summary_expects_only_the_structural_items(
    budgets: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = tmp_path / "results.jsonl"
    monkeypatch.setenv(budgets.RESULTS_ENV, str(results))
    budgets.record("3", "history 0", "0/0/3/1", "0/0/<=3/1", True, gate=True)
    table, _ = budgets.summary(budgets.load(results), {"3": "calls", "5": "size", "6": "modules"})
    assert [line.split()[0] for line in table.splitlines() if line.endswith("MISSING")] == ["5", "6"]


def test_every_bench_script_is_run_and_quick_runs_those_that_accept_it(
    benchmarks: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import run_all

    # Given a new benchmark dropped into the folder without any edit to run_all, and one with a quick mode
    (tmp_path / "bench_new_thing.py").write_text("print('timed')\n")
    (tmp_path / "bench_structure.py").write_text('parser.add_argument("--quick")\n')
    (tmp_path / "helper.py").write_text("")
    monkeypatch.setattr(run_all, "HERE", tmp_path)
    # Then a full run runs both, a quick run only the one with a quick mode, with --quick
    assert [(script.name, arguments) for script, arguments in run_all.plan(quick=False)] == [
        ("bench_new_thing.py", []),
        ("bench_structure.py", []),
    ]
    assert [(script.name, arguments) for script, arguments in run_all.plan(quick=True)] == [
        ("bench_structure.py", ["--quick"])
    ]


def test_the_real_scripts_with_a_quick_mode_are_the_structural_ones(benchmarks: Path) -> None:
    import run_all

    assert {script.name for script, _ in run_all.plan(quick=True)} >= {"bench_cold_start.py", "bench_chat_turn.py"}
    assert "bench_authorizer.py" not in {script.name for script, _ in run_all.plan(quick=True)}


def test_the_tracing_environment_really_switches_the_powertools_tracer_on(
    benchmarks: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import harness
    from aws_lambda_powertools.tracing.tracer import Tracer

    for name in ("POWERTOOLS_TRACE_DISABLED", "AWS_SAM_LOCAL", "AWS_CHALICE_CLI_MODE", "LAMBDA_TASK_ROOT"):
        monkeypatch.delenv(name, raising=False)
    assert Tracer._is_tracer_disabled()  # outside Lambda: off
    for name, value in harness.tracing_environment(str(tmp_path), "127.0.0.1:2000", active=True).items():
        monkeypatch.setenv(name, value)
    assert not Tracer._is_tracer_disabled()
    assert "Sampled=1" in harness.tracing_environment(str(tmp_path), "127.0.0.1:2000", active=True)["_X_AMZN_TRACE_ID"]
    for name, value in harness.tracing_environment(str(tmp_path), "127.0.0.1:2000", active=False).items():
        monkeypatch.setenv(name, value)
    assert Tracer._is_tracer_disabled()


def test_the_probe_times_import_and_first_request_in_a_fresh_lambda_layout(benchmarks: Path, tmp_path: Path) -> None:
    import bench_cold_start

    # Given a build output laid out as sam build writes it: the function, and the layer's python/ folder
    (tmp_path / "Fn" / "app").mkdir(parents=True)
    (tmp_path / "Layer" / "python" / "shared").mkdir(parents=True)
    (tmp_path / "Layer" / "python" / "shared" / "__init__.py").write_text("VALUE = 1\n")
    (tmp_path / "Fn" / "app" / "__init__.py").write_text("")
    handler = (
        "import time\nimport shared\n\n\ndef lambda_handler(event, context):\n"
        "    time.sleep(0.02)\n    return {'statusCode': 200 + shared.VALUE + event['add']}\n"
    )
    (tmp_path / "Fn" / "app" / "handler.py").write_text(handler)
    target = bench_cold_start.Target("probe", "product", "Fn", "Layer", "app.handler", 1.0)
    # When it is imported in a fresh interpreter, as on Lambda, and serves its first request and three more
    result = bench_cold_start.probe(tmp_path, target, [{"add": 0}, {"add": 1}], repeat=3)
    # Then the import and the first request were timed apart (the request waited: wall, not CPU)
    assert result.import_cpu > 0
    assert result.first_wall >= 0.02 > result.first_cpu
    assert result.outcomes == {"201": 1, "202": 3}
    assert result.max_rss_kib > 0
    assert "shared" in result.modules
    assert not list(tmp_path.rglob("__pycache__"))


def test_the_probe_calls_a_named_handler_and_reads_a_policy_authorizers_effect(
    benchmarks: Path, tmp_path: Path
) -> None:
    import bench_cold_start

    # Given a WebSocket authorizer whose handler is not called lambda_handler and answers with a policy
    (tmp_path / "Fn" / "connect").mkdir(parents=True)
    (tmp_path / "Layer" / "python").mkdir(parents=True)
    (tmp_path / "Fn" / "connect" / "__init__.py").write_text("")
    handler = (
        "def handler(event, context):\n"
        "    effect = 'Allow' if event['ticket'] else 'Deny'\n"
        "    return {'principalId': 'p', 'policyDocument': {'Statement': [{'Effect': effect}]}}\n"
    )
    (tmp_path / "Fn" / "connect" / "handler.py").write_text(handler)
    target = bench_cold_start.Target("probe", "product", "Fn", "Layer", "connect.handler:handler", None)
    # When it is probed
    result = bench_cold_start.probe(tmp_path, target, [{"ticket": "t"}, {"ticket": ""}], repeat=1)
    # Then the outcome of each request is the policy's effect
    assert result.outcomes == {"Allow": 1, "Deny": 1}


def test_the_stream_functions_are_in_the_package_size_gate(benchmarks: Path) -> None:
    import bench_cold_start

    assert {"StreamAuthorizerFunction", "StreamFunction", "StreamWorkerFunction"} <= set(bench_cold_start.PACKAGES)


def test_the_stream_authorizer_path_has_a_forbidden_list(benchmarks: Path) -> None:
    import harness

    assert {"pydantic", "aws_lambda_powertools.event_handler"} <= set(
        harness.FORBIDDEN_ON_AUTHORIZER_PATH["stream-connect"]
    )


def test_a_forbidden_module_is_found_by_its_package_or_any_submodule(benchmarks: Path) -> None:
    import bench_cold_start

    assert bench_cold_start.loaded(["botocore", "botocore.session"], "botocore.session")
    assert bench_cold_start.loaded(["boto3.session"], "boto3")
    assert not bench_cold_start.loaded(["botocore"], "botocore.session")
    assert not bench_cold_start.loaded(["boto3x"], "boto3")


def test_cost_scales_cpu_time_below_a_full_vcpu_and_adds_the_wait(benchmarks: Path) -> None:
    import bench_cold_start

    # 10 ms of CPU and 100 ms of waiting: at 1,769 MB (a full vCPU) 110 ms, at 128 MB 10 x 1769/128 + 100
    assert bench_cold_start.cost_per_million(10, 100, 1769)[0] == 110
    assert bench_cold_start.cost_per_million(10, 100, 128)[0] == 239  # ceil(138.2 + 100)
    assert bench_cold_start.cost_per_million(10, 100, 3008)[0] == 110  # no faster above one vCPU
    billed_ms, dollars = bench_cold_start.cost_per_million(10, 100, 1024)
    assert dollars == pytest.approx(billed_ms / 1000 * 1.0 * 0.0000133334 * 1e6 + 0.20)


def test_package_sizes_are_taken_from_a_deflated_zip(benchmarks: Path, tmp_path: Path) -> None:
    import bench_cold_start

    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "module.py").write_text("x = 1\n" * 10_000)

    zipped = bench_cold_start.zipped_size(tmp_path)

    assert 0 < zipped < bench_cold_start.unzipped_size(tmp_path) / 10
