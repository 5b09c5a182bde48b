"""The post-deploy smoke command (scripts/smoke.py, `make smoke`), run against chatbot-local as the deployed
endpoint, and against loopback servers that misbehave the ways a broken deployment does."""

from __future__ import annotations

import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from smoke import main as smoke_main

from tools.local_api import ROOT, RunningApi, running_chatbot_local

pytestmark = pytest.mark.local_api


@pytest.fixture(scope="module")
def local_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    with running_chatbot_local(tmp_path_factory.mktemp("smoke")) as api:
        yield api


@pytest.fixture(scope="module")
def tokens(local_api: RunningApi) -> tuple[str, str]:
    return local_api.token("smoke-alice"), local_api.token("smoke-bob")


def smoke(capsys: pytest.CaptureFixture[str], *arguments: str, **environ: str) -> tuple[int, str]:
    status = smoke_main(list(arguments), environ=environ)
    return status, capsys.readouterr().out


# ------------------------------------------------------------------ against a well-behaved endpoint


def test_the_read_only_smoke_passes_against_the_local_api(local_api, tokens, capsys) -> None:
    status, output = smoke(capsys, "--url", local_api.base, "--origin", local_api.web, SMOKE_TOKEN=tokens[0])
    assert status == 0, output
    for check in ("401 without credentials", "403 with a garbage token", "404 for an unknown route",
                  "404 for a random session id", f"CORS preflight for {local_api.web}", "CORS refuses another origin",
                  "no 5xx answer"):  # fmt: skip
        assert f"ok   {check}" in output


def test_the_read_only_smoke_creates_nothing(local_api, capsys) -> None:
    fresh = local_api.token("smoke-reader")
    assert smoke(capsys, "--url", local_api.base, SMOKE_TOKEN=fresh)[0] == 0
    status, listed, _ = local_api.call("GET", "/v1/sessions", fresh)
    assert (status, listed["sessions"]) == (200, [])


def test_the_creating_smoke_posts_one_message_checks_ownership_and_deletes(local_api, tokens, capsys) -> None:
    status, output = smoke(
        capsys, "--url", local_api.base, "--origin", local_api.web, "--create",
        SMOKE_TOKEN=tokens[0], SMOKE_TOKEN2=tokens[1],
    )  # fmt: skip
    assert status == 0, output
    for check in ("201 posting one message: the model answers", "404 when another user reads the session",
                  "404 when another user posts to it", "404 when another user deletes it", "204 deleting the session",
                  "404 for the deleted session"):  # fmt: skip
        assert f"ok   {check}" in output
    assert local_api.call("GET", "/v1/sessions", tokens[0])[1]["sessions"] == []


def test_the_read_only_smoke_checks_ownership_on_an_existing_session(local_api, capsys) -> None:
    owner, other = local_api.token("smoke-owner"), local_api.token("smoke-other")
    assert local_api.call("POST", "/v1/sessions", owner, {})[0] == 201
    status, output = smoke(capsys, "--url", local_api.base, SMOKE_TOKEN=owner, SMOKE_TOKEN2=other)
    assert status == 0, output
    assert "ok   404 when the second token reads the first one's session" in output


def test_an_ownership_check_without_a_session_to_try_is_skipped_not_failed(local_api, capsys) -> None:
    status, output = smoke(
        capsys, "--url", local_api.base, SMOKE_TOKEN=local_api.token("smoke-empty"), SMOKE_TOKEN2=local_api.token("x")
    )
    assert status == 0, output
    assert "skip 404 when the second token reads the first one's session" in output


def test_the_anonymous_smoke_chats_without_a_token(local_api, capsys) -> None:
    status, output = smoke(capsys, "--url", local_api.base, "--create", "--anonymous")
    assert status == 0, output
    assert "ok   201 creating an anonymous session" in output
    assert "ok   201 posting one message: the model answers" in output


def test_make_smoke_takes_tokens_from_the_environment_and_never_prints_them(local_api, tokens) -> None:
    finished = subprocess.run(
        ["make", "-s", "smoke", f"URL={local_api.base}", f"TOKEN={tokens[0]}", f"TOKEN2={tokens[1]}", "CREATE=1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "checks passed, 0 failed" in finished.stdout
    for token in tokens:
        assert token not in finished.stdout + finished.stderr


# ------------------------------------------------------------------ against endpoints that misbehave


Behaviour = Callable[[BaseHTTPRequestHandler], tuple[int, dict[str, str], bytes]]


@pytest.fixture
def misbehaving() -> Iterator[Callable[[Behaviour], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(behaviour: Behaviour) -> str:
        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                status, headers, body = behaviour(self)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_DELETE = do_OPTIONS = _answer  # noqa: N815 - http.server's names

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _json(status: int, body: Any, **headers: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json", **headers}, json.dumps(body).encode()


SECURE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _gateway_like(missing_headers: bool = False, model_status: int = 201) -> Behaviour:
    """Answers like the API, except for the headers or the model's status."""

    def behaviour(request: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
        auth = request.headers.get("Authorization", "")
        route = f"{request.command} {request.path}"
        not_found = {"error": {"code": "not_found", "message": "Not found.", "request_id": "r"}}
        body: dict[str, Any]
        status, body, own = 404, not_found, True  # own: an answer of the chat function (security headers)
        if not request.path.startswith("/v1/sessions"):
            status, body, own = 404, {"message": "Not Found"}, False
        elif not auth:
            status, body, own = 401, {"message": "Unauthorized"}, False
        elif "smoke-" in auth:
            status, body, own = 403, {"message": "Forbidden"}, False
        elif route == "GET /v1/sessions":
            status, body = 200, {"sessions": []}
        elif route == "POST /v1/sessions":
            status, body = 201, {"session_id": "0" * 8 + "-0000-4000-8000-" + "0" * 12}
        elif request.command == "POST" and request.path.endswith("/messages"):
            status, body = model_status, {"error": {"code": "model_error", "message": "Failed.", "request_id": "r"}}
        headers = SECURE if own and not missing_headers else {}
        return _json(status, body, **headers)

    return behaviour


def test_the_smoke_fails_against_an_endpoint_answering_500(misbehaving, capsys) -> None:
    url = misbehaving(lambda request: _json(500, {"message": "Internal Server Error"}))
    status, output = smoke(capsys, "--url", url, SMOKE_TOKEN="a-token")
    assert status == 1
    assert "FAIL 401 without credentials: expected 401" in output
    assert "FAIL no 5xx answer: GET /v1/sessions -> 500" in output


def test_the_smoke_fails_when_the_security_headers_are_missing(misbehaving, capsys) -> None:
    status, output = smoke(capsys, "--url", misbehaving(_gateway_like(missing_headers=True)), SMOKE_TOKEN="a-token")
    assert status == 1
    assert "FAIL 200 listing the caller's sessions, with the security headers: 200 with Cache-Control None" in output
    assert "X-Content-Type-Options None" in output


def test_the_smoke_fails_the_deploy_when_the_model_is_retired_or_inaccessible(misbehaving, capsys) -> None:
    url = misbehaving(_gateway_like(model_status=502))
    status, output = smoke(capsys, "--url", url, "--create", SMOKE_TOKEN="a-token")
    assert status == 1
    assert "FAIL 201 posting one message: the model answers: the model failed (502" in output


def test_the_smoke_fails_when_cors_is_not_configured_for_the_origin(misbehaving, capsys) -> None:
    status, output = smoke(capsys, "--url", misbehaving(_gateway_like()), "--origin", "https://app.example.com")
    assert status == 1
    assert "FAIL CORS preflight for https://app.example.com" in output


def test_the_smoke_fails_clearly_when_nothing_answers(capsys) -> None:
    status, output = smoke(capsys, "--url", "http://127.0.0.1:9", "--timeout", "2")
    assert status == 1
    assert "no answer" in output


def test_the_smoke_refuses_a_plain_http_url_that_is_not_loopback(capsys) -> None:
    with pytest.raises(SystemExit) as refused:
        smoke_main(["--url", "http://api.example.com/"], environ={"SMOKE_TOKEN": "t"})
    assert refused.value.code == 2
    assert "https" in capsys.readouterr().err
