"""Rule 1: strict verification of OIDC access tokens. Each attack must be denied."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from support.tokens import AUDIENCE, ISSUER, KID, FakeIssuer, b64url, unsigned_token

from chatbot_security.jwks import JwksCache
from chatbot_security.oidc import AccessTokenVerifier
from chatbot_security.settings import Settings
from chatbot_security.token_errors import TokenRejected


@pytest.fixture(scope="module")
def issuer() -> FakeIssuer:
    return FakeIssuer()


def make_verifier(issuer: FakeIssuer, **config: Any) -> AccessTokenVerifier:
    env = {"OIDC_ISSUER": ISSUER, "OIDC_AUDIENCE": AUDIENCE, **config}
    settings = Settings.model_validate(env)

    def fetch(url: str, timeout: float) -> dict[str, Any]:
        return issuer.discovery() if url.endswith("openid-configuration") else issuer.jwks()

    return AccessTokenVerifier(settings, JwksCache(settings, fetch=fetch))


def rejection(verifier: AccessTokenVerifier, token: str) -> str:
    with pytest.raises(TokenRejected) as caught:
        verifier.verify(token)
    return caught.value.reason


def test_valid_access_token_yields_the_user(issuer: FakeIssuer) -> None:
    principal = make_verifier(issuer).verify(issuer.token(sub="alice", **{"cognito:groups": ["admin"]}, amr=["mfa"]))
    assert principal.kind == "user"
    assert principal.subject == "alice"
    assert principal.issuer == ISSUER
    assert principal.roles == ("admin",)
    assert principal.mfa is True


def test_cognito_access_token_matches_client_id_instead_of_aud(issuer: FakeIssuer) -> None:
    token = issuer.token(aud=None, client_id=AUDIENCE)
    assert make_verifier(issuer).verify(token).subject == "user-alice"


def test_token_signed_by_another_key_under_a_known_kid_is_denied(issuer: FakeIssuer) -> None:
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert rejection(make_verifier(issuer), issuer.token(key=forger)) == "signature"


def test_expired_token_is_denied(issuer: FakeIssuer) -> None:
    past = int(time.time()) - 3600
    assert rejection(make_verifier(issuer), issuer.token(iat=past - 600, nbf=past - 600, exp=past)) == "expired"


def test_leeway_is_at_most_sixty_seconds(issuer: FakeIssuer) -> None:
    now = int(time.time())
    verifier = make_verifier(issuer)
    assert verifier.verify(issuer.token(exp=now - 30)).subject  # inside the leeway
    assert rejection(verifier, issuer.token(exp=now - 90)) == "expired"


def test_token_not_yet_valid_is_denied(issuer: FakeIssuer) -> None:
    future = int(time.time()) + 600
    assert rejection(make_verifier(issuer), issuer.token(nbf=future)) == "not_yet_valid"
    assert rejection(make_verifier(issuer), issuer.token(iat=future)) == "not_yet_valid"


def test_wrong_issuer_is_denied(issuer: FakeIssuer) -> None:
    verifier = make_verifier(issuer)
    assert rejection(verifier, issuer.token(iss="https://evil.example.test")) == "issuer"
    assert rejection(verifier, issuer.token(iss=ISSUER + "/")) == "issuer"


def test_wrong_audience_is_denied(issuer: FakeIssuer) -> None:
    verifier = make_verifier(issuer)
    assert rejection(verifier, issuer.token(aud="another-client")) == "audience"
    assert rejection(verifier, issuer.token(aud=None, client_id="another-client")) == "audience"
    assert rejection(verifier, issuer.token(aud=None)) == "audience"


def test_alg_none_is_denied(issuer: FakeIssuer) -> None:
    for alg in ("none", "None", "NONE"):
        token = unsigned_token({"alg": alg, "kid": KID, "typ": "JWT"}, issuer.claims())
        assert rejection(make_verifier(issuer), token) == "algorithm"


def test_hs256_signed_with_the_public_key_is_denied(issuer: FakeIssuer) -> None:
    header = {"alg": "HS256", "kid": KID, "typ": "JWT"}
    head = b64url(json.dumps(header).encode())
    body = b64url(json.dumps(issuer.claims()).encode())
    signature = hmac.digest(issuer.public_pem(), f"{head}.{body}".encode(), hashlib.sha256)
    assert rejection(make_verifier(issuer), f"{head}.{body}.{b64url(signature)}") == "algorithm"


@pytest.mark.parametrize("header", ["jku", "x5u", "jwk", "x5c", "crit"])
def test_key_carrying_and_critical_headers_are_denied(issuer: FakeIssuer, header: str) -> None:
    value: Any = {"jku": "https://evil.example.test/jwks", "x5u": "https://evil.example.test/cert",
                  "jwk": issuer.jwk(), "x5c": ["MIIB"], "crit": ["exp"]}[header]  # fmt: skip
    # PyJWT itself already refuses unknown `crit` extensions while parsing the header.
    assert rejection(make_verifier(issuer), issuer.token(headers={header: value})) in {"forbidden_header", "malformed"}


def test_missing_exp_or_sub_is_denied(issuer: FakeIssuer) -> None:
    verifier = make_verifier(issuer)
    assert rejection(verifier, issuer.token(exp=None)) == "missing_claim"
    assert rejection(verifier, issuer.token(sub=None)) == "missing_claim"


def test_id_token_is_not_an_access_token(issuer: FakeIssuer) -> None:
    assert rejection(make_verifier(issuer), issuer.token(token_use="id")) == "token_use"


def test_roles_claim_that_is_not_a_list_of_strings_grants_nothing(issuer: FakeIssuer) -> None:
    verifier = make_verifier(issuer)
    assert verifier.verify(issuer.token(**{"cognito:groups": "admin"})).roles == ()
    assert verifier.verify(issuer.token(**{"cognito:groups": ["admin", 7]})).roles == ()


def test_roles_come_from_the_configured_claim(issuer: FakeIssuer) -> None:
    verifier = make_verifier(issuer, OIDC_ROLES_CLAIM="roles")
    assert verifier.verify(issuer.token(roles=["admin"], **{"cognito:groups": ["other"]})).roles == ("admin",)


def test_oversized_token_is_denied_before_parsing(issuer: FakeIssuer) -> None:
    assert rejection(make_verifier(issuer), issuer.token(padding="x" * 9000)) == "too_large"


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b", "a.b.c.d.e", "eyJhbGciOiJSUzI1NiJ9..", "....", "."],
)
def test_malformed_tokens_are_denied(issuer: FakeIssuer, token: str) -> None:
    assert rejection(make_verifier(issuer), token) in {"malformed", "algorithm", "kid"}


def test_stripped_signature_is_denied(issuer: FakeIssuer) -> None:
    head, body, _ = issuer.token().split(".")
    assert rejection(make_verifier(issuer), f"{head}.{body}.") == "signature"


def test_unknown_kid_is_denied(issuer: FakeIssuer) -> None:
    assert rejection(make_verifier(issuer), issuer.token(headers={"kid": "unknown"})) == "unknown_kid"


def test_oidc_off_denies_every_access_token(issuer: FakeIssuer) -> None:
    settings = Settings.model_validate({})
    verifier = AccessTokenVerifier(settings, JwksCache(settings, fetch=lambda url, timeout: {}))
    assert rejection(verifier, issuer.token()) == "oidc_disabled"
