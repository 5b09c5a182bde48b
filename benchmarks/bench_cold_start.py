"""Cold start as Lambda bills it (budget 1), memory and cost (7), package size (5), authorizer modules (6).

    .venv/bin/python benchmarks/bench_cold_start.py [--runs N] [--memory-requests N] [--skip-build]
    .venv/bin/python benchmarks/bench_cold_start.py --quick     # CI: structural figures only, no timing

Built under ``.aws-sam/bench/`` (the normal arm64 build in ``.aws-sam/build`` is left alone):
``template.yaml`` and ``benchmarks/reference/template.yaml`` with ``sam build --parameter-overrides
Architecture=<this machine's>`` (arm64 wheels do not load on x86_64), each copied with the bytecode
``make build`` adds, and ``template.yaml`` for arm64 as deployed, for the package sizes.

**Cold start = import + the first request**, in a fresh interpreter laid out as Lambda does (function
code as ``/var/task``, the layer's ``python/`` as ``/opt/python``, no site-packages, no bytecode writes),
with ``Tracing: Active``'s environment (the Tracer is on, segments go to a UDP socket that only counts
them), against one loopback world both sides share: moto's threaded server (table, key and secrets of
``template.yaml``, the reference's ``items`` table), a fake Bedrock runtime, an OIDC issuer. First
requests: the authorizer with an RS256 access token (its JWKS fetch is timed and taken out: a
container's keys are cached) and, separately, with an anonymous session token (one Secrets Manager
read); the chat function's first ``POST /v1/sessions/{id}/messages`` on an existing session; the
cleanup's sweep with nothing to purge; the reference's ``GET /items/{id}`` (one DynamoDB ``GetItem``
with the client it built at import). Wall time is the figure (Lambda's init and first invoke are wall
time); CPU time is printed beside it. Every round runs every target in alternating order; a ratio is the
median over rounds of the target's time divided by the reference's in the same round. The child
measures itself and leaves with ``os._exit``: interpreter shutdown is in no figure. The previous
method's figure (CPU time of the import alone) is printed beside it.

**Memory**: peak RSS (``VmHWM``) of each function after its first request and N warm requests, and a
cost-per-million-requests table for 128 to 1,769 MB at arm64 prices: duration = CPU time per request x
max(1, 1769 / memory) + the measured wait for I/O (loopback moto; for chat, a fake model answering after
a stated latency).

**Quick** (``--quick``, for CI): no build, no timing. The authorizer's two paths are imported from the
sources with the project's interpreter and tracing on, and the modules they load are checked against
the forbidden list; the package sizes are those of ``make build``'s output (``.aws-sam/build``).
"""

from __future__ import annotations

import argparse
import io
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import harness
from budgets import record

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / ".aws-sam" / "bench"
MAKE_BUILD = ROOT / ".aws-sam" / "build"
SAM = ROOT / ".tools" / "bin" / "sam"
BUILD_PYTHON_BIN = ROOT / ".tools" / "build-python" / "bin"
DEPLOYED_ARCHITECTURE = "arm64"  # template.yaml's default
MIB = 1024 * 1024

# Variants of the same build: (name, label, `make bytecode` invalidation mode or None).
VARIANTS = (
    ("source", "sam build", None),
    ("bytecode", "+ bytecode (make build)", "checked-hash"),
)
SHIPPED = "bytecode"
JWKS_FETCH = "chatbot_security.identity.jwks.JwksCache._refresh"

# Lambda arm64 list prices (us-east-1): per GB-second and per request.
ARM64_GB_SECOND = 0.0000133334
REQUEST_PRICE = 0.20 / 1_000_000
FULL_VCPU_MB = 1769
MEMORY_SIZES = (128, 256, 512, 1024, 1536, 1769)


@dataclass(frozen=True)
class Target:
    name: str
    build: str  # "product" or "reference"
    function: str  # directory of the function in the build output
    layer: str  # directory of the layer in the build output
    module: str  # the handler's module, as in the template's Handler
    budget: float | None
    environment: str = "reference"  # which function's variables (harness.LoopbackWorld.function_environment)
    memory_mb: int = 512  # the template's MemorySize
    exclude: str = ""  # a method whose time is taken out of the first request
    source: str = ""  # the function's source folder (quick mode)


REFERENCE = Target(
    "reference",
    "reference",
    "ReferenceFunction",
    "ReferenceLayer",
    "reference_app.handler",
    None,
    source="benchmarks/reference/function",
)
AUTHORIZER_RS256 = Target(
    "authorizer (RS256)", "product", "AuthorizerFunction", "SecurityLayer", "authorizer.handler", 0.5,
    "authorizer", 512, JWKS_FETCH, "functions/authorizer",
)  # fmt: skip
AUTHORIZER_ANONYMOUS = Target(
    "authorizer (session)", "product", "AuthorizerFunction", "SecurityLayer", "authorizer.handler", 0.5,
    "authorizer", 512, "", "functions/authorizer",
)  # fmt: skip
CHAT = Target(
    "chat", "product", "ChatFunction", "SecurityLayer", "chat.handler", 0.8, "chat", 512, source="functions/chat"
)
CLEANUP = Target(
    "cleanup",
    "product",
    "SessionCleanupFunction",
    "SecurityLayer",
    "session_cleanup.handler",
    0.7,
    "cleanup",
    1024,
    source="functions/session_cleanup",
)
TARGETS = (REFERENCE, AUTHORIZER_RS256, AUTHORIZER_ANONYMOUS, CHAT, CLEANUP)
AUTHORIZER_TARGETS = (REFERENCE, AUTHORIZER_RS256, AUTHORIZER_ANONYMOUS)  # --only authorizer
AUTHORIZER_PATHS = {"rs256": AUTHORIZER_RS256, "anonymous": AUTHORIZER_ANONYMOUS}
FUNCTION_SIZE_MIB = 1.0
LAYER_TARGET_MIB = 12.0  # the budget
PACKAGES = (
    "AuthorizerFunction",
    "ChatFunction",
    "SessionCleanupFunction",
    "StreamAuthorizerFunction",
    "StreamFunction",
    "StreamWorkerFunction",
    "SecurityLayer",
)


def host_architecture() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[machine]


def build_dir(architecture: str, build: str, variant: str = "source") -> Path:
    """SAM writes its build graph next to the build directory, so each build gets a parent of its own."""
    return BENCH / architecture / build / variant


# -- building ----------------------------------------------------------------------------------------
def sam_build(template: Path, architecture: str, destination: Path) -> None:
    path = f"{BUILD_PYTHON_BIN}{os.pathsep}{os.environ['PATH']}"  # sam build runs `python3.13 -m pip`
    # the layer's Makefile installs the wheels for LAYER_ARCHITECTURE (sam build does not pass it on)
    environment = {**os.environ, "PATH": path, "SAM_CLI_TELEMETRY": "0", "LAYER_ARCHITECTURE": architecture}
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


def build_everything(host: str, *, deployed: bool = True) -> None:
    """The host builds of the stack and the reference; with ``deployed``, the arm64 build (package sizes)."""
    builds = [
        (ROOT / "template.yaml", host, "product"),
        (ROOT / "benchmarks" / "reference" / "template.yaml", host, "reference"),
    ]
    if deployed and host != DEPLOYED_ARCHITECTURE:
        builds.append((ROOT / "template.yaml", DEPLOYED_ARCHITECTURE, "product"))
    for template, architecture, build in builds:
        print(f"  sam build {template.relative_to(ROOT)} for {architecture}", flush=True)
        sam_build(template, architecture, build_dir(architecture, build))
        for variant, _, invalidation in VARIANTS:
            if invalidation:
                precompile(build_dir(architecture, build), build_dir(architecture, build, variant), invalidation)


# -- probing -----------------------------------------------------------------------------------------
def interpreter(*options: str) -> list[str]:
    """The project's Python 3.13 as Lambda runs it: no site-packages, no bytecode writes, no cwd on sys.path."""
    return [sys.executable, "-S", "-B", "-P", *options]


@dataclass
class Sample(harness.ColdStart):
    """One fresh process: milliseconds."""

    import_cpu: float
    import_wall: float
    first_cpu: float
    first_wall: float


def as_sample(result: harness.ProbeResult) -> Sample:
    return Sample(
        result.import_cpu * 1000, result.import_wall * 1000, result.first_cpu * 1000, result.first_wall * 1000
    )


def probe(
    directory: Path,
    target: Target,
    requests: list[dict[str, Any]] | None = None,
    world: harness.LoopbackWorld | None = None,
    *,
    repeat: int = 0,
    tracing: bool = True,
    slow_model: bool = False,
) -> harness.ProbeResult:
    """Import the target from a build output in a fresh interpreter, then serve ``requests[0]`` (and
    ``repeat`` more, cycling through the rest)."""
    task_root, layer = directory / target.function, directory / target.layer / "python"
    daemon = world.sink.address if world else "127.0.0.1:2000"
    environment = harness.lambda_environment(task_root, target.module, target.memory_mb, daemon, tracing=tracing)
    if world:
        environment |= world.function_environment(target.environment, slow_model=slow_model)
    with tempfile.TemporaryDirectory(prefix="probe-") as scratch:
        return harness.run_probe(
            interpreter(),
            task_root,
            layer,
            target.module,
            requests=requests or [{}],
            environment=environment,
            scratch=Path(scratch),
            repeat=repeat,
            exclude=target.exclude,
        )


def first_requests(world: harness.LoopbackWorld, target: Target, session_id: str) -> list[dict[str, Any]]:
    if target is AUTHORIZER_RS256:
        return [harness.authorizer_event(world.access_token(), session_id)]
    if target is AUTHORIZER_ANONYMOUS:
        return [harness.authorizer_event(world.session_token(session_id), session_id)]
    if target is CHAT:
        return [harness.chat_post_event(session_id)]
    if target is CLEANUP:
        return [harness.cleanup_event()]
    return [harness.reference_event(session_id)]


EXPECTED = {
    REFERENCE.name: "200",
    AUTHORIZER_RS256.name: "True",
    AUTHORIZER_ANONYMOUS.name: "True",
    CHAT.name: "201",
    CLEANUP.name: "ok",
}


def check_outcomes(target: Target, result: harness.ProbeResult) -> None:
    if set(result.outcomes) != {EXPECTED[target.name]}:
        raise SystemExit(f"{target.name}: unexpected outcomes {result.outcomes}: nothing honest to measure")


# -- cold start --------------------------------------------------------------------------------------
@dataclass
class Series:
    samples: list[Sample] = field(default_factory=list)
    wall_ratios: list[float] = field(default_factory=list)  # import + first request, to the reference
    cpu_ratios: list[float] = field(default_factory=list)
    old_ratios: list[float] = field(default_factory=list)  # import CPU only (the previous method)
    modules: list[str] = field(default_factory=list)

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(sample, attribute) for sample in self.samples)


def measure_cold_starts(
    host: str, world: harness.LoopbackWorld, runs: int, targets: tuple[Target, ...] = TARGETS
) -> dict[str, Series]:
    sessions = harness.create_chat_sessions(world, runs)
    series = {target.name: Series() for target in targets}
    segments_before = world.sink.datagrams
    for run in range(runs):
        order = targets if run % 2 == 0 else targets[::-1]
        this_round: dict[str, Sample] = {}
        for target in order:
            result = probe(
                build_dir(host, target.build, SHIPPED), target, first_requests(world, target, sessions[run]), world
            )
            check_outcomes(target, result)
            this_round[target.name] = as_sample(result)
            series[target.name].modules = result.modules
        reference = this_round[REFERENCE.name]
        for name, sample in this_round.items():
            entry = series[name]
            entry.samples.append(sample)
            entry.wall_ratios.append(sample.cold_wall / reference.cold_wall)
            entry.cpu_ratios.append(sample.cold_cpu / reference.cold_cpu)
            entry.old_ratios.append(sample.import_cpu / reference.import_cpu)
        print(f"  round {run + 1}/{runs}", end="\r", flush=True)
    if world.sink.datagrams == segments_before:
        raise SystemExit("no X-Ray segment was sent: tracing was not on, the figures would flatter")
    print(f"  X-Ray segments received from the fresh processes: {world.sink.datagrams - segments_before}")
    return series


def median_sample(entry: Series) -> Sample:
    return Sample(*(entry.median(name) for name in ("import_cpu", "import_wall", "first_cpu", "first_wall")))


def report_cold_start(host: str, runs: int, series: dict[str, Series]) -> None:
    print(f"Cold start (budget 1): import + first request, fresh process, {host} build with bytecode as shipped,")
    print(f"tracing active, loopback moto for both sides; median of {runs} alternating rounds, ms (ratio to the")
    print("reference in the same round)")
    header = ("", "import wall", "first req wall", "total wall", "total CPU", "import CPU (old)")
    print("  " + f"{header[0]:22s}" + "".join(f"{h:>20s}" for h in header[1:]) + "   budget (wall)")
    for target in TARGETS:
        if target.name not in series:
            continue
        entry = series[target.name]
        ratio = statistics.median(entry.wall_ratios)
        cpu_ratio, old = statistics.median(entry.cpu_ratios), statistics.median(entry.old_ratios)
        cells = [
            f"{entry.median('import_wall'):8.0f}",
            f"{entry.median('first_wall'):8.0f}",
            f"{entry.median('cold_wall'):8.0f} {ratio:5.2f}x",
            f"{entry.median('cold_cpu'):8.0f} {cpu_ratio:5.2f}x",
            f"{entry.median('import_cpu'):8.0f} {old:5.2f}x",
        ]
        if target.budget is None:
            suffix = "(the reference)"
        else:
            passed = ratio <= target.budget
            suffix = f"<= {target.budget}x {'PASS' if passed else 'MISS'}"
            record(
                "1",
                f"init + first request: {target.name}",
                f"{ratio:.2f}x (CPU {cpu_ratio:.2f}x)",
                f"<= {target.budget}x",
                passed,
                old=f"import CPU {old:.2f}x",
            )
        print("  " + f"{target.name:22s}" + "".join(f"{cell:>20s}" for cell in cells) + f"   {suffix}")


# -- modules on the authorizer path ----------------------------------------------------------------
def loaded(modules: list[str], name: str) -> bool:
    return any(module == name or module.startswith(name + ".") for module in modules)


def report_authorizer_modules(paths: dict[str, list[str]], where: str) -> bool:
    print(f"Modules on the authorizer path (gate 6), {where}, tracing on, after the first request:")
    met = True
    for path, modules in paths.items():
        forbidden = harness.FORBIDDEN_ON_AUTHORIZER_PATH[path]
        found = [name for name in forbidden if loaded(modules, name)]
        heavy = [
            f"{name} ({sum(loaded([m], name) for m in modules)})"
            for name in (
                "pydantic",
                "pydantic_core",
                "boto3",
                "botocore",
                "aws_xray_sdk",
                "jwt",
                "cryptography",
                "urllib3",
                "aws_lambda_powertools",
            )
            if loaded(modules, name)
        ]
        passed = not found
        met &= passed
        print(
            f"  {path:10s} {len(modules)} modules; forbidden {', '.join(forbidden)}: "
            f"{'none loaded, PASS' if passed else 'LOADED ' + ', '.join(found) + ', MISS'}"
        )
        print(f"  {'':10s} loaded (modules): {', '.join(heavy) or 'none'}")
        record(
            "6",
            f"forbidden modules, authorizer {path} path",
            f"{', '.join(found) or 'none'} of {len(modules)}",
            "none",
            passed,
            gate=True,
        )
    return met


# -- memory and cost ------------------------------------------------------------------------------
@dataclass
class Usage:
    target: Target
    peak_rss_mib: float
    cpu_ms: float  # per warm request
    wait_ms: float  # per warm request: wall - CPU
    requests: int
    note: str


def measure_usage(host: str, world: harness.LoopbackWorld, requests: int, cleanup_requests: int) -> list[Usage]:
    sessions = harness.create_chat_sessions(world, 10)
    usages = []
    for target in TARGETS[1:]:
        count = cleanup_requests if target is CLEANUP else requests
        directory = build_dir(host, target.build, SHIPPED)
        events = first_requests(world, target, sessions[0])
        if target is CHAT:  # ten sessions, a hundred turns each: a container sees many sessions
            events += [harness.chat_post_event(session) for session in sessions]
        elif target in (AUTHORIZER_RS256, AUTHORIZER_ANONYMOUS):
            events += [first_requests(world, target, session)[0] for session in sessions]
        result = probe(directory, target, events, world, repeat=count)
        check_outcomes(target, result)
        cpu, wait = result.warm_cpu / count * 1000, max(0.0, result.warm_wall - result.warm_cpu) / count * 1000
        note = "loopback moto"
        if target is CHAT:  # the wait a real model adds: measured against a fake model of stated latency
            slow = probe(directory, target, events[:2], world, repeat=10, slow_model=True)
            check_outcomes(target, slow)
            wait = max(0.0, slow.warm_wall - slow.warm_cpu) / 10 * 1000
            note = f"fake model answering in {world.model_latency * 1000:.0f} ms, loopback moto"
        usages.append(Usage(target, result.max_rss_kib / 1024, cpu, wait, count, note))
    return usages


def cost_per_million(cpu_ms: float, wait_ms: float, memory_mb: int) -> tuple[float, float]:
    """(billed ms per request, dollars per million requests) at arm64 prices."""
    duration = math.ceil(cpu_ms * max(1.0, FULL_VCPU_MB / memory_mb) + wait_ms)
    dollars = duration / 1000 * memory_mb / 1024 * ARM64_GB_SECOND + REQUEST_PRICE
    return duration, dollars * 1_000_000


def report_usage(usages: list[Usage], cold: dict[str, Sample]) -> None:
    """Cost per million requests at each size, and below it the cold start's duration at that size (init
    and first request: CPU scaled like a request's, plus the measured wait), which is what a user feels."""
    print("Memory and cost (item 7): peak RSS after the warm requests; cost per million requests, arm64,")
    print("duration = CPU x max(1, 1769 / MB) + measured I/O wait, billed per ms (CPU measured on this machine);")
    print("second line: the cold start (init + first request) at that size, ms")
    sizes = "".join(f"{size:>10d}" for size in MEMORY_SIZES)
    print(f"  {'':22s}{'requests':>9s}{'peak RSS':>11s}{'CPU/req':>10s}{'wait/req':>10s}  {sizes}   MemorySize")
    for usage in usages:
        cells, starts = [], []
        sample = cold[usage.target.name]
        for size in MEMORY_SIZES:
            _, dollars = cost_per_million(usage.cpu_ms, usage.wait_ms, size)
            fits = usage.peak_rss_mib <= 0.8 * size
            cells.append(f"${dollars:7.2f}{' ' if fits else '!'}")
            starts.append(
                f"{cost_per_million(sample.cold_cpu, max(0.0, sample.cold_wall - sample.cold_cpu), size)[0]:9d} "
            )
        print(
            f"  {usage.target.name:22s}{usage.requests:9d}{usage.peak_rss_mib:8.0f} MiB{usage.cpu_ms:8.2f}ms"
            f"{usage.wait_ms:8.2f}ms  "
            + "".join(f"{cell:>10s}" for cell in cells)
            + f"   {usage.target.memory_mb} MB ({usage.note})"
        )
        print(f"  {'  cold start, ms':63s}" + "".join(f"{cell:>10s}" for cell in starts))
        configured = cost_per_million(usage.cpu_ms, usage.wait_ms, usage.target.memory_mb)
        cold_at_size = cost_per_million(
            sample.cold_cpu, max(0.0, sample.cold_wall - sample.cold_cpu), usage.target.memory_mb
        )[0]
        record(
            "7",
            f"peak RSS, $ per 1M, cold start: {usage.target.name}",
            f"{usage.peak_rss_mib:.0f} MiB ${configured[1]:.2f} {cold_at_size} ms",
            f"{usage.target.memory_mb} MB",
            None,
        )
    print("  '!' marks a size where the peak RSS exceeds 80% of the memory (no headroom)")


# -- package size ------------------------------------------------------------------------------------
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


def report_packages(shipped: Path, plain: Path | None) -> bool:
    """Package sizes; True when every gate holds (function code <= 1 MiB each, the layer <= 12 MiB)."""
    print(f"Package size (budget 5): {shipped.relative_to(ROOT)}, zipped with deflate as sam deploy does")
    print(f"  {'':24s}{'sam build':>14s}{'+ bytecode (shipped)':>22s}{'unzipped, shipped':>20s}")
    met = True
    for directory in PACKAGES:
        if not (shipped / directory).is_dir():
            raise SystemExit(f"{shipped / directory} is missing: run make build first")
        size = zipped_size(shipped / directory) / MIB
        before = f"{zipped_size(plain / directory) / MIB:10.3f} MiB" if plain else f"{'':14s}"
        unzipped = unzipped_size(shipped / directory) / MIB
        layer = directory.endswith("Layer")
        budget = LAYER_TARGET_MIB if layer else FUNCTION_SIZE_MIB
        passed = size <= budget
        verdict = "PASS" if passed else "MISS"
        print(f"  {directory:24s}{before}{size:18.3f} MiB{unzipped:16.1f} MiB   budget {budget:g} MiB {verdict}")
        what = f"layer zipped: {directory}" if layer else f"function code zipped: {directory}"
        old = "28.89 MiB, budget was 30 MiB" if layer else ""
        record("5", what, f"{size:.2f} MiB", f"<= {budget:g} MiB", passed, old=old, gate=True)
        met &= passed
    return met


# -- quick -------------------------------------------------------------------------------------------
def quick_authorizer_modules(world: harness.LoopbackWorld) -> dict[str, list[str]]:
    """The authorizer imported from the sources (the project's interpreter), tracing on, first request."""
    session_id = harness.create_chat_sessions(world, 1)[0]
    paths = {}
    for path, target in (("rs256", AUTHORIZER_RS256), ("anonymous", AUTHORIZER_ANONYMOUS)):
        task_root = ROOT / target.source
        environment = harness.lambda_environment(
            task_root, target.module, target.memory_mb, world.sink.address, tracing=True
        ) | world.function_environment(target.environment)
        with tempfile.TemporaryDirectory(prefix="probe-") as scratch:
            result = harness.run_probe(
                [sys.executable, "-B", "-P"],
                task_root,
                ROOT / "layers" / "security",
                target.module,
                requests=first_requests(world, target, session_id),
                environment=environment,
                scratch=Path(scratch),
                exclude=target.exclude,
            )
        check_outcomes(target, result)
        paths[path] = result.modules
    paths["stream-connect"] = quick_stream_authorizer_modules(world)
    return paths


STREAM_AUTHORIZER_SOURCE = "functions/stream_authorizer"
CONNECT_ARN = "arn:aws:execute-api:eu-west-1:123456789012:abcdef1234/v1/$connect"


def quick_stream_authorizer_modules(world: harness.LoopbackWorld) -> list[str]:
    """The WebSocket $connect authorizer from the sources, tracing on, consuming a valid ticket."""
    from chatbot_local.aws import client
    from chatbot_security.storage.tickets import DynamoTicketStore, TicketGrant

    dynamodb = client("dynamodb", world.moto_url, harness.REGION)
    grant = TicketGrant(owner="bench-owner", kind="user", session_id=str(uuid.uuid4()), credential_exp=2**31)
    ticket = DynamoTicketStore(lambda: dynamodb, world.table_name).issue(grant).ticket
    task_root = ROOT / STREAM_AUTHORIZER_SOURCE
    environment = harness.lambda_environment(
        task_root, "stream_authorizer.handler", 128, world.sink.address, tracing=True
    ) | world.function_environment("cleanup")  # the same variables: the table's name and the endpoint
    event = {"type": "REQUEST", "methodArn": CONNECT_ARN, "queryStringParameters": {"ticket": ticket}}
    with tempfile.TemporaryDirectory(prefix="probe-") as scratch:
        result = harness.run_probe(
            [sys.executable, "-B", "-P"],
            task_root,
            ROOT / "layers" / "security",
            "stream_authorizer.handler:handler",
            requests=[event],
            environment=environment,
            scratch=Path(scratch),
        )
    if set(result.outcomes) != {"Allow"}:
        raise SystemExit(f"stream authorizer: unexpected outcomes {result.outcomes}: nothing honest to check")
    return result.modules


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Cold start, memory, cost and package size from the sam build output")
    parser.add_argument("--runs", type=int, default=15, help="alternating rounds (default 15)")
    parser.add_argument("--memory-requests", type=int, default=1000, help="warm requests before the peak RSS")
    parser.add_argument(
        "--cleanup-requests",
        type=int,
        default=100,
        help="warm sweeps of the cleanup (each is 65 DynamoDB queries: 16 shards, 49 hourly keys; default 100)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 when a budget is missed")
    parser.add_argument("--skip-build", action="store_true", help="reuse the builds under .aws-sam/bench")
    parser.add_argument(
        "--quick", action="store_true", help="CI: structural figures only, from the sources and make build"
    )
    parser.add_argument(
        "--only",
        choices=("authorizer",),
        help="authorizer: only the reference and the authorizer's two paths (cold start and modules; no memory, "
        "no package sizes, no arm64 build)",
    )
    options = parser.parse_args(argv)
    harness.add_source_paths()

    if options.quick:
        with harness.loopback_world() as world:
            modules_ok = report_authorizer_modules(quick_authorizer_modules(world), "from the sources")
        sizes_ok = report_packages(MAKE_BUILD, None)
        return 0 if modules_ok and sizes_ok else 1

    host = host_architecture()
    if not options.skip_build:
        print(f"Building under {BENCH.relative_to(ROOT)} (host {host}, deployed {DEPLOYED_ARCHITECTURE}):", flush=True)
        build_everything(host, deployed=options.only is None)
    if options.only == "authorizer":
        with harness.loopback_world() as world:
            series = measure_cold_starts(host, world, options.runs, AUTHORIZER_TARGETS)
            report_cold_start(host, options.runs, series)
            paths = {path: series[target.name].modules for path, target in AUTHORIZER_PATHS.items()}
            modules_ok = report_authorizer_modules(paths, "from the build output")
        met = modules_ok and all(
            statistics.median(series[t.name].wall_ratios) <= t.budget for t in AUTHORIZER_TARGETS if t.budget
        )
        return 1 if options.strict and not met else 0
    met = True
    with harness.loopback_world() as world:
        series = measure_cold_starts(host, world, options.runs)
        report_cold_start(host, options.runs, series)
        met &= all(statistics.median(series[t.name].wall_ratios) <= t.budget for t in TARGETS if t.budget is not None)
        paths = {"rs256": series[AUTHORIZER_RS256.name].modules, "anonymous": series[AUTHORIZER_ANONYMOUS.name].modules}
        met &= report_authorizer_modules(paths, "from the build output")
        cold = {name: median_sample(entry) for name, entry in series.items()}
        report_usage(measure_usage(host, world, options.memory_requests, options.cleanup_requests), cold)
    met &= report_packages(
        build_dir(DEPLOYED_ARCHITECTURE, "product", SHIPPED), build_dir(DEPLOYED_ARCHITECTURE, "product")
    )
    return 1 if options.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
