"""The authorizer's own settings reader (no pydantic on its cold path) reads what the full settings model
reads, refuses whatever that model refuses, and a refusal makes every request a deny."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatbot_security.platform.authorizer_settings import AuthorizerSettings, read_authorizer_settings
from chatbot_security.platform.settings import Settings

FIELDS = tuple(AuthorizerSettings.__dataclass_fields__)
VARIABLES = (
    "OIDC_ISSUER", "OIDC_AUDIENCE", "OIDC_JWKS_URL", "OIDC_ROLES_CLAIM", "OIDC_ALGORITHMS", "OIDC_REQUIRED_SCOPES",
    "ADMIN_ROLE", "ADMIN_REQUIRE_MFA", "ALLOW_LOOPBACK_ISSUER", "AWS_SAM_LOCAL", "ALLOW_ANONYMOUS",
    "SESSION_TTL_SECONDS", "SESSION_TOKEN_SECRET_ARN", "EDGE_PROTECTION", "EDGE_ORIGIN_SECRET_ARN",
    "EDGE_ORIGIN_SECRET_MAX_AGE_SECONDS",
)  # fmt: skip
DEPLOYED = {
    "OIDC_ISSUER": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Abc",
    "OIDC_AUDIENCE": " client-a , client-b ",
    "OIDC_ALGORITHMS": "RS256,ES256",
    "OIDC_REQUIRED_SCOPES": "chat:read  chat:write",
    "ADMIN_ROLE": "chat-admins",
    "ADMIN_REQUIRE_MFA": "false",
    "ALLOW_ANONYMOUS": "True",
    "SESSION_TTL_SECONDS": " 3600 ",
    "SESSION_TOKEN_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:session",
    "EDGE_PROTECTION": "waf",
    "EDGE_ORIGIN_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:origin",
    "EDGE_ORIGIN_SECRET_MAX_AGE_SECONDS": "120",
}


def fields_of(model: Any) -> dict[str, Any]:
    return {name: getattr(model, name) for name in FIELDS}


def outcome(environment: dict[str, str]) -> tuple[str, Any]:
    try:
        return ("read", fields_of(read_authorizer_settings(environment)))
    except ValueError:
        return ("refused", None)


def full_outcome(environment: dict[str, str]) -> tuple[str, Any]:
    try:
        return ("read", fields_of(Settings.model_validate(environment)))
    except ValueError:
        return ("refused", None)


def test_the_defaults_are_those_of_the_full_settings() -> None:
    assert outcome({}) == full_outcome({})


def test_a_deployed_configuration_is_read_like_the_full_settings() -> None:
    read = outcome(DEPLOYED)
    assert read == full_outcome(DEPLOYED)
    assert read[1]["oidc_audience"] == ("client-a", "client-b")


def test_a_loopback_issuer_over_http_is_for_local_runs_only() -> None:
    local = {"OIDC_ISSUER": "http://127.0.0.1:9000", "ALLOW_LOOPBACK_ISSUER": "true"}
    assert outcome(local) == full_outcome(local)
    assert outcome(local)[0] == "read"
    assert outcome({"OIDC_ISSUER": "http://127.0.0.1:9000"})[0] == "refused"


@pytest.mark.parametrize(
    "environment",
    [
        {"OIDC_ALGORITHMS": "HS256"},
        {"OIDC_ALGORITHMS": "RS256,none"},
        {"OIDC_ALGORITHMS": " , "},
        {"OIDC_ISSUER": "http://issuer.example.test"},
        {"OIDC_ISSUER": "https://user:pass@issuer.example.test"},
        {"OIDC_JWKS_URL": "ftp://issuer.example.test/jwks"},
        {"OIDC_ROLES_CLAIM": " "},
        {"ADMIN_ROLE": ""},
        {"ADMIN_REQUIRE_MFA": "maybe"},
        {"ALLOW_ANONYMOUS": " true "},
        {"ALLOW_ANONYMOUS": ""},
        {"SESSION_TTL_SECONDS": "59"},
        {"SESSION_TTL_SECONDS": str(30 * 86400 + 1)},
        {"SESSION_TTL_SECONDS": "1e3"},
        {"EDGE_PROTECTION": "WAF"},
        {"EDGE_PROTECTION": "waf"},
        {"EDGE_ORIGIN_SECRET_MAX_AGE_SECONDS": "0"},
        {"EDGE_ORIGIN_SECRET_MAX_AGE_SECONDS": "901"},
    ],
    ids=["symmetric-algorithm", "alg-none", "no-algorithm", "http-issuer", "credentials-in-issuer", "ftp-jwks",
         "blank-roles-claim", "empty-admin-role", "mfa-not-a-boolean", "padded-boolean", "empty-boolean",
         "ttl-too-short", "ttl-too-long", "ttl-not-an-integer", "edge-mode-case", "edge-without-secret",
         "origin-age-zero", "origin-age-too-long"],
)  # fmt: skip
def test_a_value_the_full_settings_refuse_is_refused(environment: dict[str, str]) -> None:
    assert full_outcome(environment) == ("refused", None)
    assert outcome(environment) == ("refused", None)


_value = st.one_of(
    st.sampled_from(["", " ", "true", "FALSE", "yes", "0", "2", "60", " 300 ", "+90", "-1", "waf", "none", "RS256",
                     "HS256", "RS256, ES384", "https://a.example.test", "http://localhost:8000", "a b", "x,y",
                     "0\x1f", "\x1f", "\x1c600", "\u3000admin\u3000", "\xa0300", "\u200b60"]),
    st.text(max_size=12),
)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(environment=st.dictionaries(st.sampled_from(VARIABLES), _value, max_size=5))
def test_whatever_the_authorizer_reads_the_full_settings_read_the_same(environment: dict[str, str]) -> None:
    mine = outcome(environment)
    if mine[0] == "read":
        assert full_outcome(environment) == mine


@pytest.mark.parametrize(
    "environment",
    [{"OIDC_ROLES_CLAIM": "groups\x1f"}, {"ADMIN_ROLE": "\u3000admins\u3000"}, {"SESSION_TTL_SECONDS": "\xa0600"},
     {"OIDC_ISSUER": "\x1f"}, {"SESSION_TTL_SECONDS": "\x1c600"}],
    ids=["separator-kept-in-text", "unicode-space-stripped", "unicode-space-around-number", "separator-only-is-blank",
         "separator-before-number"],
)  # fmt: skip
def test_whitespace_is_stripped_exactly_as_the_full_settings_strip_it(environment: dict[str, str]) -> None:
    assert outcome(environment) == full_outcome(environment)


def test_settings_the_authorizer_refuses_make_every_request_a_deny(
    monkeypatch: pytest.MonkeyPatch, lambda_context: Any, log_output: Any
) -> None:
    from authorizer.handler import lambda_handler
    from tools.lambda_events import authorizer_event

    monkeypatch.setenv("OIDC_ALGORITHMS", "HS256")
    assert lambda_handler(authorizer_event("GET /v1/sessions", "Bearer a.b.c"), lambda_context) == {
        "isAuthorized": False
    }
    assert '"reason":"internal_error"' in log_output.getvalue().replace(" ", "")
