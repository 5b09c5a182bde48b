"""Every route and status code of docs/contract.md section 3, through the real `chatbot-local`.

The API runs in a subprocess with an OpenAI-compatible model served by a loopback fake (so that the
model can answer, fail with a 502 or hang into a 504) and low limits (409, 429). A second instance
has anonymous access off (404) and an incomplete model configuration (500).
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support.openai_server import OpenAiServer

from tools.local_api import EXECUTABLE, ROOT, RunningApi, running_chatbot_local

pytestmark = pytest.mark.local_api

MAX_MESSAGES = 4
RATE_LIMIT = 3
ANON_PER_HOUR = 3
SESSIONS_PER_HOUR = 7
MAX_LIVE = RATE_LIMIT + 2  # the rate-limit test below needs that many sessions


@dataclass
class Answer:
    status: int
    body: Any
    headers: Any


def send(
    api: RunningApi,
    method: str,
    path: str,
    token: str | None = None,
    data: bytes | None = None,
    content_type: str | None = "application/json",
) -> Answer:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if data is not None and content_type:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(api.base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw, status, response_headers = response.read(), response.status, response.headers
    except urllib.error.HTTPError as error:
        raw, status, response_headers = error.read(), error.code, error.headers
    return Answer(status, json.loads(raw) if raw else None, response_headers)


def post_json(api: RunningApi, path: str, token: str | None, body: Any) -> Answer:
    return send(api, "POST", path, token, json.dumps(body).encode())


def mint(api: RunningApi, subject: str, *options: str) -> str:
    finished = subprocess.run(
        [str(EXECUTABLE), "token", "--sub", subject, *options],
        cwd=ROOT,
        env=api.environ,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return finished.stdout.strip().splitlines()[-1]


def assert_chat_error(answer: Answer, status: int, code: str) -> None:
    assert answer.status == status, answer.body
    assert set(answer.body) == {"error"}
    assert answer.body["error"]["code"] == code
    assert answer.body["error"]["request_id"]
    assert answer.headers["Cache-Control"] == "no-store"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert answer.headers["Content-Type"] == "application/json"


@pytest.fixture(scope="module")
def model_server() -> Iterator[OpenAiServer]:
    server = OpenAiServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, model_server: OpenAiServer) -> Iterator[RunningApi]:
    environ = {
        "MODEL_PROVIDER": "openai",
        "OPENAI_BASE_URL": model_server.base_url,
        "MODEL_ID": "local-test-model",
        "MODEL_API_KEY": "sk-local-test",
        "MODEL_TIMEOUT_SECONDS": "2",
        "MAX_MESSAGES_PER_SESSION": str(MAX_MESSAGES),
        "RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT),
        "ANON_SESSIONS_PER_HOUR": str(ANON_PER_HOUR),
        "SESSIONS_PER_HOUR": str(SESSIONS_PER_HOUR),
        "MAX_LIVE_SESSIONS": str(MAX_LIVE),
    }
    with running_chatbot_local(tmp_path_factory.mktemp("chat-api"), environ) as running:
        yield running


@pytest.fixture(scope="module")
def restricted_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    environ = {"ALLOW_ANONYMOUS": "false", "MODEL_PROVIDER": "openai", "MODEL_ID": "no-endpoint-configured"}
    with running_chatbot_local(tmp_path_factory.mktemp("restricted-api"), environ) as running:
        yield running


def new_user(api: RunningApi) -> str:
    """A fresh principal per test, so that the per-principal rate limit of one test spares the others."""
    return mint(api, f"user-{uuid.uuid4().hex[:12]}")


def new_session(api: RunningApi, token: str) -> str:
    created = send(api, "POST", "/v1/sessions", token)
    assert created.status == 201
    return str(created.body["session_id"])


# -- sessions ---------------------------------------------------------------------------------
def test_post_sessions_is_201_with_a_session(api: RunningApi) -> None:
    created = send(api, "POST", "/v1/sessions", new_user(api))

    assert created.status == 201
    assert set(created.body) == {"session_id", "created_at", "expires_at", "message_count"}
    assert uuid.UUID(created.body["session_id"]).version == 4
    assert created.headers["Cache-Control"] == "no-store"


def test_get_sessions_lists_own_live_sessions_with_200(api: RunningApi) -> None:
    token = new_user(api)
    mine = [new_session(api, token) for _ in range(2)]
    new_session(api, new_user(api))

    listed = send(api, "GET", "/v1/sessions", token)

    assert listed.status == 200
    assert [s["session_id"] for s in listed.body["sessions"]] == mine


def test_get_sessions_pages_with_cursors_bound_to_the_user(api: RunningApi) -> None:
    token, other = new_user(api), new_user(api)
    mine = [new_session(api, token) for _ in range(3)]
    new_session(api, other)

    first = send(api, "GET", "/v1/sessions?limit=2", token)
    second = send(api, "GET", f"/v1/sessions?limit=2&cursor={first.body['next_cursor']}", token)
    bent = send(api, "GET", f"/v1/sessions?limit=2&cursor={first.body['next_cursor']}", other)

    assert [s["session_id"] for s in first.body["sessions"] + second.body["sessions"]] == mine
    assert second.body["next_cursor"] is None
    assert_chat_error(bent, 422, "validation_error")


def test_sessions_past_max_live_sessions_are_409_too_many_sessions(api: RunningApi) -> None:
    token = new_user(api)
    sessions = [new_session(api, token) for _ in range(MAX_LIVE)]

    assert_chat_error(send(api, "POST", "/v1/sessions", token), 409, "too_many_sessions")
    assert send(api, "DELETE", f"/v1/sessions/{sessions[0]}", token).status == 204
    assert send(api, "POST", "/v1/sessions", token).status == 201


def test_sessions_created_past_sessions_per_hour_are_429_with_retry_after(api: RunningApi) -> None:
    token = new_user(api)
    for _ in range(SESSIONS_PER_HOUR):
        send(api, "DELETE", f"/v1/sessions/{new_session(api, token)}", token)

    refused = send(api, "POST", "/v1/sessions", token)

    assert_chat_error(refused, 429, "rate_limited")
    assert int(refused.headers["Retry-After"]) >= 1


def test_get_session_is_200_for_the_owner_and_404_for_anyone_else(api: RunningApi) -> None:
    owner, other = new_user(api), new_user(api)
    session_id = new_session(api, owner)

    assert send(api, "GET", f"/v1/sessions/{session_id}", owner).status == 200
    stolen = send(api, "GET", f"/v1/sessions/{session_id}", other)
    missing = send(api, "GET", f"/v1/sessions/{uuid.uuid4()}", other)
    assert_chat_error(stolen, 404, "not_found")
    assert_chat_error(missing, 404, "not_found")
    assert stolen.body["error"]["message"] == missing.body["error"]["message"]


def test_delete_session_is_204_without_a_body_and_erases_it(api: RunningApi) -> None:
    token = new_user(api)
    session_id = new_session(api, token)
    post_json(api, f"/v1/sessions/{session_id}/messages", token, {"content": "soon gone"})

    deleted = send(api, "DELETE", f"/v1/sessions/{session_id}", token)

    assert deleted.status == 204
    assert deleted.body is None
    assert deleted.headers["Content-Type"] is None
    assert deleted.headers["Cache-Control"] == "no-store"
    assert_chat_error(send(api, "GET", f"/v1/sessions/{session_id}/messages", token), 404, "not_found")


def test_anonymous_sessions_are_201_with_a_token_that_opens_only_that_session(api: RunningApi) -> None:
    created = send(api, "POST", "/v1/anonymous-sessions")
    assert created.status == 201
    token, session_id = created.body["session_token"], created.body["session_id"]

    assert post_json(api, f"/v1/sessions/{session_id}/messages", token, {"content": "hi"}).status == 201
    assert [s["session_id"] for s in send(api, "GET", "/v1/sessions", token).body["sessions"]] == [session_id]
    other = new_session(api, new_user(api))
    assert send(api, "GET", f"/v1/sessions/{other}", token).status == 404
    assert send(api, "POST", "/v1/sessions", token).status == 403


def test_anonymous_sessions_past_the_hourly_limit_per_source_ip_are_429(api: RunningApi) -> None:
    statuses = [send(api, "POST", "/v1/anonymous-sessions").status for _ in range(ANON_PER_HOUR + 1)]

    assert statuses[-1] == 429
    limited = send(api, "POST", "/v1/anonymous-sessions")
    assert_chat_error(limited, 429, "rate_limited")
    assert 1 <= int(limited.headers["Retry-After"]) <= 3601


def test_anonymous_sessions_are_404_like_an_unknown_route_when_disabled(restricted_api: RunningApi) -> None:
    answer = send(restricted_api, "POST", "/v1/anonymous-sessions")

    assert (answer.status, answer.body) == (404, {"message": "Not Found"})


# -- messages ---------------------------------------------------------------------------------
def test_post_message_is_201_with_both_messages_from_the_model(api: RunningApi, model_server: OpenAiServer) -> None:
    token = new_user(api)
    session_id = new_session(api, token)

    turn = post_json(api, f"/v1/sessions/{session_id}/messages", token, {"content": "hello model"})

    assert turn.status == 201
    assert turn.body["user_message"]["role"] == "user"
    assert turn.body["assistant_message"] == {
        **turn.body["assistant_message"],
        "role": "assistant",
        "content": "Model says: hello model",
    }
    assert model_server.requests[-1]["headers"]["Authorization"] == "Bearer sk-local-test"


def test_a_repeated_client_message_id_returns_the_first_answer(api: RunningApi, model_server: OpenAiServer) -> None:
    token = new_user(api)
    session_id = new_session(api, token)
    body = {"content": "only once", "client_message_id": str(uuid.uuid4())}
    first = post_json(api, f"/v1/sessions/{session_id}/messages", token, body)
    asked = len(model_server.requests)

    again = post_json(api, f"/v1/sessions/{session_id}/messages", token, body)

    assert (first.status, again.status) == (201, 201)
    assert again.body == first.body
    assert len(model_server.requests) == asked
    assert send(api, "GET", f"/v1/sessions/{session_id}", token).body["message_count"] == 2


def test_personal_data_is_masked_before_the_model_and_in_storage(api: RunningApi, model_server: OpenAiServer) -> None:
    token = new_user(api)
    session_id = new_session(api, token)

    post_json(api, f"/v1/sessions/{session_id}/messages", token, {"content": "I am jane@example.org"})

    assert model_server.requests[-1]["json"]["messages"][-1]["content"] == "I am [EMAIL]"
    history = send(api, "GET", f"/v1/sessions/{session_id}/messages", token).body["messages"]
    assert [m["content"] for m in history] == ["I am [EMAIL]", "Model says: I am [EMAIL]"]


def test_get_messages_pages_oldest_first_with_cursors_bound_to_the_session(api: RunningApi) -> None:
    token = new_user(api)
    session_id, other = new_session(api, token), new_session(api, token)
    for n in range(2):
        post_json(api, f"/v1/sessions/{session_id}/messages", token, {"content": f"q{n}"})

    first = send(api, "GET", f"/v1/sessions/{session_id}/messages?limit=3", token)
    assert first.status == 200
    assert [m["content"] for m in first.body["messages"]] == ["q0", "Model says: q0", "q1"]
    cursor = first.body["next_cursor"]
    rest = send(api, "GET", f"/v1/sessions/{session_id}/messages?limit=3&cursor={cursor}", token)
    assert [m["content"] for m in rest.body["messages"]] == ["Model says: q1"]
    assert rest.body["next_cursor"] is None
    bent = send(api, "GET", f"/v1/sessions/{other}/messages?cursor={cursor}", token)
    assert_chat_error(bent, 422, "validation_error")


def test_a_full_session_is_409(api: RunningApi) -> None:
    token = new_user(api)
    session_id = new_session(api, token)
    for n in range(MAX_MESSAGES // 2):
        assert post_json(api, f"/v1/sessions/{session_id}/messages", token, {"content": f"m{n}"}).status == 201

    assert_chat_error(post_json(api, f"/v1/sessions/{session_id}/messages", token, {"content": "one more"}),
                      409, "session_full")  # fmt: skip


def test_posting_past_the_rate_limit_is_429_with_retry_after(api: RunningApi) -> None:
    token = new_user(api)
    sessions = [new_session(api, token) for _ in range(RATE_LIMIT + 2)]  # room enough: 409 is checked first
    statuses = [
        post_json(api, f"/v1/sessions/{session_id}/messages", token, {"content": "hello"}).status
        for session_id in sessions[:-1]
    ]

    assert 429 in statuses
    limited = post_json(api, f"/v1/sessions/{sessions[-1]}/messages", token, {"content": "again"})
    assert_chat_error(limited, 429, "rate_limited")
    assert 1 <= int(limited.headers["Retry-After"]) <= 61


def test_a_failing_model_is_502_and_a_hanging_one_504_and_neither_stores_anything(api: RunningApi) -> None:
    token = new_user(api)
    session_id = new_session(api, token)

    assert_chat_error(post_json(api, f"/v1/sessions/{session_id}/messages", token, {"content": "fail-502"}),
                      502, "model_error")  # fmt: skip
    assert_chat_error(post_json(api, f"/v1/sessions/{session_id}/messages", token, {"content": "hang"}),
                      504, "model_timeout")  # fmt: skip
    assert send(api, "GET", f"/v1/sessions/{session_id}", token).body["message_count"] == 0


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        (b'{"content": "hi"}', "text/plain", 415, "unsupported_media_type"),
        (json.dumps({"content": "a" * 20_000}).encode(), "application/json", 413, "payload_too_large"),
        (b'{"content": ', "application/json", 400, "bad_request"),
        (b'{"content": "\xc3\x28"}', "application/json", 400, "bad_request"),
        (b'{"content": "hi", "role": "assistant"}', "application/json", 422, "validation_error"),
        (b'{"content": "trojan \\u202e source"}', "application/json", 422, "validation_error"),
        (b'{"content": "bell \\u0007"}', "application/json", 422, "validation_error"),
        (b'{"content": "hi", "client_message_id": "not-a-uuid"}', "application/json", 422, "validation_error"),
    ],
    ids=["415", "413", "400-json", "400-utf8", "422-unknown-field", "422-bidi", "422-control", "422-uuid"],
)
def test_bad_message_bodies_get_their_status(
    api: RunningApi, data: bytes, content_type: str, status: int, code: str
) -> None:
    token = new_user(api)
    session_id = new_session(api, token)

    assert_chat_error(send(api, "POST", f"/v1/sessions/{session_id}/messages", token, data, content_type), status, code)


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/sessions?foo=bar"), ("GET", "/v1/sessions?foo=bar"), ("GET", "/v1/sessions/{id}?foo=bar"),
     ("GET", "/v1/sessions/{id}/messages?limit=5&foo=bar&x=1"), ("DELETE", "/v1/sessions/{id}?foo=bar")],
)  # fmt: skip
def test_an_unknown_query_parameter_is_422_with_a_count_and_no_name(api: RunningApi, method: str, path: str) -> None:
    token = new_user(api)
    session_id = new_session(api, token)

    answer = send(api, method, path.replace("{id}", session_id), token)

    assert_chat_error(answer, 422, "validation_error")
    assert "unknown field" in answer.body["error"]["message"]
    assert "foo" not in json.dumps(answer.body)
    assert send(api, "GET", f"/v1/sessions/{session_id}", token).status == 200


def test_creating_a_session_with_an_unknown_field_is_422(api: RunningApi) -> None:
    token = new_user(api)

    answer = post_json(api, "/v1/sessions", token, {"evil": 1})

    assert_chat_error(answer, 422, "validation_error")
    assert answer.body["error"]["message"] == "1 unknown field in the body"
    assert send(api, "GET", "/v1/sessions", token).body["sessions"] == []


def test_a_422_names_the_field_and_its_rule_without_the_value(api: RunningApi) -> None:
    token = new_user(api)
    session_id = new_session(api, token)

    answer = post_json(api, f"/v1/sessions/{session_id}/messages", token, {"content": "zebra " * 700})

    assert_chat_error(answer, 422, "validation_error")
    assert answer.body["error"]["message"] == "content: at most 4000 characters"


def test_a_client_message_id_reused_for_other_content_is_409_idempotency_conflict(api: RunningApi) -> None:
    token = new_user(api)
    session_id = new_session(api, token)
    client_id = str(uuid.uuid4())
    path = f"/v1/sessions/{session_id}/messages"
    assert post_json(api, path, token, {"content": "first", "client_message_id": client_id}).status == 201

    answer = post_json(api, path, token, {"content": "second", "client_message_id": client_id})

    assert_chat_error(answer, 409, "idempotency_conflict")


def test_a_path_id_that_is_not_a_uuid4_is_422(api: RunningApi) -> None:
    assert_chat_error(send(api, "GET", "/v1/sessions/not-a-uuid", new_user(api)), 422, "validation_error")


def test_an_unexpected_failure_is_a_generic_500(restricted_api: RunningApi) -> None:
    token = mint(restricted_api, "misconfigured")
    session_id = new_session(restricted_api, token)  # sessions work without a model

    answer = post_json(restricted_api, f"/v1/sessions/{session_id}/messages", token, {"content": "hi"})

    assert_chat_error(answer, 500, "internal_error")
    assert "OPENAI" not in json.dumps(answer.body)


# -- admin erasure ----------------------------------------------------------------------------
def test_admin_erasure_is_204_with_role_and_mfa_and_403_without(api: RunningApi) -> None:
    subject = f"leaver-{uuid.uuid4().hex[:8]}"
    leaver = mint(api, subject)
    sessions = [new_session(api, leaver) for _ in range(2)]

    # Denied by the authorizer (API Gateway's 403) or by the chat function (its own 403): never erased.
    without_mfa = mint(api, "admin-no-mfa", "--roles", "admin")
    assert send(api, "DELETE", f"/v1/admin/users/{subject}", without_mfa).status == 403
    assert send(api, "DELETE", f"/v1/admin/users/{subject}", new_user(api)).status == 403
    assert len(send(api, "GET", "/v1/sessions", leaver).body["sessions"]) == 2
    erased = send(api, "DELETE", f"/v1/admin/users/{subject}", mint(api, "admin", "--roles", "admin", "--mfa"))

    assert erased.status == 204
    assert send(api, "GET", "/v1/sessions", leaver).body["sessions"] == []
    assert all(send(api, "GET", f"/v1/sessions/{s}", leaver).status == 404 for s in sessions)


# -- answers of the gateway -------------------------------------------------------------------
def test_the_gateway_answers_401_403_and_404_in_its_own_shape(api: RunningApi) -> None:
    assert (send(api, "GET", "/v1/sessions").status, send(api, "GET", "/v1/sessions").body) == (
        401,
        {"message": "Unauthorized"},
    )
    forbidden = send(api, "GET", "/v1/sessions", "not.a.token")
    assert (forbidden.status, forbidden.body) == (403, {"message": "Forbidden"})
    unknown = send(api, "GET", "/v1/unknown", new_user(api))
    assert (unknown.status, unknown.body) == (404, {"message": "Not Found"})


@pytest.mark.parametrize("method", ["TRACE", "PUT", "PATCH", "CONNECT", "PROPFIND", "BREW"])
def test_a_method_no_route_has_is_the_gateways_json_404(api: RunningApi, method: str) -> None:
    answer = send(api, method, "/v1/sessions", new_user(api))

    assert (answer.status, answer.body) == (404, {"message": "Not Found"})
    assert answer.headers["Content-Type"] == "application/json"


def test_message_content_never_reaches_the_output(api: RunningApi) -> None:
    token = new_user(api)
    session_id = new_session(api, token)
    post_json(api, f"/v1/sessions/{session_id}/messages", token, {"content": "ultraviolet kangaroo"})

    assert "ultraviolet kangaroo" not in Path(api.log_path).read_text(errors="replace")
