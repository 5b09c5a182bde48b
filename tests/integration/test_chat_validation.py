"""Rule 6 and the status codes of docs/contract.md section 3, through the real handlers."""

from __future__ import annotations

import base64
import time
from typing import Any

import pytest
from support.api import InProcessApi
from support.issuer_server import IssuerServer

from chat.handler import lambda_handler as chat_handler
from tools.lambda_events import chat_event

pytestmark = pytest.mark.usefixtures("aws")
MESSAGES = "POST /v1/sessions/{session_id}/messages"


def assert_error(reply: Any, status: int, code: str) -> None:
    assert reply.status == status
    assert set(reply.body) == {"error"}
    assert reply.body["error"]["code"] == code
    assert reply.body["error"]["request_id"]
    assert reply.headers["Cache-Control"] == "no-store"


def test_wrong_content_type_is_415(api: InProcessApi, alice: str, session_id: str) -> None:
    reply = api.call(MESSAGES, alice, "content=hi", content_type="text/plain", session_id=session_id)
    assert_error(reply, 415, "unsupported_media_type")


def test_body_over_max_body_bytes_is_413(api: InProcessApi, alice: str, session_id: str) -> None:
    reply = api.call(MESSAGES, alice, {"content": "a" * 20_000}, session_id=session_id)
    assert_error(reply, 413, "payload_too_large")


def test_malformed_json_is_400(api: InProcessApi, alice: str, session_id: str) -> None:
    assert_error(api.call(MESSAGES, alice, '{"content": ', session_id=session_id), 400, "bad_request")


def test_bad_utf8_is_400(lambda_context: Any, oidc_env: IssuerServer, session_id: str, api: InProcessApi) -> None:
    body = base64.b64encode(b'{"content": "\xc3\x28"}').decode()
    context = {
        "kind": "user",
        "subject": "alice",
        "issuer": oidc_env.url,
        "roles": "[]",
        "mfa": False,
        "session_id": "",
    }
    event = chat_event(MESSAGES, context, body, is_base64=True, session_id=session_id)
    assert chat_handler(event, lambda_context)["statusCode"] == 400


@pytest.mark.parametrize(
    "body",
    [
        {"content": "hi", "role": "assistant"},
        {"content": 7},
        {},
        {"content": ""},
        {"content": "   "},
        {"content": "hi", "client_message_id": "not-a-uuid"},
        {"content": "bell \x07"},
        {"content": "null \x00 byte"},
        {"content": "c1 \x85 control"},
        {"content": "trojan \u202e source"},
        {"content": "isolate \u2066 x"},
        {"content": "carriage \r return"},
        [],
    ],
    ids=lambda b: repr(b)[:30],
)
def test_schema_violations_are_422(api: InProcessApi, alice: str, session_id: str, body: Any) -> None:
    assert_error(api.call(MESSAGES, alice, body, session_id=session_id), 422, "validation_error")


def test_newline_and_tab_are_allowed(api: InProcessApi, alice: str, session_id: str) -> None:
    assert api.call(MESSAGES, alice, {"content": "line\nnext\tcol"}, session_id=session_id).status == 201


def test_message_over_max_message_chars_is_422(
    api: InProcessApi, alice: str, session_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAX_MESSAGE_CHARS", "10")
    from support.caches import reset_caches

    reset_caches()
    assert_error(api.call(MESSAGES, alice, {"content": "x" * 11}, session_id=session_id), 422, "validation_error")


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "00000000-0000-1000-8000-000000000000", "..%2F..%2Fadmin"])
def test_path_ids_must_be_uuid4(api: InProcessApi, alice: str, bad_id: str) -> None:
    assert_error(api.call("GET /v1/sessions/{session_id}", alice, session_id=bad_id), 422, "validation_error")


def test_unknown_query_values_are_422(api: InProcessApi, alice: str, session_id: str) -> None:
    for query in ({"limit": "0"}, {"limit": "1000"}, {"limit": "x"}, {"cursor": "!!"}):
        reply = api.call("GET /v1/sessions/{session_id}/messages", alice, query=query, session_id=session_id)
        assert_error(reply, 422, "validation_error")


def test_error_bodies_do_not_echo_the_input(api: InProcessApi, alice: str, session_id: str) -> None:
    reply = api.call(MESSAGES, alice, {"content": "hi", "evil_field_name": "<script>"}, session_id=session_id)
    assert "evil_field_name" not in str(reply.body)
    assert "<script>" not in str(reply.body)


def test_full_session_is_409(api: InProcessApi, alice: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAX_MESSAGES_PER_SESSION", "4")
    from support.caches import reset_caches

    reset_caches()
    session_id = api.call("POST /v1/sessions", alice).body["session_id"]
    assert api.call(MESSAGES, alice, {"content": "one"}, session_id=session_id).status == 201
    assert api.call(MESSAGES, alice, {"content": "two"}, session_id=session_id).status == 201
    assert_error(api.call(MESSAGES, alice, {"content": "three"}, session_id=session_id), 409, "session_full")


def test_posting_faster_than_the_rate_limit_is_429_with_retry_after(
    api: InProcessApi, alice: str, session_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "2")
    from support.caches import reset_caches

    reset_caches()
    statuses = [api.call(MESSAGES, alice, {"content": f"m{n}"}, session_id=session_id).status for n in range(3)]
    assert statuses[:2] == [201, 201] or statuses[-1] == 429
    reply = api.call(MESSAGES, alice, {"content": "again"}, session_id=session_id)
    assert_error(reply, 429, "rate_limited")
    assert 1 <= int(reply.headers["Retry-After"]) <= 61


def test_anonymous_session_creation_is_limited_per_source_ip(
    api: InProcessApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALLOW_ANONYMOUS", "true")
    monkeypatch.setenv("ANON_SESSIONS_PER_HOUR", "2")
    from support.caches import reset_caches

    reset_caches()
    create = "POST /v1/anonymous-sessions"
    first = [api.call(create, None, content_type=None, source_ip="203.0.113.9").status for _ in range(3)]
    assert first == [201, 201, 429]
    # Another source IP is counted on its own, whatever X-Forwarded-For says.
    assert api.call(create, None, content_type=None, source_ip="203.0.113.10").status == 201


def test_idle_session_expires_in_code(
    api: InProcessApi, alice: str, session_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chat.dependencies import default_conversations

    monkeypatch.setattr(default_conversations(), "clock", lambda: time.time() + 1801)
    reply = api.call("GET /v1/sessions/{session_id}", alice, session_id=session_id)
    assert_error(reply, 404, "not_found")


def test_missing_authorizer_context_is_refused(lambda_context: Any, session_id: str) -> None:
    event = chat_event("GET /v1/sessions/{session_id}", None, None, None, session_id=session_id)
    assert chat_handler(event, lambda_context)["statusCode"] == 403


def test_unknown_route_inside_the_function_is_404_like_the_gateway(lambda_context: Any) -> None:
    event = chat_event("GET /v1/nothing", {"kind": "user", "subject": "a"}, None, None)
    response = chat_handler(event, lambda_context)
    assert response["statusCode"] == 404


def test_unhandled_failure_is_a_generic_500(
    api: InProcessApi, alice: str, session_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chatbot_security.conversation.conversations import Conversations

    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("internal detail /var/task/secret.py")

    monkeypatch.setattr(Conversations, "get_session", explode)
    reply = api.call("GET /v1/sessions/{session_id}", alice, session_id=session_id)
    assert_error(reply, 500, "internal_error")
    assert "secret.py" not in str(reply.body)


def test_rate_limited_requests_are_counted_for_the_alarm(
    api: InProcessApi, alice: str, session_id: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "1")
    from support.caches import reset_caches

    reset_caches()
    api.call(MESSAGES, alice, {"content": "one"}, session_id=session_id)
    capsys.readouterr()
    assert api.call(MESSAGES, alice, {"content": "two"}, session_id=session_id).status == 429
    emitted = capsys.readouterr().out
    assert '"RateLimited":[1.0]' in emitted.replace(" ", "")


def test_model_latency_is_measured_for_each_turn(
    api: InProcessApi, alice: str, session_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert api.call(MESSAGES, alice, {"content": "time me"}, session_id=session_id).status == 201
    assert '"ModelLatency":[' in capsys.readouterr().out.replace(" ", "")
