"""Path parameters as API Gateway hands them over: percent-decoded (rule 6, "path ids validated").

An HTTP API decodes the path before the function sees it, so a session id or subject can hold any
character, including ones the Powertools resolver does not route (`"`, `#`, `?`, `/`, controls).
API Gateway has matched one of our routes, so that is a malformed parameter (422), never a fake
"unknown route"; and a subject that needs percent-encoding in the URL reaches the erasure decoded.
Found by the API fuzzer (tools/api_fuzzer.py) against chatbot-local.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.api import InProcessApi
from support.issuer_server import IssuerServer

from chat.routes import ROUTES_WITH_PARAMETERS

pytestmark = pytest.mark.usefixtures("aws")

ROOT = Path(__file__).resolve().parents[2]


def test_the_routes_with_parameters_are_the_documented_ones() -> None:
    document = json.loads((ROOT / "docs" / "openapi.json").read_text())
    documented = {f"{method.upper()} {path}" for path, methods in document["paths"].items() for method in methods}
    assert {route for route in documented if "{" in route} == ROUTES_WITH_PARAMETERS


@pytest.mark.parametrize("session_id", ['a"b', "a#b?c", "\x01"])
@pytest.mark.parametrize(
    "route", ["GET /v1/sessions/{session_id}", "POST /v1/sessions/{session_id}/messages",
              "GET /v1/sessions/{session_id}/messages", "DELETE /v1/sessions/{session_id}"]
)  # fmt: skip
def test_a_session_id_the_resolver_cannot_route_is_a_422(
    api: InProcessApi, oidc_env: IssuerServer, route: str, session_id: str
) -> None:
    token = oidc_env.issuer.token(sub="alice")
    body = {"content": "hi"} if route.startswith("POST") else None

    reply = api.call(route, token, body, session_id=session_id)

    assert reply.status == 422
    assert reply.body["error"]["code"] == "validation_error"
    assert reply.headers["Cache-Control"] == "no-store"


def test_a_subject_with_characters_the_resolver_cannot_route_is_a_422(
    api: InProcessApi, oidc_env: IssuerServer
) -> None:
    admin = oidc_env.issuer.token(sub="root", **{"cognito:groups": ["admin"], "amr": ["mfa"]})

    reply = api.call("DELETE /v1/admin/users/{subject}", admin, subject='user"1')

    assert reply.status == 422


def test_a_subject_that_needed_percent_encoding_is_erased_decoded(api: InProcessApi, oidc_env: IssuerServer) -> None:
    # Given a user whose sub holds a character a client must percent-encode in a URL
    user = oidc_env.issuer.token(sub="auth0|abc def")
    session_id = api.call("POST /v1/sessions", user).body["session_id"]
    admin = oidc_env.issuer.token(sub="root", **{"cognito:groups": ["admin"], "amr": ["mfa"]})
    # When an admin erases that subject (API Gateway hands the function the decoded path)
    erased = api.call("DELETE /v1/admin/users/{subject}", admin, subject="auth0|abc def")
    # Then the user's session is gone
    assert erased.status == 204
    assert api.call("GET /v1/sessions/{session_id}", user, session_id=session_id).status == 404
