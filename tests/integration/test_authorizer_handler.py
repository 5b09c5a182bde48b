"""The authorizer handler: allow with context, deny with reasons, never raise, never log a token."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from support.caches import reset_caches
from support.issuer_server import IssuerServer
from support.tokens import unsigned_token

from authorizer.handler import lambda_handler
from tools.lambda_events import EVENTS, authorizer_event, load_event


def decide(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return lambda_handler(event, context)


def test_valid_token_is_allowed_with_the_principal_as_context(oidc_env: IssuerServer, lambda_context: Any) -> None:
    token = oidc_env.issuer.token(sub="alice")
    decision = decide(authorizer_event("POST /v1/sessions", f"Bearer {token}"), lambda_context)
    assert decision["isAuthorized"] is True
    assert decision["context"]["kind"] == "user"
    assert decision["context"]["subject"] == "alice"


@pytest.mark.parametrize(
    "make_token",
    [
        lambda issuer: issuer.token(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
        lambda issuer: issuer.token(iss="https://evil.example.test"),
        lambda issuer: issuer.token(aud="someone-else"),
        lambda issuer: unsigned_token({"alg": "none", "kid": issuer.kid}, issuer.claims()),
        lambda issuer: issuer.token()[:-8] + "AAAAAAAA",
    ],
    ids=["expired", "wrong-issuer", "wrong-audience", "alg-none", "forged-signature"],
)
def test_bad_tokens_are_denied(oidc_env: IssuerServer, lambda_context: Any, make_token: Any) -> None:
    event = authorizer_event("POST /v1/sessions", f"Bearer {make_token(oidc_env.issuer)}")
    assert decide(event, lambda_context) == {"isAuthorized": False}


DENIED_SAMPLES = {
    "authorizer-request.json": "unknown_kid",
    "authorizer-request-alg-none.json": "algorithm",
    "authorizer-request-hs256.json": "algorithm",
    "authorizer-request-kid-traversal.json": "kid",
    "authorizer-request-jku.json": "forbidden_header",
    "authorizer-request-oversized.json": "too_large",
    "authorizer-request-no-credentials.json": "no_credentials",
    "authorizer-request-session-tampered.json": "signature",
    # The templates below are denied until a real token replaces their placeholder.
    "authorizer-request-user.json": "malformed",
    "authorizer-request-admin.json": "malformed",
    "authorizer-request-anonymous.json": "malformed",
}


def test_every_authorizer_sample_event_is_listed_here() -> None:
    assert {path.name for path in EVENTS.glob("authorizer-*.json")} == set(DENIED_SAMPLES)


@pytest.mark.parametrize(("name", "reason"), sorted(DENIED_SAMPLES.items()))
def test_sample_events_are_denied_for_their_reason(
    oidc_env: IssuerServer, lambda_context: Any, log_output: Any, name: str, reason: str
) -> None:
    assert decide(load_event(name), lambda_context) == {"isAuthorized": False}
    assert f'"reason":"{reason}"' in log_output.getvalue().replace(" ", "")


def filled(name: str, **values: str) -> dict[str, Any]:
    text = (EVENTS / name).read_text()
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    event: dict[str, Any] = json.loads(text)
    return event


def test_user_sample_event_is_allowed_with_a_real_access_token(oidc_env: IssuerServer, lambda_context: Any) -> None:
    event = filled("authorizer-request-user.json", REPLACE_WITH_ACCESS_TOKEN=oidc_env.issuer.token(sub="alice"))
    assert decide(event, lambda_context)["context"]["subject"] == "alice"


def test_admin_sample_event_is_allowed_with_an_admin_token_and_mfa(oidc_env: IssuerServer, lambda_context: Any) -> None:
    token = oidc_env.issuer.token(sub="root", amr=["pwd", "mfa"], **{"cognito:groups": ["admin"]})
    assert decide(filled("authorizer-request-admin.json", REPLACE_WITH_ADMIN_ACCESS_TOKEN=token), lambda_context)[
        "isAuthorized"
    ]


def test_anonymous_sample_event_is_allowed_with_a_real_session_token(
    oidc_env: IssuerServer, lambda_context: Any, aws: Any
) -> None:
    from support.api import InProcessApi

    created = InProcessApi(lambda_context).call("POST /v1/anonymous-sessions", None).body
    event = filled(
        "authorizer-request-anonymous.json",
        REPLACE_WITH_SESSION_TOKEN=created["session_token"],
        REPLACE_WITH_SESSION_ID=created["session_id"],
    )
    decision = decide(event, lambda_context)
    assert decision["isAuthorized"] is True
    assert decision["context"]["session_id"] == created["session_id"]


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"headers": None},
        {"headers": {"authorization": 7}},
        {"headers": {"authorization": "Basic dXNlcjpwdw=="}},
        {"headers": {"authorization": "Bearer " + "A" * 10_000}},
        {"headers": {"authorization": "Bearer a b"}},
        {"headers": {"authorization": "Bearer"}},
        {"headers": {"authorization": "Bearer x"}, "routeKey": None},
    ],
)
def test_the_authorizer_never_raises_on_bad_input(oidc_env: IssuerServer, lambda_context: Any, event: Any) -> None:
    assert decide(event, lambda_context) == {"isAuthorized": False}


def test_an_unexpected_failure_is_a_deny(
    oidc_env: IssuerServer, lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chatbot_security.identity import oidc

    def explode(self: Any, token: str) -> None:
        raise RuntimeError(token)

    monkeypatch.setattr(oidc.AccessTokenVerifier, "verify", explode)
    event = authorizer_event("POST /v1/sessions", f"Bearer {oidc_env.issuer.token()}")
    assert decide(event, lambda_context) == {"isAuthorized": False}


def test_logs_never_contain_the_token(oidc_env: IssuerServer, lambda_context: Any, log_output: Any) -> None:
    good = oidc_env.issuer.token(sub="alice")
    bad = oidc_env.issuer.token(aud="other")
    for token in (good, bad, "garbage-token-value"):
        decide(authorizer_event("POST /v1/sessions", f"Bearer {token}"), lambda_context)
    logs = log_output.getvalue()
    for token in (good, bad, "garbage-token-value"):
        assert token not in logs
        assert token.split(".")[-1] not in logs
    assert '"reason":"audience"' in logs.replace(" ", "")


def test_admin_route_needs_the_admin_role_and_mfa(oidc_env: IssuerServer, lambda_context: Any) -> None:
    route = "DELETE /v1/admin/users/{subject}"
    issuer = oidc_env.issuer

    def allowed(token: str) -> bool:
        return bool(decide(authorizer_event(route, f"Bearer {token}", subject="bob"), lambda_context)["isAuthorized"])

    assert not allowed(issuer.token())
    assert not allowed(issuer.token(**{"cognito:groups": ["admin"]}))
    assert allowed(issuer.token(**{"cognito:groups": ["admin"]}, amr=["pwd", "mfa"]))


def test_anonymous_token_is_refused_outside_session_routes(
    oidc_env: IssuerServer, lambda_context: Any, aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chat.handler import lambda_handler as chat_handler
    from tools.lambda_events import chat_event

    monkeypatch.setenv("ALLOW_ANONYMOUS", "true")
    created = chat_handler(chat_event("POST /v1/anonymous-sessions", None, None, None), lambda_context)
    token = json.loads(created["body"])["session_token"]
    session_id = json.loads(created["body"])["session_id"]
    own = authorizer_event("GET /v1/sessions/{session_id}", f"Bearer {token}", session_id=session_id)
    assert decide(own, lambda_context)["isAuthorized"] is True
    assert decide(authorizer_event("POST /v1/sessions", f"Bearer {token}"), lambda_context)["isAuthorized"] is False
    monkeypatch.setenv("ALLOW_ANONYMOUS", "false")
    reset_caches()
    assert decide(own, lambda_context)["isAuthorized"] is False


def test_denials_are_counted_in_total_and_by_reason(
    oidc_env: IssuerServer, lambda_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    event = authorizer_event("POST /v1/sessions", f"Bearer {oidc_env.issuer.token(aud='other')}")
    capsys.readouterr()
    assert decide(event, lambda_context) == {"isAuthorized": False}
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    by_name = {m["Name"]: blob for blob in emf for m in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert by_name["AuthorizerDenied"]["AuthorizerDenied"] in ([1.0], 1.0)
    assert by_name["AuthorizerDeniedByReason"]["reason"] == "audience"


@pytest.mark.parametrize("name", ["exp", "iat", "nbf"])
def test_a_signed_token_with_a_huge_numeric_date_is_a_clean_deny(
    oidc_env: IssuerServer, lambda_context: Any, log_output: Any, name: str
) -> None:
    # Given a token signed by the real issuer with a date no float can hold
    token = oidc_env.issuer.token(**{name: 10**400})
    # When the authorizer sees it
    decision = decide(authorizer_event("POST /v1/sessions", f"Bearer {token}"), lambda_context)
    # Then it is denied for a bad claim, not as an internal error
    assert decision == {"isAuthorized": False}
    logs = log_output.getvalue().replace(" ", "")
    assert '"reason":"invalid_claim"' in logs
    assert "internal_error" not in logs
    assert "OverflowError" not in logs


def test_required_scopes_are_enforced_by_the_authorizer(
    oidc_env: IssuerServer, lambda_context: Any, log_output: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a deployment that requires the chat:write scope
    monkeypatch.setenv("OIDC_REQUIRED_SCOPES", "chat:write")
    reset_caches()
    issuer = oidc_env.issuer

    def allowed(token: str) -> bool:
        return bool(decide(authorizer_event("POST /v1/sessions", f"Bearer {token}"), lambda_context)["isAuthorized"])

    # Then a token without it is denied for that reason, and one with it is allowed
    assert not allowed(issuer.token(scope="openid profile"))
    assert '"reason":"scope"' in log_output.getvalue().replace(" ", "")
    assert allowed(issuer.token(scope="openid chat:write"))


def test_no_metric_is_printed_when_metrics_are_disabled(
    oidc_env: IssuerServer, lambda_context: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    event = authorizer_event("POST /v1/sessions", f"Bearer {oidc_env.issuer.token(aud='other')}")
    capsys.readouterr()

    assert decide(event, lambda_context) == {"isAuthorized": False}
    assert '"_aws"' not in capsys.readouterr().out
