"""Rule 9 (logs): a full session, anonymous and signed-in, successes and every error path, leaves
no message content, token, secret or raw user identifier in any log line."""

from __future__ import annotations

import time
import uuid
from typing import Any

import boto3
import pytest
from support.api import InProcessApi
from support.issuer_server import IssuerServer
from support.tokens import unsigned_token

SECRET_CONTENT = "my card is 4111 1111 1111 1111 and mail jane.doe@example.com zebra-quartz"
SUBJECT = "subject-7f3a9c-raw-identifier"
SOURCE_IP = "203.0.113.77"


@pytest.fixture
def api(lambda_context: Any, oidc_env: IssuerServer, aws: Any, monkeypatch: pytest.MonkeyPatch) -> InProcessApi:
    monkeypatch.setenv("ALLOW_ANONYMOUS", "true")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("RATE_LIMIT_PER_MINUTE", "3")
    return InProcessApi(lambda_context)


def test_a_full_session_leaves_nothing_sensitive_in_the_logs(
    api: InProcessApi, oidc_env: IssuerServer, aws: Any, log_output: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    issuer = oidc_env.issuer
    token = issuer.token(sub=SUBJECT)
    messages = "POST /v1/sessions/{session_id}/messages"
    history = "GET /v1/sessions/{session_id}/messages"

    # Signed-in user: the happy path and every error path
    session_id = api.call("POST /v1/sessions", token, source_ip=SOURCE_IP).body["session_id"]
    assert (
        api.call(messages, token, {"content": SECRET_CONTENT}, source_ip=SOURCE_IP, session_id=session_id).status == 201
    )
    api.call(history, token, session_id=session_id)
    api.call("GET /v1/sessions", token)
    api.call("GET /v1/sessions/{session_id}", token, session_id=str(uuid.uuid4()))
    api.call(messages, token, SECRET_CONTENT, content_type="text/plain", session_id=session_id)
    api.call(messages, token, "{" + SECRET_CONTENT, session_id=session_id)
    api.call(messages, token, {"content": SECRET_CONTENT, "extra": SECRET_CONTENT}, session_id=session_id)
    api.call(messages, token, {"content": SECRET_CONTENT + "\u202e"}, session_id=session_id)
    api.call(messages, token, {"content": SECRET_CONTENT * 100}, session_id=session_id)
    for _ in range(3):
        api.call(messages, token, {"content": SECRET_CONTENT}, session_id=session_id)  # into the rate limit
    api.call(history, token, query={"cursor": "forged" + SECRET_CONTENT[:5]}, session_id=session_id)
    api.call("DELETE /v1/admin/users/{subject}", token, subject=SUBJECT)
    api.call("DELETE /v1/sessions/{session_id}", token, session_id=session_id)

    # Bad credentials
    bad_tokens = [
        issuer.token(sub=SUBJECT, aud="other"),
        issuer.token(sub=SUBJECT, exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
        unsigned_token({"alg": "none", "kid": issuer.kid}, issuer.claims(sub=SUBJECT)),
        "garbage-" + SECRET_CONTENT.replace(" ", "-"),
    ]
    for bad in bad_tokens:
        assert api.call("POST /v1/sessions", bad).status == 403

    # Anonymous visitor
    created = api.call("POST /v1/anonymous-sessions", None, content_type=None, source_ip=SOURCE_IP).body
    anonymous_token = created["session_token"]
    api.call(messages, anonymous_token, {"content": SECRET_CONTENT}, session_id=created["session_id"])
    api.call("GET /v1/sessions/{session_id}", anonymous_token, session_id=session_id)
    api.call("DELETE /v1/sessions/{session_id}", anonymous_token, session_id=created["session_id"])

    secrets = boto3.client("secretsmanager")
    secret_values = [secrets.get_secret_value(SecretId=arn)["SecretString"] for arn in aws.secret_arns.values()]
    captured = capsys.readouterr()
    logs = log_output.getvalue() + captured.out + captured.err
    assert logs.count("\n") > 10, "the test should have produced log lines"
    forbidden = [
        "4111", "jane.doe", "zebra-quartz", SUBJECT, SOURCE_IP, token, anonymous_token,
        *bad_tokens, *secret_values,
    ]  # fmt: skip
    leaked = [value[:40] for value in forbidden if value in logs]
    assert leaked == [], [line[:400] for line in logs.splitlines() if any(value in line for value in leaked)]


def test_a_schema_error_logs_known_field_names_and_counts_the_others(
    api: InProcessApi, oidc_env: IssuerServer, log_output: Any
) -> None:
    # Given a user's session
    token = oidc_env.issuer.token(sub=SUBJECT)
    session_id = api.call("POST /v1/sessions", token).body["session_id"]
    attacker_key = "forged-line-" + "k" * 5000

    # When a message arrives with a bad known field and two keys the caller chose
    reply = api.call(
        "POST /v1/sessions/{session_id}/messages",
        token,
        {"content": 42, attacker_key: 1, "zebra-quartz": 2},
        session_id=session_id,
    )

    # Then the log names the known field, counts the others and holds no part of their names
    assert reply.status == 422
    text = log_output.getvalue()
    assert [name for name in ("forged-line", "kkkk", "zebra-quartz") if name in text] == []
    [record] = [line for line in lines(log_output) if line["message"] == "request rejected by schema"]
    assert record["fields"] == ["body.content"]
    assert record["unknown_fields"] == 2


def lines(log_output: Any) -> list[dict[str, Any]]:
    import json

    return [json.loads(line) for line in log_output.getvalue().splitlines() if line.strip()]
