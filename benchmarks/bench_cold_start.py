"""Cold start (DESIGN.md section 7, item 1) and package size (item 5), from the ``sam build`` output.

    .venv/bin/python benchmarks/bench_cold_start.py [--runs N] [--strict] [--skip-build]

Built under ``.aws-sam/bench/`` (the normal arm64 build in ``.aws-sam/build`` is left alone):

* ``template.yaml`` with ``sam build --parameter-overrides Architecture=<this machine's>``: arm64 wheels
  do not load on x86_64, so the timing needs the host's architecture;
* ``benchmarks/reference/template.yaml`` with the same command: the reference Powertools handler
  (Logger, Tracer, ``APIGatewayHttpResolver`` and one DynamoDB client, created at import) on a layer
  with the same pins as the security layer;
* ``template.yaml`` for arm64 as deployed (unless the host is arm64), for the package sizes;
* a copy of each output with bytecode precompiled by ``make bytecode``: ``checked-hash`` as
  ``make build`` ships it, and ``unchecked-hash`` for comparison.

Measured: ``import <handler module>`` in a fresh interpreter each time, laid out as Lambda does (the
function's code first on ``sys.path`` as ``/var/task``, then the layer's ``python/`` as ``/opt/python``,
no site-packages: ``-S``), with Lambda's environment variables (so Powertools' Tracer is on and patches
the SDK as it does in a deployment) and bytecode writes off (``-B``: Lambda cannot write under
``/var/task`` or ``/opt``). The figure is the CPU time of the import (the wall time is printed too; CPU
time does not count the moments a busy machine schedules another process). Every round imports every
handler and the reference, in every variant, in alternating order; a ratio is the median over rounds of
the handler's time divided by the reference's time in the same round and variant.

Package size: each directory of the arm64 build zipped with deflate as ``sam deploy`` does, with and
without the bytecode that ``make build`` adds.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import shutil
import statistics
import subprocess
import sys
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from budgets import record

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / ".aws-sam" / "bench"
SAM = ROOT / ".tools" / "bin" / "sam"
BUILD_PYTHON_BIN = ROOT / ".tools" / "build-python" / "bin"
DEPLOYED_ARCHITECTURE = "arm64"  # template.yaml's default
MIB = 1024 * 1024

# Variants of the same build: (name, label, `make bytecode` invalidation mode or None).
VARIANTS = (
    ("source", "sam build", None),
    ("bytecode", "+ bytecode (make build)", "checked-hash"),
    ("unchecked", "+ unchecked-hash bytecode", "unchecked-hash"),
)
SHIPPED = "bytecode"


@dataclass(frozen=True)
class Target:
    name: str
    build: str  # "product" or "reference"
    function: str  # directory of the function in the build output
    layer: str  # directory of the layer in the build output
    module: str  # the handler's module, as in the template's Handler
    budget: float | None
    first_request_clients: tuple[str, ...] = ()  # SDK clients its first request builds (information)


REFERENCE = Target("reference", "reference", "ReferenceFunction", "ReferenceLayer", "reference_app.handler", None)
TARGETS = (
    REFERENCE,
    Target(  # its OIDC path builds no client; an anonymous session token needs Secrets Manager
        "authorizer", "product", "AuthorizerFunction", "SecurityLayer", "authorizer.handler", 0.4,
        ("secretsmanager",),
    ),
    Target(
        "chat", "product", "ChatFunction", "SecurityLayer", "chat.handler", 1.0,
        ("dynamodb", "secretsmanager", "kms", "bedrock-runtime"),
    ),
    Target(
        "cleanup", "product", "SessionCleanupFunction", "SecurityLayer", "session_cleanup.handler", 0.8,
        ("dynamodb",),
    ),
)  # fmt: skip
PACKAGES = (
    ("AuthorizerFunction", 1.0),
    ("ChatFunction", 1.0),
    ("SessionCleanupFunction", 1.0),
    ("SecurityLayer", 30.0),
)

# Runs in the fresh interpreter: the handler's import, then (for information) the SDK clients its first
# request creates, through the layer's own chatbot_security.aws_clients.
PROBE = """
import sys, time
task_root, layer, module, clients = sys.argv[1:5]
sys.path[:0] = [task_root, layer]
wall, cpu = time.perf_counter(), time.process_time()
__import__(module, fromlist=["lambda_handler"]).lambda_handler
imported_cpu, imported_wall = time.process_time() - cpu, time.perf_counter() - wall
cpu = time.process_time()
if clients:
    from chatbot_security.aws_clients import client
    for service in clients.split(","):
        client(service)
print(imported_cpu, imported_wall, time.process_time() - cpu)
"""


def host_architecture() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[machine]


def build_dir(architecture: str, build: str, variant: str = "source") -> Path:
    """SAM writes its build graph next to the build directory, so each build gets a parent of its own."""
    return BENCH / architecture / build / variant


# -- building ----------------------------------------------------------------------------------------
def sam_build(template: Path, architecture: str, destination: Path) -> None:
    path = f"{BUILD_PYTHON_BIN}{os.pathsep}{os.environ['PATH']}"  # sam build runs `python3.13 -m pip`
    environment = {**os.environ, "PATH": path, "SAM_CLI_TELEMETRY": "0"}
    command = [
        str(SAM), "build", "--template", str(template), "--build-dir", str(destination),
        "--parameter-overrides", f"Architecture={architecture}", "--parallel",
    ]  # fmt: skip
    finished = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, check=False)  # noqa: S603
    if finished.returncode != 0:
        sys.stderr.write(finished.stdout[-4000:] + finished.stderr[-4000:])
        raise SystemExit(f"sam build of {template.relative_to(ROOT)} ({architecture}) failed")


def precompile(source: Path, destination: Path, invalidation: str) -> None:
    """A copy of ``source`` with the bytecode ``make build`` adds (the same make target does it)."""
    shutil.rmtree(destination, ignore_errors=True)
    shutil.copytree(source, destination, symlinks=True)
    subprocess.run(  # noqa: S603 - make, our own Makefile
        ["make", "--no-print-directory", "-C", str(ROOT), "bytecode", f"BUILD_DIR={destination}",  # noqa: S607
         f"INVALIDATION={invalidation}"],
        check=True,
    )  # fmt: skip


def build_everything(host: str) -> None:
    builds = [
        (ROOT / "template.yaml", host, "product"),
        (ROOT / "benchmarks" / "reference" / "template.yaml", host, "reference"),
    ]
    if host != DEPLOYED_ARCHITECTURE:
        builds.append((ROOT / "template.yaml", DEPLOYED_ARCHITECTURE, "product"))
    for template, architecture, build in builds:
        print(f"  sam build {template.relative_to(ROOT)} for {architecture}", flush=True)
        sam_build(template, architecture, build_dir(architecture, build))
        for variant, _, invalidation in VARIANTS:
            if invalidation and (architecture == host or variant == SHIPPED):
                precompile(build_dir(architecture, build), build_dir(architecture, build, variant), invalidation)


# -- measuring ---------------------------------------------------------------------------------------
def lambda_environment(task_root: Path, module: str) -> dict[str, str]:
    """What the Lambda runtime sets, as far as an import can tell; fake credentials as Lambda's are env vars."""
    nowhere = str(BENCH / "no-aws-config")
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LAMBDA_TASK_ROOT": str(task_root),
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "_HANDLER": f"{module}.lambda_handler",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        "AWS_CONFIG_FILE": nowhere,
        "AWS_SHARED_CREDENTIALS_FILE": nowhere,
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
        "POWERTOOLS_SERVICE_NAME": "bench",
        "POWERTOOLS_METRICS_NAMESPACE": "Chatbot",
    }


def interpreter(*options: str) -> list[str]:
    """The project's Python 3.13 as Lambda runs it: no site-packages, no bytecode writes, no cwd on sys.path."""
    return [sys.executable, "-S", "-B", "-P", *options]


@dataclass
class Sample:
    import_cpu: float
    import_wall: float
    clients_cpu: float


def probe(directory: Path, target: Target) -> Sample:
    task_root, layer = directory / target.function, directory / target.layer / "python"
    finished = subprocess.run(  # noqa: S603 - our own interpreter and probe
        [*interpreter("-c", PROBE), str(task_root), str(layer), target.module, ",".join(target.first_request_clients)],
        cwd=task_root,
        env=lambda_environment(task_root, target.module),
        capture_output=True,
        text=True,
        check=False,
    )
    if finished.returncode != 0:
        raise SystemExit(f"importing {target.module} from {directory} failed:\n{finished.stderr[-3000:]}")
    import_cpu, import_wall, clients_cpu = (float(value) * 1000 for value in finished.stdout.split())
    return Sample(import_cpu, import_wall, clients_cpu)


@dataclass
class Series:
    samples: list[Sample] = field(default_factory=list)
    ratios: list[float] = field(default_factory=list)  # to the reference, same round and variant
    first_request_ratios: list[float] = field(default_factory=list)
    saving: list[float] = field(default_factory=list)  # 1 - this variant / source, same round

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(sample, attribute) for sample in self.samples)


def measure(host: str, runs: int) -> dict[tuple[str, str], Series]:
    plan = [(variant, target) for variant, _, _ in VARIANTS for target in TARGETS]
    series = {(variant, target.name): Series() for variant, target in plan}
    for run in range(runs):
        order = plan if run % 2 == 0 else plan[::-1]
        this_round = {
            (variant, target.name): probe(build_dir(host, target.build, variant), target) for variant, target in order
        }
        for (variant, name), sample in this_round.items():
            reference = this_round[(variant, REFERENCE.name)]
            source = this_round[("source", name)]
            entry = series[(variant, name)]
            entry.samples.append(sample)
            entry.ratios.append(sample.import_cpu / reference.import_cpu)
            entry.first_request_ratios.append((sample.import_cpu + sample.clients_cpu) / reference.import_cpu)
            entry.saving.append(1 - sample.import_cpu / source.import_cpu)
        print(f"  round {run + 1}/{runs}", end="\r", flush=True)
    return series


def import_breakdown(directory: Path, target: Target, top: int = 8) -> list[tuple[str, float]]:
    """Self time of every imported module (``-X importtime``), summed per top-level package."""
    task_root, layer = directory / target.function, directory / target.layer / "python"
    finished = subprocess.run(  # noqa: S603 - our own interpreter and probe
        [*interpreter("-X", "importtime", "-c", PROBE), str(task_root), str(layer), target.module, ""],
        cwd=task_root,
        env=lambda_environment(task_root, target.module),
        capture_output=True,
        text=True,
        check=True,
    )
    totals: Counter[str] = Counter()
    for line in finished.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        package = name.split(".")[0]
        totals["(standard library)" if package in sys.stdlib_module_names else package] += int(self_us) / 1000
    return totals.most_common(top)


def zipped_size(directory: Path) -> int:
    """Deflate, as sam deploy zips a build directory."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(directory))
    return len(buffer.getvalue())


def unzipped_size(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())


# -- reporting ---------------------------------------------------------------------------------------
def report_cold_start(host: str, runs: int, series: dict[tuple[str, str], Series]) -> bool:
    def ratio(variant: str, target: Target) -> float:
        return statistics.median(series[(variant, target.name)].ratios)

    print(f"Cold start (DESIGN.md 7.1): import of each handler from the {host} sam build output in a fresh")
    print(f"process, CPU ms, median of {runs} alternating rounds; ratio to the reference of the same build")
    print(f"  {'':14s}" + "".join(f"{label:>28s}" for _, label, _ in VARIANTS))
    met = True
    for target in TARGETS:
        cells = [
            f"{series[(v, target.name)].median('import_cpu'):6.0f} ms {ratio(v, target):5.2f}x" for v, _, _ in VARIANTS
        ]
        budget = "(the reference)" if target.budget is None else f"budget {target.budget}x"
        print(f"  {target.name:14s}" + "".join(f"{cell:>28s}" for cell in cells) + f"   {budget}")
        if target.budget is not None:
            for variant, label, _ in VARIANTS[:2]:
                value = ratio(variant, target)
                passed = value <= target.budget
                met &= passed
                record("7.1", f"cold start: {target.name} ({label})", f"{value:.2f}x", f"<= {target.budget}x", passed)
    walls = ", ".join(
        f"{t.name} " + "/".join(f"{series[(v, t.name)].median('import_wall'):.0f}" for v, _, _ in VARIANTS)
        for t in TARGETS
    )
    print(f"  Wall ms, same columns: {walls}")
    print("  Bytecode saves (median of per-round savings against the same round's plain sam build):")
    for target in TARGETS:
        savings = [f"{statistics.median(series[(v, target.name)].saving):4.0%} {label}" for v, label, _ in VARIANTS[1:]]
        print(f"    {target.name:12s}" + "   ".join(savings))
    print("  For information, import + the SDK clients of the first request (the reference builds its one at import):")
    for target in TARGETS[1:]:
        cells = [
            f"{statistics.median(series[(v, target.name)].first_request_ratios):5.2f}x {label}"
            for v, label, _ in VARIANTS[:2]
        ]
        print(f"    {target.name:12s}" + "   ".join(cells) + f"   ({', '.join(target.first_request_clients)})")
        shipped = statistics.median(series[(SHIPPED, target.name)].first_request_ratios)
        name = f"cold start + first request's SDK clients: {target.name} (bytecode)"
        record("7.1", name, f"{shipped:.2f}x", f"({target.budget}x)", None)
    return met


def report_breakdown(host: str) -> None:
    print("  Where the import time goes (-X importtime, self ms per package, one run of the shipped build):")
    for target in TARGETS:
        parts = import_breakdown(build_dir(host, target.build, SHIPPED), target)
        print(f"    {target.name:12s} " + ", ".join(f"{name} {ms:.0f}" for name, ms in parts))


def report_packages() -> bool:
    print(f"Package size (DESIGN.md 7.5): the {DEPLOYED_ARCHITECTURE} build as deployed, zipped with deflate")
    print(f"  {'':24s}{'sam build':>14s}{'+ bytecode (shipped)':>22s}{'unzipped, shipped':>20s}")
    met = True
    for directory, budget in PACKAGES:
        plain = zipped_size(build_dir(DEPLOYED_ARCHITECTURE, "product") / directory) / MIB
        shipped_dir = build_dir(DEPLOYED_ARCHITECTURE, "product", SHIPPED) / directory
        shipped, unzipped = zipped_size(shipped_dir) / MIB, unzipped_size(shipped_dir) / MIB
        ok = shipped <= budget
        met &= ok
        print(
            f"  {directory:24s}{plain:10.3f} MiB{shipped:18.3f} MiB{unzipped:16.1f} MiB   "
            f"budget {budget:g} MiB  {'PASS' if ok else 'MISS'}"
        )
        kind = "layer" if directory.endswith("Layer") else "function code"
        record("7.5", f"{kind} zipped: {directory}", f"{shipped:.2f} MiB", f"<= {budget:g} MiB", ok)
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Cold start and package size from the sam build output")
    parser.add_argument("--runs", type=int, default=15, help="alternating rounds (default 15)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a budget is missed")
    parser.add_argument("--skip-build", action="store_true", help="reuse the builds under .aws-sam/bench")
    options = parser.parse_args(argv)
    host = host_architecture()
    if not options.skip_build:
        print(f"Building under {BENCH.relative_to(ROOT)} (host {host}, deployed {DEPLOYED_ARCHITECTURE}):", flush=True)
        build_everything(host)
    series = measure(host, options.runs)
    met = report_cold_start(host, options.runs, series)
    report_breakdown(host)
    met &= report_packages()
    return 1 if options.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
