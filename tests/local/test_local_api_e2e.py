"""End to end: `.venv/bin/chatbot-local` in a subprocess, tokens from `chatbot-local token`, real handlers."""

from __future__ import annotations

import json
import re
import signal
import urllib.request
from collections.abc import Iterator

import pytest

from tools.local_api import RunningApi, running_chatbot_local

pytestmark = pytest.mark.local_api

SECRET_WORDS = "the parrot sleeps at noon"


@pytest.fixture(scope="module")
def running_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    with running_chatbot_local(tmp_path_factory.mktemp("e2e")) as api:
        yield api


def test_it_prints_the_api_the_demo_page_and_a_token_command(running_api: RunningApi) -> None:
    lines = running_api.output().splitlines()

    assert f"API:   {running_api.base}" in lines
    assert f"Demo:  {running_api.web}/" in lines
    assert any(line.startswith("Token: ") and line.endswith(" token --sub alice") for line in lines)


def test_the_console_shows_a_denial_as_one_line_with_its_reason_and_no_metric(running_api: RunningApi) -> None:
    status, _, _ = running_api.call("POST", "/v1/sessions", token="not.a.token")

    lines = [line for line in running_api.output().splitlines() if line.startswith("POST /v1/sessions 403 ")]
    assert status == 403
    assert len(lines) == 1
    assert lines[0].endswith(" reason=malformed")
    assert '"_aws"' not in running_api.output()


def test_it_starts_in_a_few_seconds(running_api: RunningApi) -> None:
    ready = re.search(r"^chatbot-local is ready in (\d+\.\d) s$", running_api.output(), re.MULTILINE)

    assert ready is not None
    assert float(ready.group(1)) < 10
    assert running_api.startup_seconds < 15  # including the interpreter's own start, on a busy CI machine


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
        assert json.load(response) == {"apiUrl": running_api.base, "streaming": True}
        assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_the_demo_page_learns_the_api_url_from_a_script_module(running_api: RunningApi) -> None:
    with urllib.request.urlopen(running_api.web + "/config.js", timeout=5) as response:
        assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
        assert response.read().decode() == (
            f'export default Object.freeze({{"apiUrl": "{running_api.base}", "streaming": true}});\n'
        )


def test_sigterm_stops_cleanly_and_nothing_secret_was_logged(running_api: RunningApi) -> None:
    running_api.process.send_signal(signal.SIGTERM)

    assert running_api.process.wait(timeout=15) == 0
    output = running_api.output()
    assert SECRET_WORDS not in output
    assert "Bearer" not in output
    assert "eyJ" not in output  # no JWT
    assert "Traceback" not in output
    assert "POST /v1/sessions/{session_id}/messages 201" in output
