"""Rule 4: the authorizer's decision is a function of its cache key (Authorization header, route key) only.

API Gateway caches the decision under exactly those two identity sources (template.yaml,
``Identity``), so if anything else in the request could change the outcome, a cached decision could
be served where it does not belong. These tests vary everything else and check the outcome holds.
"""

from __future__ import annotations

import copy
import time
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.tokens import AUDIENCE, ISSUER, FakeIssuer

from authorizer.decision import ANONYMOUS_ROUTES, Authenticator, authorize, bearer_token
from chatbot_security.identity import session_tokens
from chatbot_security.identity.jwks import JwksCache
from chatbot_security.identity.oidc import AccessTokenVerifier
from chatbot_security.identity.principal import Principal
from chatbot_security.identity.token_errors import TokenRejected
from chatbot_security.platform.settings import Settings
from tools.lambda_events import authorizer_event

ISSUER_KEYS = FakeIssuer()
SESSION_KEY = session_tokens.derive_key("session-secret")
SESSION_ID = str(uuid.uuid4())
ROUTES = [
    "POST /v1/sessions",
    "GET /v1/sessions",
    "GET /v1/sessions/{session_id}",
    "DELETE /v1/sessions/{session_id}",
    "POST /v1/sessions/{session_id}/messages",
    "GET /v1/sessions/{session_id}/messages",
    "POST /v1/sessions/{session_id}/stream-tickets",
    "DELETE /v1/admin/users/{subject}",
    "GET /v1/me/export",
    "DELETE /v1/me",
]
SETTINGS = Settings.model_validate({"OIDC_ISSUER": ISSUER, "OIDC_AUDIENCE": AUDIENCE, "ALLOW_ANONYMOUS": "true"})


def make_authenticator() -> Authenticator:
    jwks = ISSUER_KEYS.jwks()
    fetch = lambda url, timeout: jwks if "jwks" in url else ISSUER_KEYS.discovery()  # noqa: E731
    return Authenticator(
        SETTINGS, AccessTokenVerifier(SETTINGS, JwksCache(SETTINGS, fetch=fetch)), lambda: [SESSION_KEY]
    )


AUTHENTICATOR = make_authenticator()
CREDENTIALS = {
    "user": ISSUER_KEYS.token(sub="alice"),
    "admin-with-mfa": ISSUER_KEYS.token(sub="root", amr=["mfa"], **{"cognito:groups": ["admin"]}),
    "anonymous": session_tokens.issue(SESSION_KEY, SESSION_ID, int(time.time()) + 3600),
    "forged": ISSUER_KEYS.token()[:-6] + "AAAAAA",
}


def outcome(event: dict[str, Any]) -> tuple[str, Any]:
    try:
        principal = authorize(event, AUTHENTICATOR, SETTINGS)
    except TokenRejected as rejection:
        return ("deny", rejection.reason)
    return ("allow", principal.model_dump(exclude={"expires_at"}))


_noise = st.fixed_dictionaries(
    {
        "path_id": st.one_of(st.uuids().map(str), st.just(SESSION_ID), st.text(max_size=40)),
        "query": st.text(max_size=40),
        "source_ip": st.ip_addresses().map(str),
        "headers": st.dictionaries(
            st.sampled_from(["x-user", "x-forwarded-for", "x-amzn-oidc-identity", "cookie", "origin", "x-roles"]),
            st.text(max_size=40),
            max_size=4,
        ),
        "stage": st.sampled_from(["$default", "prod", "v2"]),
    }
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(credential=st.sampled_from(sorted(CREDENTIALS)), route=st.sampled_from(ROUTES), noise=_noise)
def test_the_decision_depends_only_on_the_authorization_header_and_the_route_key(
    credential: str, route: str, noise: dict[str, Any]
) -> None:
    authorization = f"Bearer {CREDENTIALS[credential]}"
    baseline = authorizer_event(route, authorization, session_id=SESSION_ID, subject="bob")
    varied = copy.deepcopy(baseline)
    varied["pathParameters"] = {"session_id": noise["path_id"], "subject": noise["path_id"]}
    varied["rawPath"] = "/v1/" + noise["path_id"]
    varied["rawQueryString"] = noise["query"]
    varied["requestContext"]["http"]["sourceIp"] = noise["source_ip"]
    varied["requestContext"]["stage"] = noise["stage"]
    varied["headers"] = {**noise["headers"], "authorization": authorization}
    assert outcome(varied) == outcome(baseline)


def test_anonymous_tokens_open_the_session_routes_only() -> None:
    token = f"Bearer {CREDENTIALS['anonymous']}"
    allowed = {
        route for route in ROUTES if outcome(authorizer_event(route, token, session_id=SESSION_ID))[0] == "allow"
    }
    assert allowed == ANONYMOUS_ROUTES


def test_admin_route_needs_the_admin_role_and_mfa() -> None:
    route = "DELETE /v1/admin/users/{subject}"
    for token, expected in [
        (ISSUER_KEYS.token(), ("deny", "missing_role")),
        (ISSUER_KEYS.token(**{"cognito:groups": ["admin"]}), ("deny", "missing_mfa")),
        (ISSUER_KEYS.token(**{"cognito:groups": ["admin"]}, amr=["mfa"]), ("allow", None)),
    ]:
        result = outcome(authorizer_event(route, f"Bearer {token}", subject="bob"))
        assert result[0] == expected[0]
        if expected[1]:
            assert result[1] == expected[1]


def test_admin_mfa_can_be_left_to_the_identity_provider() -> None:
    # The Cognito case: the pool requires MFA at every sign-in and its access tokens carry no `amr`.
    relaxed = Settings.model_validate({**SETTINGS.model_dump(by_alias=True), "ADMIN_REQUIRE_MFA": "false"})
    token = ISSUER_KEYS.token(**{"cognito:groups": ["admin"]})
    event = authorizer_event("DELETE /v1/admin/users/{subject}", f"Bearer {token}", subject="bob")
    assert isinstance(authorize(event, AUTHENTICATOR, relaxed), Principal)


def test_anonymous_tokens_are_refused_when_anonymous_access_is_off() -> None:
    closed = Settings.model_validate({**SETTINGS.model_dump(by_alias=True), "ALLOW_ANONYMOUS": "false"})
    authenticator = Authenticator(closed, AUTHENTICATOR._access_tokens, lambda: [SESSION_KEY])
    event = authorizer_event("GET /v1/sessions", f"Bearer {CREDENTIALS['anonymous']}")
    with pytest.raises(TokenRejected, match="anonymous_disabled"):
        authorize(event, authenticator, closed)


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer abc", "abc"), ("BEARER  abc ", "abc")],
)
def test_the_bearer_scheme_is_case_insensitive(header: str, token: str) -> None:
    assert bearer_token({"headers": {"authorization": header}}) == token


@pytest.mark.parametrize(
    "header",
    ["Basic abc", "Bearer", "Bearer a b", "Bearer a,b", "Token abc", "Bearer\tabc", "Bearer " + "A" * 9000],
    ids=["basic", "empty", "two-words", "two-tokens", "other-scheme", "tab", "oversized"],
)
def test_anything_but_one_bearer_token_is_refused(header: str) -> None:
    with pytest.raises(TokenRejected):
        bearer_token({"headers": {"authorization": header}})
