"""The no-bypass check in the real handlers (docs/edge.md): with EDGE_PROTECTION=waf the authorizer and
the chat function refuse a request that does not carry a valid origin header, on every route; the
anonymous-session route (no authorizer) is refused by the function, and its per-IP limit counts
CloudFront's viewer address only behind a valid origin header."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from support.caches import reset_caches
from support.issuer_server import IssuerServer

from authorizer.handler import lambda_handler as authorizer_handler
from chat.handler import lambda_handler as chat_handler
from tools.lambda_events import authorizer_event, body_of, chat_event

ORIGIN_VALUE = "v" * 64
ANONYMOUS = "POST /v1/anonymous-sessions"
SESSIONS = "POST /v1/sessions"


@dataclass
class OriginSecret:
    client: Any
    arn: str


@pytest.fixture
def edge_on(aws: Any, monkeypatch: pytest.MonkeyPatch) -> OriginSecret:
    """The edge switched on, with an origin secret in moto."""
    secrets = boto3.client("secretsmanager", endpoint_url=aws.endpoint_url, region_name=aws.region)
    arn = secrets.create_secret(Name="edge-origin-tests", SecretString=ORIGIN_VALUE)["ARN"]
    monkeypatch.setenv("EDGE_PROTECTION", "waf")
    monkeypatch.setenv("EDGE_ORIGIN_SECRET_ARN", arn)
    reset_caches()
    return OriginSecret(secrets, arn)


def with_origin(event: dict[str, Any], value: str | None) -> dict[str, Any]:
    if value is not None:
        event["headers"]["x-origin-verify"] = value
    return event


def anonymous_event(origin: str | None, source_ip: str = "130.176.0.1", viewer: str | None = None) -> dict[str, Any]:
    event = with_origin(chat_event(ANONYMOUS, None, None, None, source_ip=source_ip), origin)
    if viewer is not None:
        event["headers"]["cloudfront-viewer-address"] = viewer
    return event


# -- authorizer ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("edge_on")
@pytest.mark.parametrize("origin", [None, "", "wrong", ORIGIN_VALUE[:-1]], ids=["missing", "empty", "wrong", "short"])
def test_authorizer_denies_a_valid_token_without_a_valid_origin_header(
    oidc_env: IssuerServer, lambda_context: Any, log_output: Any, origin: str | None
) -> None:
    event = with_origin(authorizer_event(SESSIONS, f"Bearer {oidc_env.issuer.token(sub='alice')}"), origin)
    assert authorizer_handler(event, lambda_context) == {"isAuthorized": False}
    assert '"reason":"origin_invalid"' in log_output.getvalue().replace(" ", "")


@pytest.mark.usefixtures("edge_on")
def test_authorizer_allows_a_valid_token_with_the_origin_header(oidc_env: IssuerServer, lambda_context: Any) -> None:
    event = with_origin(authorizer_event(SESSIONS, f"Bearer {oidc_env.issuer.token(sub='alice')}"), ORIGIN_VALUE)
    assert authorizer_handler(event, lambda_context)["isAuthorized"] is True


@pytest.mark.usefixtures("aws")
def test_authorizer_ignores_the_origin_header_with_the_edge_off(oidc_env: IssuerServer, lambda_context: Any) -> None:
    event = authorizer_event(SESSIONS, f"Bearer {oidc_env.issuer.token(sub='alice')}")
    assert authorizer_handler(event, lambda_context)["isAuthorized"] is True


# -- chat function ------------------------------------------------------------------------------


@pytest.mark.usefixtures("edge_on")
@pytest.mark.parametrize("origin", [None, "wrong"], ids=["missing", "wrong"])
def test_the_anonymous_route_is_refused_without_a_valid_origin_header(lambda_context: Any, origin: str | None) -> None:
    response = chat_handler(anonymous_event(origin), lambda_context)
    assert response["statusCode"] == 403
    assert body_of(response)["error"]["code"] == "forbidden"


@pytest.mark.usefixtures("edge_on")
def test_the_anonymous_route_works_with_the_origin_header(lambda_context: Any) -> None:
    response = chat_handler(anonymous_event(ORIGIN_VALUE), lambda_context)
    assert response["statusCode"] == 201
    assert "session_token" in body_of(response)


@pytest.mark.usefixtures("edge_on")
def test_a_cached_authorizer_allow_does_not_serve_a_direct_call(oidc_env: IssuerServer, lambda_context: Any) -> None:
    # Given an authorizer context API Gateway could serve from its cache (keyed on Authorization)
    allowed = authorizer_handler(
        with_origin(authorizer_event(SESSIONS, f"Bearer {oidc_env.issuer.token(sub='alice')}"), ORIGIN_VALUE),
        lambda_context,
    )
    # When the same token arrives directly, without the origin header
    response = chat_handler(chat_event(SESSIONS, allowed["context"], None, None), lambda_context)
    # Then the chat function refuses it before any data access
    assert response["statusCode"] == 403


@pytest.mark.usefixtures("edge_on")
def test_the_per_ip_limit_counts_the_viewer_address_behind_the_edge(
    lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given one anonymous session per IP, and two viewers behind the same CloudFront edge server
    monkeypatch.setenv("ANON_SESSIONS_PER_HOUR", "1")
    reset_caches()
    first = anonymous_event(ORIGIN_VALUE, viewer="198.51.100.10:40000")
    second = anonymous_event(ORIGIN_VALUE, viewer="198.51.100.11:40000")
    again = anonymous_event(ORIGIN_VALUE, viewer="198.51.100.10:40001")
    # Then each viewer gets its own budget, and the first one's second session is limited
    assert chat_handler(first, lambda_context)["statusCode"] == 201
    assert chat_handler(second, lambda_context)["statusCode"] == 201
    assert chat_handler(again, lambda_context)["statusCode"] == 429


@pytest.mark.usefixtures("aws")
def test_a_viewer_address_header_is_ignored_with_the_edge_off(
    lambda_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given one anonymous session per IP and the edge off: the header is the caller's own choice
    monkeypatch.setenv("ANON_SESSIONS_PER_HOUR", "1")
    reset_caches()
    responses = [chat_handler(anonymous_event(None, viewer=f"198.51.100.{n}:40000"), lambda_context) for n in (1, 2)]
    assert [response["statusCode"] for response in responses] == [201, 429]


def test_a_previous_value_is_accepted_while_both_versions_are_staged(
    lambda_context: Any, edge_on: OriginSecret
) -> None:
    # Given a rotation in progress: the new value is current, the old one previous
    edge_on.client.put_secret_value(SecretId=edge_on.arn, SecretString="w" * 64)
    reset_caches()
    # Then requests with either value pass
    assert chat_handler(anonymous_event(ORIGIN_VALUE), lambda_context)["statusCode"] == 201
    assert chat_handler(anonymous_event("w" * 64, source_ip="130.176.0.2"), lambda_context)["statusCode"] == 201
