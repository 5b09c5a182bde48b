"""Rule 5 (and the chat-side half of rule 4): the chat function trusts the authorizer context and nothing else.

Identity the caller claims anywhere else (headers, query, body) is ignored; a context that is
missing, malformed, or whose credential has expired since API Gateway cached the "allow" is refused;
role and MFA are checked again where the erasure happens.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from support.api import InProcessApi
from support.issuer_server import IssuerServer

from authorizer.handler import lambda_handler as authorizer_handler
from chat.handler import lambda_handler as chat_handler
from tools.lambda_events import authorizer_event, chat_event

pytestmark = pytest.mark.usefixtures("aws")
SESSIONS = "GET /v1/sessions"
ERASE = "DELETE /v1/admin/users/{subject}"


def context_for(token: str, route: str, lambda_context: Any, **path: str) -> dict[str, Any]:
    decision = authorizer_handler(authorizer_event(route, f"Bearer {token}", **path), lambda_context)
    assert decision["isAuthorized"] is True
    context: dict[str, Any] = decision["context"]
    return context


def status(route: str, context: dict[str, Any] | None, lambda_context: Any, **path: str) -> int:
    response = chat_handler(chat_event(route, context, None, None, None, is_base64=False, **path), lambda_context)
    return int(response["statusCode"])


def test_identity_claimed_in_headers_or_query_is_ignored(oidc_env: IssuerServer, lambda_context: Any) -> None:
    api = InProcessApi(lambda_context)
    alice, bob = oidc_env.issuer.token(sub="alice"), oidc_env.issuer.token(sub="bob")
    bobs = api.call("POST /v1/sessions", bob).body["session_id"]
    context = context_for(alice, SESSIONS, lambda_context)
    event = chat_event(SESSIONS, context, None, None)
    event["headers"].update({"x-user": "bob", "x-amzn-oidc-identity": "bob", "x-forwarded-user": "bob"})
    listed = chat_handler(event, lambda_context)
    assert listed["statusCode"] == 200
    assert bobs not in listed["body"]
    # An identity in the query is not even read: unknown query parameters are refused.
    claimed = chat_handler(chat_event(SESSIONS, context, None, None, query={"sub": "bob"}), lambda_context)
    assert claimed["statusCode"] == 422
    assert bobs not in claimed["body"]


def test_a_request_without_an_authorizer_context_is_refused(lambda_context: Any) -> None:
    assert status(SESSIONS, None, lambda_context) == 403


@pytest.mark.parametrize(
    "context",
    [
        {"kind": "root", "subject": "alice"},
        {"kind": "user", "subject": ""},
        {"kind": "user", "subject": "alice", "roles": "admin"},
        {"kind": "anonymous", "subject": "x", "expires_at": "tomorrow"},
    ],
    ids=["unknown-kind", "empty-subject", "roles-not-a-list", "expiry-not-a-number"],
)
def test_a_malformed_authorizer_context_is_refused(lambda_context: Any, context: dict[str, Any]) -> None:
    assert status(SESSIONS, context, lambda_context) == 403


def test_a_cached_allow_whose_token_has_expired_since_is_refused(oidc_env: IssuerServer, lambda_context: Any) -> None:
    # API Gateway may serve a cached "allow" for the authorizer cache TTL; the context says until when
    # the credential behind it was valid, and the chat function stops honouring it after that.
    context = context_for(oidc_env.issuer.token(sub="alice"), SESSIONS, lambda_context)
    assert status(SESSIONS, context, lambda_context) == 200
    stale = {**context, "expires_at": int(time.time()) - 120}
    assert status(SESSIONS, stale, lambda_context) == 403


def test_admin_erasure_checks_role_and_mfa_again_in_the_chat_function(
    oidc_env: IssuerServer, lambda_context: Any
) -> None:
    token = oidc_env.issuer.token(sub="root", amr=["mfa"], **{"cognito:groups": ["admin"]})
    context = context_for(token, ERASE, lambda_context, subject="bob")
    assert status(ERASE, context, lambda_context, subject="bob") == 204
    assert status(ERASE, {**context, "mfa": False}, lambda_context, subject="bob") == 403
    assert status(ERASE, {**context, "roles": "[]"}, lambda_context, subject="bob") == 403
    anonymous = {**context, "kind": "anonymous", "session_id": context["subject"]}
    assert status(ERASE, anonymous, lambda_context, subject="bob") == 403


def test_admin_erasure_removes_every_session_of_that_subject_only(oidc_env: IssuerServer, lambda_context: Any) -> None:
    api = InProcessApi(lambda_context)
    bob, carol = oidc_env.issuer.token(sub="bob"), oidc_env.issuer.token(sub="carol")
    bobs = [api.call("POST /v1/sessions", bob).body["session_id"] for _ in range(2)]
    carols = api.call("POST /v1/sessions", carol).body["session_id"]
    admin = oidc_env.issuer.token(sub="root", amr=["mfa"], **{"cognito:groups": ["admin"]})
    assert api.call(ERASE, admin, subject="bob").status == 204
    assert api.call("GET /v1/sessions", bob).body["sessions"] == []
    assert [s["session_id"] for s in api.call("GET /v1/sessions", carol).body["sessions"]] == [carols]
    assert all(api.call("GET /v1/sessions/{session_id}", bob, session_id=s).status == 404 for s in bobs)
