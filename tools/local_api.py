"""The real `.venv/bin/chatbot-local` in a subprocess on free ports: the fuzzer, the load test, the
screenshot and the local and browser tests start it this way."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.config_names import CONFIGURATION_NAMES

ROOT = Path(__file__).resolve().parents[1]
EXECUTABLE = ROOT / ".venv" / "bin" / "chatbot-local"
# A developer's exported configuration must not change what the tests expect (local defaults).
CONFIGURATION = set(CONFIGURATION_NAMES) | {"EDGE_ORIGIN_SECRET_MAX_AGE_SECONDS"}

# Limits high enough that a burst of generated requests reaches the code instead of a 429.
GENEROUS_LIMITS = {
    "RATE_LIMIT_PER_MINUTE": "10000",
    "ANON_SESSIONS_PER_HOUR": "100000",
    "SESSIONS_PER_HOUR": "100000",
    "MAX_LIVE_SESSIONS": "100000",
    "TOKENS_PER_DAY": "1000000000",
    "ANON_TOKENS_PER_DAY": "1000000000",
    "API_THROTTLING_BURST_LIMIT": "5000",
    "API_THROTTLING_RATE_LIMIT": "10000",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class RunningApi:
    """A `chatbot-local` process: its URLs, environment and output."""

    process: subprocess.Popen[str]
    base: str
    web: str
    environ: dict[str, str]
    log_path: Path
    startup_seconds: float = 0.0
    stream: str = ""  # the WebSocket API's URL

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
    child_environ = {name: value for name, value in os.environ.items() if name not in CONFIGURATION}
    child_environ["CHATBOT_LOCAL_STATE_DIR"] = str(folder / "state")
    child_environ.update(environ or {})
    port, web_port, ws_port = free_port(), free_port(), free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                str(EXECUTABLE),
                *("--host", "127.0.0.1", "--port", str(port), "--web-port", str(web_port), "--ws-port", str(ws_port)),
                *arguments,
            ],
            cwd=ROOT,
            env=child_environ,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    api = RunningApi(process, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{web_port}", child_environ, log_path)
    api.stream = f"ws://127.0.0.1:{ws_port}"
    try:
        api.startup_seconds = wait_for_port(process, port)
        wait_for_output(api, "\nToken: ")
        yield api
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
