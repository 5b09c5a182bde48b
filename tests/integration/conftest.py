"""Fixtures shared by the integration tests: anonymous sessions allowed, the chat API in this process
behind the real authorizer and configured for the test OIDC issuer, a signed-in user's token and a session of hers."""

from __future__ import annotations

import pytest
from support.api import InProcessApi
from support.issuer_server import IssuerServer

from tools.lambda_context import FakeLambdaContext


@pytest.fixture(autouse=True)
def _anonymous_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOW_ANONYMOUS", "true")


@pytest.fixture
def api(lambda_context: FakeLambdaContext, oidc_env: IssuerServer) -> InProcessApi:
    return InProcessApi(lambda_context)


@pytest.fixture
def alice(oidc_env: IssuerServer) -> str:
    return oidc_env.issuer.token(sub="alice")


@pytest.fixture
def session_id(api: InProcessApi, alice: str) -> str:
    """A session of alice's."""
    return str(api.call("POST /v1/sessions", alice).body["session_id"])
