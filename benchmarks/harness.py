"""What the benchmarks share: Lambda's environment with active tracing, a loopback world for the
handlers to talk to, and a probe that times a handler's import and first requests in a fresh process.

Not a ``bench_*.py``: ``run_all.py`` does not run it.

The loopback world (:class:`LoopbackWorld`) is everything a function's first request reaches, none of
it AWS: moto's threaded server with the table, key and secrets of ``template.yaml`` (and the reference's
``items`` table), a fake Bedrock runtime answering ``Converse`` after a stated latency, an OIDC issuer
serving its discovery document and JWKS, and a UDP socket where X-Ray segments land and are only
counted (the address Lambda's X-Ray daemon would have).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REGION = "eu-west-1"
AUDIENCE = "bench-client"
REFERENCE_TABLE = "items"
MODEL_ID = "bench-model"
# A sampled trace header, as the Lambda runtime sets it for each invocation of a `Tracing: Active`
# function (Root changes per invocation: :func:`new_trace_header`).
TRACE_HEADER = "Root=1-{epoch:08x}-{root};Parent={parent};Sampled=1;Lineage=1"
# Modules the authorizer path must never import (the structural gate of ``--quick``). Today's
# authorizers import none of them; the list only grows (docs/performance.md, "The CI guard"). Neither
# authorizer loads pydantic: their settings and principal are read by hand.
FORBIDDEN_ON_AUTHORIZER_PATH = {
    # botocore's package itself is loaded (by the X-Ray SDK's patcher); its session and client are the SDK
    "rs256": (
        "aws_lambda_powertools.event_handler",
        "pydantic",
        "boto3",
        "botocore.session",
        "botocore.client",
        "chat",
        "session_cleanup",
        "moto",
    ),
    # The anonymous path reads its secret with botocore's own session: boto3 is not needed there either.
    "anonymous": ("aws_lambda_powertools.event_handler", "pydantic", "boto3", "chat", "session_cleanup", "moto"),
    # The WebSocket $connect authorizer, a valid ticket consumed (one DynamoDB call): lean by design, no
    # pydantic and no token verification library either.
    "stream-connect": (
        "aws_lambda_powertools.event_handler",
        "boto3",
        "pydantic",
        "jwt",
        "chat",
        "stream",
        "session_cleanup",
        "moto",
    ),
}


def new_trace_header() -> str:
    return TRACE_HEADER.format(epoch=int(time.time()), root=uuid.uuid4().hex[:24], parent=uuid.uuid4().hex[:16])


def tracing_environment(task_root: str, daemon: str, *, active: bool) -> dict[str, str]:
    """What ``Tracing: Active`` adds to a function's environment, and what Powertools' Tracer checks.

    The Tracer is on when ``LAMBDA_TASK_ROOT`` is set and neither ``POWERTOOLS_TRACE_DISABLED``,
    ``AWS_SAM_LOCAL`` nor ``AWS_CHALICE_CLI_MODE`` is; the X-Ray SDK then builds a facade segment from
    ``_X_AMZN_TRACE_ID`` (sampled) and sends subsegments to ``AWS_XRAY_DAEMON_ADDRESS`` over UDP.
    ``active=False`` is the same function with tracing switched off, for comparison.
    """
    environment = {
        "LAMBDA_TASK_ROOT": task_root,
        "AWS_XRAY_DAEMON_ADDRESS": daemon,
        "_AWS_XRAY_DAEMON_ADDRESS": daemon.rpartition(":")[0],
        "_AWS_XRAY_DAEMON_PORT": daemon.rpartition(":")[2],
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
        "_X_AMZN_TRACE_ID": new_trace_header(),
    }
    if not active:
        environment["POWERTOOLS_TRACE_DISABLED"] = "true"
    return environment


def lambda_environment(task_root: Path, module: str, memory_mb: int, daemon: str, *, tracing: bool) -> dict[str, str]:
    """What the Lambda runtime sets for a Python 3.13 function; fake credentials, as Lambda's are env vars."""
    nowhere = str(ROOT / ".aws-sam" / "bench" / "no-aws-config")
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "_HANDLER": f"{module}.lambda_handler",
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "AWS_LAMBDA_FUNCTION_NAME": "bench",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_SESSION_TOKEN": "bench",
        "AWS_CONFIG_FILE": nowhere,
        "AWS_SHARED_CREDENTIALS_FILE": nowhere,
        "AWS_EC2_METADATA_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "bench",
        "POWERTOOLS_METRICS_NAMESPACE": "Chatbot",
        **tracing_environment(str(task_root), daemon, active=tracing),
    }


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signing_key() -> tuple[Any, dict[str, str]]:
    """A fresh RSA-2048 issuer key and its public JWK (kid `bench-1`, RS256)."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = key.public_key().public_numbers()
    jwk = {
        "kty": "RSA", "kid": "bench-1", "use": "sig", "alg": "RS256",
        "n": b64url(numbers.n.to_bytes(256, "big")), "e": b64url(numbers.e.to_bytes(3, "big")),
    }  # fmt: skip
    return key, jwk


# -- loopback peers -----------------------------------------------------------------------------
class _JsonServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, routes: dict[str, Any], latency: float = 0.0) -> None:
        self.routes, self.latency, self.requests = routes, latency, 0
        super().__init__(("127.0.0.1", 0), _JsonHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _JsonHandler(BaseHTTPRequestHandler):
    server: _JsonServer

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        self.server.requests += 1
        for suffix, document in self.server.routes.items():
            if self.path.endswith(suffix):
                if self.server.latency:
                    time.sleep(self.server.latency)  # the stated model latency: waiting is what it measures
                body = json.dumps(document).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
        self.send_error(404)

    do_GET = do_POST = _answer  # noqa: N815 - http.server's method names

    def log_message(self, *args: Any) -> None:
        return


CONVERSE_REPLY = {
    "output": {"message": {"role": "assistant", "content": [{"text": "Paris is the capital of France."}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 12, "outputTokens": 8, "totalTokens": 20},
    "metrics": {"latencyMs": 1},
}


class SegmentSink:
    """A UDP socket where the X-Ray SDK's segments land; it counts them and keeps nothing."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._socket.getsockname()[1]}"
        self.datagrams = 0
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                self._socket.recv(65536)
                self.datagrams += 1

    def close(self) -> None:
        self._socket.close()


@dataclass
class LoopbackWorld:
    """moto, a fake Bedrock runtime, an OIDC issuer and an X-Ray sink, all on loopback."""

    moto_url: str
    table_name: str
    key_arn: str
    secret_arns: Mapping[str, str]
    issuer: _JsonServer
    bedrock: _JsonServer
    slow_bedrock: _JsonServer
    sink: SegmentSink
    signing_key: Any
    model_latency: float
    _moto: Any = field(repr=False, default=None)

    def function_environment(self, function: str, *, slow_model: bool = False) -> dict[str, str]:
        """The template's variables for each function, pointed at the loopback peers."""
        common = {"AWS_ENDPOINT_URL": self.moto_url, "POWERTOOLS_LOG_LEVEL": "INFO"}
        if function == "authorizer":
            return common | {
                "OIDC_ISSUER": self.issuer.url,
                "OIDC_AUDIENCE": AUDIENCE,
                "ALLOW_LOOPBACK_ISSUER": "true",  # http:// on loopback: the issuer is a local server
                "ALLOW_ANONYMOUS": "true",
                "SESSION_TOKEN_SECRET_ARN": self.secret_arns["SessionTokenSecret"],
            }
        if function == "chat":
            return common | {
                "TABLE_NAME": self.table_name,
                "KMS_KEY_ID": self.key_arn,
                "SESSION_TOKEN_SECRET_ARN": self.secret_arns["SessionTokenSecret"],
                "USER_ID_PEPPER_SECRET_ARN": self.secret_arns["UserIdPepperSecret"],
                "MODEL_PROVIDER": "bedrock",
                "MODEL_ID": MODEL_ID,
                "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": (self.slow_bedrock if slow_model else self.bedrock).url,
                "RATE_LIMIT_PER_MINUTE": "10000",
                "MAX_MESSAGES_PER_SESSION": "10000",
                "ALLOW_ANONYMOUS": "true",
            }
        if function == "cleanup":
            return common | {"TABLE_NAME": self.table_name}
        return common  # the reference: its table name is in its code

    def access_token(self) -> str:
        import jwt

        now = int(time.time())
        claims = {
            "iss": self.issuer.url, "sub": str(uuid.uuid4()), "client_id": AUDIENCE, "token_use": "access",
            "scope": "openid profile", "auth_time": now, "iat": now, "exp": now + 3600, "jti": str(uuid.uuid4()),
            "username": "bench-user", "cognito:groups": ["users"],
        }  # fmt: skip
        return jwt.encode(claims, self.signing_key, algorithm="RS256", headers={"kid": "bench-1"})

    def session_token(self, session_id: str) -> str:
        from chatbot_security.identity import session_tokens

        secret = self.secret_value("SessionTokenSecret")
        return session_tokens.issue(session_tokens.derive_key(secret), session_id, int(time.time()) + 3600)

    def secret_value(self, logical_id: str) -> str:
        from chatbot_local.aws import client

        response = client("secretsmanager", self.moto_url, REGION).get_secret_value(
            SecretId=self.secret_arns[logical_id]
        )
        return str(response["SecretString"])

    def close(self) -> None:
        for server in (self.issuer, self.bedrock, self.slow_bedrock):
            server.shutdown()
        self.sink.close()
        if self._moto is not None:
            self._moto.stop()


def add_source_paths(*extra: str) -> None:
    """The layer, the local API (moto provisioning) and the tools package (event builders), importable from
    the sources."""
    for folder in (ROOT, *(ROOT / path for path in ("layers/security", "local", *extra))):
        if str(folder) not in sys.path:
            sys.path.append(str(folder))


def create_chat_sessions(world: LoopbackWorld, count: int) -> list[str]:
    """Sessions of the benchmark user, created by the chat handler itself (in this process, tracing off)."""
    add_source_paths("functions/chat")
    os.environ.update(
        world.function_environment("chat")
        | {
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
        }
    )
    from chat.handler import lambda_handler
    from tools.lambda_context import FakeLambdaContext

    sessions = []
    with contextlib.redirect_stdout(io.StringIO()):
        for _ in range(count):
            created = lambda_handler(chat_create_event(), FakeLambdaContext("bench", 512, "bench"))
            if created["statusCode"] != 201:
                raise RuntimeError(f"creating a chat session failed: {created}")
            sessions.append(json.loads(created["body"])["session_id"])
    return sessions


@contextlib.contextmanager
def loopback_world(model_latency: float = 1.0) -> Iterator[LoopbackWorld]:
    """Starts everything; ``model_latency`` is the slow fake model's answer time (cost figures)."""
    add_source_paths()

    from chatbot_local.aws import MotoService, client, provision
    from chatbot_local.template import Template

    moto = MotoService()
    endpoint = moto.start()
    try:
        resources = provision(Template.load(ROOT / "template.yaml"), {}, endpoint, REGION)
        client("dynamodb", endpoint, REGION).create_table(
            TableName=REFERENCE_TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        key, jwk = signing_key()
        issuer = _JsonServer({"/jwks.json": {"keys": [jwk]}})
        issuer.routes["/.well-known/openid-configuration"] = {
            "issuer": issuer.url,
            "jwks_uri": issuer.url + "/jwks.json",
        }
        world = LoopbackWorld(
            moto_url=endpoint,
            table_name=resources.table_name,
            key_arn=resources.key_arn,
            secret_arns=dict(resources.secret_arns),
            issuer=issuer,
            bedrock=_JsonServer({"/converse": CONVERSE_REPLY}),
            slow_bedrock=_JsonServer({"/converse": CONVERSE_REPLY}, latency=model_latency),
            sink=SegmentSink(),
            signing_key=key,
            model_latency=model_latency,
            _moto=moto,
        )
    except BaseException:
        moto.stop()
        raise
    try:
        yield world
    finally:
        world.close()


# -- events -------------------------------------------------------------------------------------
def authorizer_event(token: str, session_id: str) -> dict[str, Any]:
    """A payload 2.0 REQUEST event for POST /v1/sessions/{session_id}/messages."""
    route = "POST /v1/sessions/{session_id}/messages"
    return {
        "version": "2.0", "type": "REQUEST", "routeKey": route, "rawPath": f"/v1/sessions/{session_id}/messages",
        "headers": {"authorization": f"Bearer {token}", "content-type": "application/json"},
        "identitySource": [f"Bearer {token}"], "pathParameters": {"session_id": session_id},
        "requestContext": {"requestId": "bench", "routeKey": route, "http": {"method": "POST"}},
    }  # fmt: skip


USER_CONTEXT = {
    "kind": "user",
    "subject": "bench-user",
    "issuer": "https://issuer.bench.invalid",
    "roles": "[]",
    "mfa": False,
    "session_id": "",
}


def chat_post_event(session_id: str, content: str = "What is the capital of France?") -> dict[str, Any]:
    from tools.lambda_events import chat_event

    body = json.dumps({"content": content})
    return chat_event("POST /v1/sessions/{session_id}/messages", USER_CONTEXT, body, session_id=session_id)


def chat_create_event() -> dict[str, Any]:
    from tools.lambda_events import chat_event

    return chat_event("POST /v1/sessions", USER_CONTEXT, None)


def reference_event(item_id: str) -> dict[str, Any]:
    from tools.lambda_events import chat_event

    return chat_event("GET /items/{item_id}", None, None, item_id=item_id)


def cleanup_event() -> dict[str, Any]:
    return {"version": "0", "source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}


# -- the probe ----------------------------------------------------------------------------------
# Runs in the fresh interpreter, laid out as Lambda does. Times the import, then the first request,
# then (memory) `repeat` more requests; writes its figures to a file (the handlers log to stdout) and
# leaves with os._exit: interpreter shutdown is not part of any figure. `exclude` names methods whose
# time is taken out of the first request (the JWKS fetch, for a container whose keys are cached).
PROBE = r"""
import json, os, resource, sys, time
task_root, layer, module, request_file, result_file, repeat, exclude = sys.argv[1:8]
sys.path[:0] = [p for p in (task_root, layer) if p]
wall, cpu = time.perf_counter, time.process_time
w0, c0 = wall(), cpu()
module, _, attribute = module.partition(":")  # "package.module" or "package.module:function"
handler = getattr(__import__(module, fromlist=["_"]), attribute or "lambda_handler")
import_wall, import_cpu = wall() - w0, cpu() - c0
excluded = [0.0, 0.0]
if exclude:
    owner, _, name = exclude.rpartition(".")
    owner_module, _, owner_class = owner.rpartition(".")
    cls = getattr(__import__(owner_module, fromlist=[owner_class]), owner_class)
    original = getattr(cls, name)
    def timed(*args, **kwargs):
        w, c = wall(), cpu()
        try:
            return original(*args, **kwargs)
        finally:
            excluded[0] += wall() - w
            excluded[1] += cpu() - c
    setattr(cls, name, timed)
class Context:
    function_name = "bench"
    memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512"))
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:bench"
    aws_request_id = "bench"
    def get_remaining_time_in_millis(self):  # the cleanup's deadline reads it; Lambda's default timeout
        return 300_000
with open(request_file) as f:
    requests = json.load(f)
def outcome(result):
    if isinstance(result, dict):
        if "policyDocument" in result:  # a REST-style (WebSocket) authorizer: the policy's effect
            return result["policyDocument"]["Statement"][0]["Effect"]
        return result.get("statusCode", result.get("isAuthorized", "ok"))
    return "ok"
def invoke(event):
    os.environ["_X_AMZN_TRACE_ID"] = "Root=1-%08x-%s;Parent=%s;Sampled=1;Lineage=1" % (
        int(time.time()), os.urandom(12).hex(), os.urandom(8).hex())
    return outcome(handler(event, Context()))
def peak_rss_kib():
    # VmHWM: this process's own peak (ru_maxrss would carry the forking parent's over exec)
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
w0, c0 = wall(), cpu()
first = invoke(requests[0])
first_wall, first_cpu = wall() - w0 - excluded[0], cpu() - c0 - excluded[1]
outcomes = {str(first): 1}
w0, c0 = wall(), cpu()
for i in range(int(repeat)):
    o = str(invoke(requests[1 + i % (len(requests) - 1)] if len(requests) > 1 else requests[0]))
    outcomes[o] = outcomes.get(o, 0) + 1
warm_wall, warm_cpu = wall() - w0, cpu() - c0
with open(result_file, "w") as f:
    json.dump({
        "import_wall": import_wall, "import_cpu": import_cpu, "first_wall": first_wall, "first_cpu": first_cpu,
        "excluded_wall": excluded[0], "warm_wall": warm_wall, "warm_cpu": warm_cpu, "repeat": int(repeat),
        "outcomes": outcomes, "max_rss_kib": peak_rss_kib(),
        "modules": sorted(sys.modules),
    }, f)
sys.stdout.flush()
sys.stderr.flush()
os._exit(0)
"""


class ColdStart:
    """A cold start is the handler's import plus its first invocation."""

    import_wall: float
    import_cpu: float
    first_wall: float
    first_cpu: float

    @property
    def cold_wall(self) -> float:
        return self.import_wall + self.first_wall

    @property
    def cold_cpu(self) -> float:
        return self.import_cpu + self.first_cpu


@dataclass(frozen=True)
class ProbeResult(ColdStart):
    import_wall: float  # seconds
    import_cpu: float
    first_wall: float
    first_cpu: float
    excluded_wall: float
    warm_wall: float
    warm_cpu: float
    repeat: int
    outcomes: dict[str, int]
    max_rss_kib: int
    modules: list[str]


def run_probe(
    command: list[str],
    task_root: Path,
    layer: Path | None,
    module: str,
    *,
    requests: list[dict[str, Any]],
    environment: dict[str, str],
    scratch: Path,
    repeat: int = 0,
    exclude: str = "",
) -> ProbeResult:
    """``command`` is the interpreter (``[python, -S, -B, -P]`` for a build output); it gets ``-c PROBE``."""
    request_file, result_file = scratch / f"{uuid.uuid4().hex}.json", scratch / f"{uuid.uuid4().hex}.out"
    request_file.write_text(json.dumps(requests))
    import subprocess

    finished = subprocess.run(  # noqa: S603 - our own interpreter and probe
        [*command, "-c", PROBE, str(task_root), str(layer or ""), module, str(request_file), str(result_file),
         str(repeat), exclude],
        cwd=task_root, env=environment, capture_output=True, text=True, check=False,
    )  # fmt: skip
    request_file.unlink()
    if finished.returncode != 0 or not result_file.exists():
        raise SystemExit(f"probe of {module} failed ({finished.returncode}):\n{finished.stderr[-3000:]}")
    result = ProbeResult(**json.loads(result_file.read_text()))
    result_file.unlink()
    return result
