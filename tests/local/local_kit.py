"""Helpers of the chatbot_local tests: fake functions, a fake clock, a gateway kit to drive them, and
the real `.venv/bin/chatbot-local` in a subprocess (also used by tests/browser)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.config_names import DESIGN_SECTION_4 as CONFIG_NAMES

from chatbot_local.events import HttpRequest
from chatbot_local.gateway import Gateway
from chatbot_local.lambdas import InvocationError

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_TEMPLATE = Path(__file__).resolve().parent / "fixtures" / "template.yaml"
WEB_ORIGIN = "http://127.0.0.1:8080"
REGION = "eu-west-1"
EXECUTABLE = ROOT / ".venv" / "bin" / "chatbot-local"
# A developer's exported configuration must not change what the tests expect (local defaults).
DESIGN_SECTION_4 = set(CONFIG_NAMES) | {"EDGE_PROTECTION", "EDGE_ORIGIN_SECRET_MAX_AGE_SECONDS"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class FakeFunction:
    """Stands in for a LocalFunction: records events, answers with `respond(event)`."""

    respond: Callable[[dict[str, Any]], Any]
    events: list[dict[str, Any]] = field(default_factory=list)

    def invoke(self, event: dict[str, Any]) -> Any:
        self.events.append(event)
        return self.respond(event)


def allow_bearer_good(event: dict[str, Any]) -> dict[str, Any]:
    """A fake authorizer: `Bearer good-*` is allowed, with the token as principal."""
    token = event["headers"].get("authorization", "")
    if token.startswith("Bearer good"):
        return {"isAuthorized": True, "context": {"principal": token.removeprefix("Bearer ")}}
    return {"isAuthorized": False}


def echo_event(event: dict[str, Any]) -> dict[str, Any]:
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": "{}"}


def failing(event: dict[str, Any]) -> Any:
    raise InvocationError("fake function raised RuntimeError")


@dataclass
class Clock:
    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class GatewayKit:
    gateway: Gateway
    authorizer: FakeFunction
    chat: FakeFunction
    clock: Clock
    lines: list[str]

    def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        query: str = "",
    ) -> Any:
        header_list = tuple({"Host": "127.0.0.1:3000", "User-Agent": "tests", **(headers or {})}.items())
        return self.gateway.handle(HttpRequest(method, path, query, header_list, body, "127.0.0.1"))


# --- the real chatbot-local in a subprocess ------------------------------------------------------


@dataclass
class RunningApi:
    """A `chatbot-local` process: its URLs, environment and output."""

    process: subprocess.Popen[str]
    base: str
    web: str
    environ: dict[str, str]
    log_path: Path
    startup_seconds: float = 0.0

    def token(self, subject: str) -> str:
        finished = subprocess.run(
            [str(EXECUTABLE), "token", "--sub", subject],
            cwd=ROOT,
            env=self.environ,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return finished.stdout.strip().splitlines()[-1]

    def call(
        self, method: str, path: str, token: str | None = None, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, Any]:
        data = None if body is None else json.dumps(body).encode()
        all_headers = dict(headers or {})
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=15) as response:
                raw, status, response_headers = response.read(), response.status, response.headers
        except urllib.error.HTTPError as error:
            raw, status, response_headers = error.read(), error.code, error.headers
        return status, json.loads(raw) if raw else None, response_headers

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def wait_for_port(process: subprocess.Popen[str], port: int, timeout: float = 60) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise AssertionError(f"chatbot-local exited early with status {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return time.monotonic() - started
        except OSError:
            time.sleep(0.1)
    raise AssertionError("chatbot-local did not start listening")


def wait_for_output(api: RunningApi, text: str, timeout: float = 30) -> None:
    """Wait until chatbot-local has printed `text` (the API listens just before the URLs are printed)."""
    deadline = time.monotonic() + timeout
    while text not in api.output():
        if api.process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"chatbot-local did not print {text!r}:\n{api.output()}")
        time.sleep(0.05)


@contextlib.contextmanager
def running_chatbot_local(
    folder: Path, environ: Mapping[str, str] | None = None, arguments: Sequence[str] = ()
) -> Iterator[RunningApi]:
    """`.venv/bin/chatbot-local` on free ports with the local defaults (plus `environ` and command-line
    `arguments`), its state and output in `folder`; killed on exit if still running."""
    folder.mkdir(parents=True, exist_ok=True)
    log_path = folder / "chatbot-local.log"
    child_environ = {name: value for name, value in os.environ.items() if name not in DESIGN_SECTION_4}
    child_environ["CHATBOT_LOCAL_STATE_DIR"] = str(folder / "state")
    child_environ.update(environ or {})
    port, web_port = free_port(), free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(EXECUTABLE), "--host", "127.0.0.1", "--port", str(port), "--web-port", str(web_port), *arguments],
            cwd=ROOT,
            env=child_environ,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    api = RunningApi(process, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{web_port}", child_environ, log_path)
    try:
        api.startup_seconds = wait_for_port(process, port)
        wait_for_output(api, "\nToken: ")
        yield api
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
