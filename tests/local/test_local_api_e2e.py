"""End to end: `.venv/bin/chatbot-local` in a subprocess, tokens from `chatbot-local token`, real handlers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from local_kit import ROOT, free_port

pytestmark = pytest.mark.local_api

EXECUTABLE = ROOT / ".venv" / "bin" / "chatbot-local"
SECRET_WORDS = "the parrot sleeps at noon"
# A developer's exported configuration must not change what this test expects (local defaults).
DESIGN_SECTION_4 = {
    "OIDC_ISSUER",
    "OIDC_AUDIENCE",
    "OIDC_JWKS_URL",
    "OIDC_ROLES_CLAIM",
    "ADMIN_ROLE",
    "ADMIN_REQUIRE_MFA",
    "ALLOW_ANONYMOUS",
    "ALLOWED_ORIGINS",
    "SESSION_TTL_SECONDS",
    "SESSION_IDLE_SECONDS",
    "MAX_MESSAGE_CHARS",
    "MAX_BODY_BYTES",
    "MAX_MESSAGES_PER_SESSION",
    "RATE_LIMIT_PER_MINUTE",
    "ANON_SESSIONS_PER_HOUR",
    "MODEL_PROVIDER",
    "MODEL_ID",
    "MODEL_MAX_TOKENS",
    "MODEL_TIMEOUT_SECONDS",
    "BEDROCK_GUARDRAIL_ID",
    "BEDROCK_GUARDRAIL_VERSION",
    "PII_MASKING",
}


@dataclass
class RunningApi:
    process: subprocess.Popen[str]
    base: str
    web: str
    environ: dict[str, str]
    log_path: Path

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


@pytest.fixture(scope="module")
def running_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    state_dir = tmp_path_factory.mktemp("state")
    log_path = tmp_path_factory.mktemp("log") / "chatbot-local.log"
    environ = {name: value for name, value in os.environ.items() if name not in DESIGN_SECTION_4}
    environ["CHATBOT_LOCAL_STATE_DIR"] = str(state_dir)
    port, web_port = free_port(), free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(EXECUTABLE), "--host", "127.0.0.1", "--port", str(port), "--web-port", str(web_port)],
            cwd=ROOT,
            env=environ,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
    api = RunningApi(process, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{web_port}", environ, log_path)
    try:
        wait_for_port(process, port)
        yield api
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def test_it_prints_the_api_the_demo_page_and_a_token_command(running_api: RunningApi) -> None:
    lines = running_api.output().splitlines()

    assert f"API:   {running_api.base}" in lines
    assert f"Demo:  {running_api.web}/" in lines
    assert any(line.startswith("Token: ") and line.endswith(" token --sub alice") for line in lines)


def test_a_signed_in_user_chats_and_reads_the_history(running_api: RunningApi) -> None:
    alice = running_api.token("e2e-alice")

    status, session, headers = running_api.call("POST", "/v1/sessions", alice)
    assert status == 201
    assert headers["Cache-Control"] == "no-store"
    session_id = session["session_id"]

    status, turn, _ = running_api.call("POST", f"/v1/sessions/{session_id}/messages", alice, {"content": SECRET_WORDS})
    assert status == 201
    assert turn["user_message"]["role"] == "user"
    assert turn["assistant_message"]["role"] == "assistant"

    status, history, _ = running_api.call("GET", f"/v1/sessions/{session_id}/messages", alice)
    assert status == 200
    assert [message["role"] for message in history["messages"]] == ["user", "assistant"]
    assert history["messages"][0]["content"] == SECRET_WORDS
    assert "next_cursor" in history


def test_another_user_cannot_see_the_session(running_api: RunningApi) -> None:
    alice, bob = running_api.token("e2e-alice"), running_api.token("e2e-bob")
    _, session, _ = running_api.call("POST", "/v1/sessions", alice)

    status, body, _ = running_api.call("GET", f"/v1/sessions/{session['session_id']}", bob)

    assert status == 404
    assert set(body) == {"error"}


def test_gateway_answers_missing_and_invalid_credentials(running_api: RunningApi) -> None:
    status, body, _ = running_api.call("GET", "/v1/sessions")
    assert (status, body) == (401, {"message": "Unauthorized"})
    status, body, _ = running_api.call("GET", "/v1/sessions", "not.a.token")
    assert (status, body) == (403, {"message": "Forbidden"})
    status, body, _ = running_api.call("GET", "/v2/unknown", running_api.token("e2e-alice"))
    assert (status, body) == (404, {"message": "Not Found"})


def test_an_anonymous_visitor_chats_in_its_own_session(running_api: RunningApi) -> None:
    status, session, _ = running_api.call("POST", "/v1/anonymous-sessions")
    assert status == 201

    token = session["session_token"]
    status, _, _ = running_api.call("POST", f"/v1/sessions/{session['session_id']}/messages", token, {"content": "hi"})

    assert status == 201


def test_cors_allows_the_demo_page_only(running_api: RunningApi) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}

    status, _, allowed = running_api.call("OPTIONS", "/v1/sessions", headers={"Origin": running_api.web, **preflight})
    _, _, denied = running_api.call("OPTIONS", "/v1/sessions", headers={"Origin": "http://evil.example", **preflight})

    assert status == 204
    assert allowed["Access-Control-Allow-Origin"] == running_api.web
    assert denied["Access-Control-Allow-Origin"] is None


def test_the_demo_origin_serves_a_strict_csp(running_api: RunningApi) -> None:
    with urllib.request.urlopen(running_api.web + "/config.json", timeout=5) as response:
        assert json.load(response) == {"apiUrl": running_api.base}
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_sigterm_stops_cleanly_and_nothing_secret_was_logged(running_api: RunningApi) -> None:
    running_api.process.send_signal(signal.SIGTERM)

    assert running_api.process.wait(timeout=15) == 0
    output = running_api.output()
    assert SECRET_WORDS not in output
    assert "Bearer" not in output
    assert "eyJ" not in output  # no JWT
    assert "Traceback" not in output
    assert "POST /v1/sessions/{session_id}/messages 201" in output
