"""Authorizer, warm (budget 2): the whole Lambda handler per request, next to the bare crypto.

    .venv/bin/python benchmarks/bench_authorizer.py [--rounds N] [--strict]

Budgets, each a ratio inside one process (the machine's speed cancels out), with tracing active as
deployed (``Tracing: Active``: Powertools' Tracer on, a sampled trace header per invocation, segments
sent to a UDP socket that only counts them):

* RS256 access token: ``authorizer.handler.lambda_handler`` (Powertools' logger context, metrics flush,
  tracer, the decision) at most 3x a bare ``cryptography`` RSA-2048 verify of the same token (signature
  and signing input already decoded: the crypto alone);
* session token: the handler at most 10x a bare ``hmac.digest`` of the same token;
* no network call on a warm request (sockets, DNS, JWKS fetches and Secrets Manager reads counted).

The same run with tracing off is printed for information, and beside it the previous method's figure:
``authorizer.decision.authorize`` alone (no logger, metrics or tracer), tracing off. Each setting runs
in its own process (the Tracer reads its environment when it is created); in each, every figure is the
median over interleaved rounds (bare, decision, handler, bare, ...) of per-round ratios.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import hashlib
import hmac
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness
from budgets import record

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "layers" / "security"), str(ROOT / "functions" / "authorizer")]

ISSUER = "https://issuer.bench.invalid"
AUDIENCE = "bench-client"
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:bench-session-key"  # noqa: S105 - an ARN
ROUND_SECONDS = 0.05


@dataclass
class Figure:
    name: str
    per_call_us: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.per_call_us)


class NetworkGuard:
    """Counts every attempt to open a connection or resolve a name while active."""

    def __init__(self) -> None:
        self.calls = 0

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        real_connect, real_resolve = socket.socket.connect, socket.getaddrinfo

        def connect(sock: socket.socket, address: Any) -> Any:
            self.calls += 1
            return real_connect(sock, address)

        def resolve(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return real_resolve(*args, **kwargs)

        socket.socket.connect = connect  # type: ignore[method-assign, assignment]
        socket.getaddrinfo = resolve
        try:
            yield
        finally:
            socket.socket.connect = real_connect  # type: ignore[method-assign]
            socket.getaddrinfo = real_resolve


def configure_environment(tracing: bool, daemon: str) -> None:
    """Before the product is imported: the Tracer reads its environment when it is created."""
    os.environ.pop("POWERTOOLS_TRACE_DISABLED", None)
    os.environ.update(harness.tracing_environment(str(ROOT / "functions" / "authorizer"), daemon, active=tracing))
    os.environ.update(
        {
            "OIDC_ISSUER": ISSUER,
            "OIDC_AUDIENCE": AUDIENCE,
            "ALLOW_ANONYMOUS": "true",
            "SESSION_TOKEN_SECRET_ARN": SECRET_ARN,
            "POWERTOOLS_SERVICE_NAME": "authorizer-bench",
            "POWERTOOLS_METRICS_NAMESPACE": "Chatbot",
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "AWS_DEFAULT_REGION": "eu-west-1",
        }
    )
    warnings.filterwarnings("ignore", message="No application metrics to publish")


def calibrate(function: Callable[[], object]) -> int:
    """How many calls fill one round."""
    number = 1
    while True:
        elapsed = timeit.Timer(function).timeit(number=number)
        if elapsed >= ROUND_SECONDS / 5:
            return max(1, int(number * ROUND_SECONDS / elapsed))
        number *= 4


def measure(functions: dict[str, Callable[[], object]], rounds: int) -> dict[str, Figure]:
    numbers = {name: calibrate(function) for name, function in functions.items()}
    figures = {name: Figure(name, []) for name in functions}
    for _ in range(rounds):
        for name, function in functions.items():
            elapsed = timeit.Timer(function).timeit(number=numbers[name])
            figures[name].per_call_us.append(elapsed / numbers[name] * 1e6)
    return figures


def ratio(figures: dict[str, Figure], name: str, bare: str) -> float:
    """Median of the per-round ratios: each round's two figures were taken back to back."""
    pairs = zip(figures[name].per_call_us, figures[bare].per_call_us, strict=True)
    return statistics.median(target / reference for target, reference in pairs)


@dataclass
class Bench:
    """Everything one warm container holds, built from an in-memory issuer and secret."""

    authorize: Callable[[dict[str, Any]], Any]
    handler: Callable[[dict[str, Any]], Any]
    user_event: dict[str, Any]
    anonymous_event: dict[str, Any]
    bare_rsa: Callable[[], object]
    bare_hmac: Callable[[], object]
    token_bytes: int
    remote_calls: Callable[[], int]


def build() -> Bench:
    import jwt
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    from authorizer.decision import Authenticator, authorize
    from authorizer.handler import lambda_handler, session_token_keys
    from chatbot_security.identity import session_tokens
    from chatbot_security.identity.jwks import JwksCache
    from chatbot_security.identity.oidc import AccessTokenVerifier
    from chatbot_security.platform.secrets import CURRENT, SecretCache
    from chatbot_security.platform.settings import get_settings
    from tools.lambda_context import FakeLambdaContext

    # An RSA-2048 issuer, served from memory: a JWKS fetch would be counted, never sent.
    key, jwk = harness.signing_key()

    def issuer_documents(url: str, timeout: float) -> dict[str, Any]:
        if url.endswith("openid-configuration"):
            return {"issuer": ISSUER, "jwks_uri": ISSUER + "/jwks.json"}
        return {"keys": [jwk]}

    secret_reads = [0]

    def read_secret(secret_id: str, stage: str) -> str | None:
        secret_reads[0] += 1
        return "bench-session-secret" if stage == CURRENT else "bench-previous-secret"

    settings = get_settings()
    jwks = JwksCache(settings, fetch=issuer_documents)
    secrets = SecretCache(fetch=read_secret)

    keys = functools.partial(session_token_keys, secrets, SECRET_ARN)  # the handler's own key provider
    authenticator = Authenticator(settings, AccessTokenVerifier(settings, jwks), keys)

    now = int(time.time())
    claims = {
        "iss": ISSUER, "sub": "3f1c9a52-7c1e-4d4b-9a39-5d1f3a0c2b61", "client_id": AUDIENCE, "token_use": "access",
        "scope": "openid profile", "auth_time": now, "iat": now, "exp": now + 3600, "jti": str(uuid.uuid4()),
        "username": "bench-user", "cognito:groups": ["users"], "origin_jti": str(uuid.uuid4()),
    }  # fmt: skip
    access_token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "bench-1"})
    signing_input, _, signature_text = access_token.rpartition(".")
    signature, signed_bytes = base64.urlsafe_b64decode(signature_text + "=="), signing_input.encode()
    public_key = key.public_key()

    session_id = str(uuid.uuid4())
    session_key = session_tokens.derive_key("bench-session-secret")
    session_token = session_tokens.issue(session_key, session_id, now + 3600)
    session_signed = session_token.rpartition(".")[0].encode()
    context, sink = FakeLambdaContext("AuthorizerFunction", 256, "bench"), io.StringIO()

    def handler(payload: dict[str, Any]) -> Any:
        # The Lambda runtime sets a new trace header for every invocation
        os.environ["_X_AMZN_TRACE_ID"] = harness.new_trace_header()
        with contextlib.redirect_stdout(sink):  # the metrics flush prints; keep the report readable
            result = lambda_handler(payload, context, authenticator=authenticator)
        sink.seek(0)
        sink.truncate()
        return result

    def remote_calls() -> int:
        return jwks.fetch_count + secret_reads[0]

    return Bench(
        authorize=lambda payload: authorize(payload, authenticator, settings),
        handler=handler,
        user_event=harness.authorizer_event(access_token, session_id),
        anonymous_event=harness.authorizer_event(session_token, session_id),
        bare_rsa=lambda: public_key.verify(signature, signed_bytes, padding.PKCS1v15(), hashes.SHA256()),
        bare_hmac=lambda: hmac.digest(session_key, session_signed, hashlib.sha256),
        token_bytes=len(access_token),
        remote_calls=remote_calls,
    )


PAIRS = (  # label, measured, bare, budget (tracing on), old budget (decision, tracing off)
    ("RS256 access token", "RS256", "bare RSA-2048 verify", 3.0, 4.0),
    ("session token", "session", "bare hmac.digest", 10.0, 6.0),
)


def report(runs: dict[str, dict[str, Any]], rounds: int) -> bool:
    """Print the figures of both processes (tracing on and off); True when every budget is met."""
    on, off = runs["on"], runs["off"]
    figures = {setting: {n: Figure(n, v) for n, v in run["figures"].items()} for setting, run in runs.items()}
    print(
        f"Authorizer, warm (budget 2): median of {rounds} interleaved rounds per process, "
        f"access token {on['token_bytes']} B; X-Ray segments sent with tracing on: {on['segments']}"
    )
    print(f"  {'':40s}{'tracing on':>22s}{'tracing off':>22s}   budget (tracing on)")
    for bare in ("bare RSA-2048 verify", "bare hmac.digest"):
        cells = "".join(f"{figures[s][bare].median:13.2f} us{'':7s}" for s in ("on", "off"))
        print(f"  {bare:40s}{cells}")
    met = True
    for label, kind, bare, budget, old_budget in PAIRS:
        ratios = {s: ratio(figures[s], f"{kind} handler", bare) for s in ("on", "off")}
        cells = "".join(f"{figures[s][f'{kind} handler'].median:9.2f} us {ratios[s]:6.2f}x" for s in ("on", "off"))
        passed = ratios["on"] <= budget
        met &= passed
        print(f"  {label + ', whole handler':40s}{cells}   <= {budget:g}x {'PASS' if passed else 'MISS'}")
        old = ratio(figures["off"], f"{kind} decision", bare)
        decision = figures["off"][f"{kind} decision"].median
        print(
            f"  {label + ', decision only (old method)':40s}{'':22s}{decision:9.2f} us {old:6.2f}x   "
            f"(old budget <= {old_budget:g}x)"
        )
        record(
            "2",
            f"{label}: handler vs bare crypto, tracing on",
            f"{ratios['on']:.2f}x (off {ratios['off']:.2f}x)",
            f"<= {budget:g}x",
            passed,
            old=f"decision, tracing off {old:.2f}x (<= {old_budget:g}x)",
        )
    calls = on["network_calls"] + off["network_calls"]
    met &= calls == 0
    record("2", "network calls on warm requests", str(calls), "0", calls == 0)
    print(f"  {'network calls on warm requests':40s}{calls:13d}{'':31s}   0 {'PASS' if calls == 0 else 'MISS'}")
    return met


def measure_one(rounds: int, tracing: bool) -> dict[str, Any]:
    """In this process, with tracing on or off: every figure, per round."""
    sink = harness.SegmentSink()
    configure_environment(tracing, sink.address)
    bench = build()

    # Warm up: the first requests fetch the JWKS and read the secret, like a cold container's.
    warm = (bench.authorize(bench.user_event), bench.authorize(bench.anonymous_event), bench.handler(bench.user_event))
    if (warm[0].kind, warm[1].kind, warm[2].get("isAuthorized")) != ("user", "anonymous", True):
        raise SystemExit("the benchmark's tokens were not accepted: nothing to measure")
    remote_before = bench.remote_calls()

    guard = NetworkGuard()
    with guard.watching():
        figures = measure(
            {
                "bare RSA-2048 verify": bench.bare_rsa,
                "RS256 decision": lambda: bench.authorize(bench.user_event),
                "RS256 handler": lambda: bench.handler(bench.user_event),
                "bare hmac.digest": bench.bare_hmac,
                "session decision": lambda: bench.authorize(bench.anonymous_event),
                "session handler": lambda: bench.handler(bench.anonymous_event),
            },
            rounds,
        )
    if tracing and not sink.datagrams:
        raise SystemExit("no X-Ray segment was sent: tracing was not on, the figures would flatter")
    return {
        "figures": {name: figure.per_call_us for name, figure in figures.items()},
        "network_calls": guard.calls + bench.remote_calls() - remote_before,
        "token_bytes": bench.token_bytes,
        "segments": sink.datagrams,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Authorizer, warm: the whole handler against the bare crypto")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (default 15)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a budget is missed")
    parser.add_argument("--tracing", choices=("on", "off"), help=argparse.SUPPRESS)  # one process's half
    parser.add_argument("--emit", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.tracing:
        Path(options.emit).write_text(json.dumps(measure_one(options.rounds, options.tracing == "on")))
        return 0
    runs = {}
    with tempfile.TemporaryDirectory(prefix="bench-authorizer-") as scratch:
        for setting in ("on", "off"):
            emit = Path(scratch) / f"{setting}.json"
            subprocess.run(  # noqa: S603 - this script, in a process of its own
                [sys.executable, __file__, "--rounds", str(options.rounds), "--tracing", setting, "--emit", str(emit)],
                check=True,
            )
            runs[setting] = json.loads(emit.read_text())
    met = report(runs, options.rounds)
    return 1 if options.strict and not met else 0


if __name__ == "__main__":
    sys.exit(main())
