"""The development issuer: key on disk, discovery and JWKS over loopback, tokens, shared state."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from chatbot_local.issuer import (
    AUDIENCE,
    DISCOVERY_PATH,
    KEY_FILE,
    STATE_FILE,
    DevIssuer,
    IssuerError,
    IssuerState,
    clear_state,
    load_or_create_key,
    mint_token,
    read_key,
    read_state,
    write_state,
)


def fetch(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=5) as response:
        document: dict[str, object] = json.load(response)
        return document


@pytest.fixture
def issuer(tmp_path: Path) -> Iterator[DevIssuer]:
    server = DevIssuer(load_or_create_key(tmp_path))
    server.start()
    yield server
    server.stop()


def state_for(server: DevIssuer, roles_claim: str = "cognito:groups") -> IssuerState:
    return IssuerState(server.url, AUDIENCE, roles_claim, server.kid, os.getpid())


def test_signing_key_is_created_once_readable_by_the_owner_only(tmp_path: Path) -> None:
    first = load_or_create_key(tmp_path / "state")
    second = load_or_create_key(tmp_path / "state")

    mode = stat.S_IMODE((tmp_path / "state" / KEY_FILE).stat().st_mode)
    assert mode == 0o600
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert first.key_size == 2048
    assert first.private_numbers() == second.private_numbers()


def test_an_unreadable_key_file_is_replaced(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_text("garbage")

    key = load_or_create_key(tmp_path)

    assert key.key_size == 2048
    assert read_key(tmp_path).private_numbers() == key.private_numbers()


def test_discovery_points_at_the_jwks_with_one_rs256_signing_key(issuer: DevIssuer) -> None:
    discovery = fetch(issuer.url + DISCOVERY_PATH)
    jwks = fetch(str(discovery["jwks_uri"]))

    assert discovery["issuer"] == issuer.url
    assert issuer.url.startswith("http://127.0.0.1:")
    keys = jwks["keys"]
    assert isinstance(keys, list)
    (key,) = keys
    assert key["kty"] == "RSA"
    assert key["use"] == "sig"
    assert key["alg"] == "RS256"
    assert key["kid"] == issuer.kid
    assert "d" not in key


def test_unknown_issuer_path_is_404(issuer: DevIssuer) -> None:
    with pytest.raises(urllib.error.HTTPError) as raised:
        fetch(issuer.url + "/nothing")
    assert raised.value.code == 404


def test_minted_token_verifies_against_the_served_jwks(issuer: DevIssuer, tmp_path: Path) -> None:
    token = mint_token(read_key(tmp_path), state_for(issuer), "alice", roles=["admin"], mfa=True, ttl_seconds=600)

    jwks = jwt.PyJWKClient(issuer.url + "/.well-known/jwks.json")
    signing_key = jwks.get_signing_key_from_jwt(token)
    claims = jwt.decode(token, signing_key.key, algorithms=["RS256"], audience=AUDIENCE, issuer=issuer.url)

    assert jwt.get_unverified_header(token)["kid"] == issuer.kid
    assert claims["sub"] == "alice"
    assert claims["client_id"] == AUDIENCE
    assert claims["token_use"] == "access"
    assert claims["cognito:groups"] == ["admin"]
    assert claims["amr"] == ["mfa"]
    assert claims["exp"] - claims["iat"] == 600
    assert claims["nbf"] == claims["iat"]
    assert claims["jti"]


def test_roles_go_under_the_configured_claim_and_mfa_is_optional(issuer: DevIssuer, tmp_path: Path) -> None:
    token = mint_token(read_key(tmp_path), state_for(issuer, "roles"), "bob", now=1_000)

    claims = jwt.decode(token, options={"verify_signature": False})

    assert claims["roles"] == []
    assert "amr" not in claims
    assert "scope" not in claims
    assert claims["iat"] == 1_000
    assert claims["exp"] == 4_600


def test_scopes_go_into_the_scope_claim_when_asked_for(issuer: DevIssuer, tmp_path: Path) -> None:
    token = mint_token(read_key(tmp_path), state_for(issuer, "roles"), "bob", scope="chat:read chat:write")

    assert jwt.decode(token, options={"verify_signature": False})["scope"] == "chat:read chat:write"


def test_state_round_trips_for_a_running_process(tmp_path: Path) -> None:
    state = IssuerState("http://127.0.0.1:1", AUDIENCE, "cognito:groups", "kid", os.getpid())

    write_state(tmp_path, state)

    assert read_state(tmp_path) == state
    assert stat.S_IMODE((tmp_path / STATE_FILE).stat().st_mode) == 0o600


def test_no_state_means_the_server_is_not_running(tmp_path: Path) -> None:
    with pytest.raises(IssuerError, match="not running"):
        read_state(tmp_path)


def test_state_of_a_stopped_server_is_refused(tmp_path: Path) -> None:
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    write_state(tmp_path, IssuerState("http://127.0.0.1:1", AUDIENCE, "c", "kid", int(finished.stdout)))

    with pytest.raises(IssuerError, match="has stopped"):
        read_state(tmp_path)


def test_clear_state_removes_only_this_processes_state(tmp_path: Path) -> None:
    write_state(tmp_path, IssuerState("http://127.0.0.1:1", AUDIENCE, "c", "kid", os.getpid()))

    clear_state(tmp_path, os.getpid() + 1)
    assert (tmp_path / STATE_FILE).exists()
    clear_state(tmp_path, os.getpid())
    assert not (tmp_path / STATE_FILE).exists()


def test_missing_key_is_an_issuer_error(tmp_path: Path) -> None:
    with pytest.raises(IssuerError, match="start chatbot-local first"):
        read_key(tmp_path)
