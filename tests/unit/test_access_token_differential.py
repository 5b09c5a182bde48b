"""Our fast parser never accepts what PyJWT's own strict ``jwt.decode`` refuses (rule 1).

The verifier parses the compact serialization itself (for speed) and uses PyJWT for the keys and
the signature. These properties pin the two together: over generated headers and claims (valid and
invalid values for every registered claim), anything ``AccessTokenVerifier`` accepts is also accepted
by ``jwt.decode`` configured strictly, and well-formed tokens are accepted by both.
"""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.tokens import AUDIENCE, ISSUER, KID, FakeIssuer, offline_verifier, rs256_compact

from chatbot_security.identity.oidc import LEEWAY_SECONDS, AccessTokenVerifier
from chatbot_security.identity.token_errors import TokenRejected

ISSUER_KEYS = FakeIssuer()
NOW = int(time.time())
MISSING = object()


def _mostly(valid: st.SearchStrategy[Any], *invalid: Any) -> st.SearchStrategy[Any]:
    """The valid value about six times in seven, otherwise one of the invalid ones."""
    return st.one_of(*[valid] * 6, st.sampled_from(invalid))


_past = st.integers(min_value=NOW - 7200, max_value=NOW)
_dates_invalid = (str(NOW), True, None, MISSING, NOW + 3600, float(NOW + 3600), NOW + LEEWAY_SECONDS - 5)
_claims = st.fixed_dictionaries(
    {
        "exp": _mostly(
            st.one_of(st.integers(min_value=NOW + 61, max_value=NOW + 86400), st.floats(NOW + 61, NOW + 86400)),
            str(NOW + 600), True, None, MISSING, NOW - 3600, float(NOW - 59), NOW - 61,
        ),
        "nbf": _mostly(st.one_of(_past, st.just(MISSING)), *_dates_invalid),
        "iat": _mostly(st.one_of(_past, st.just(MISSING)), *_dates_invalid),
        "iss": _mostly(st.just(ISSUER), ISSUER + "/", "https://evil.example.test", 7, MISSING),
        "aud": _mostly(st.sampled_from([AUDIENCE, [AUDIENCE], ["x", AUDIENCE]]), [AUDIENCE, 7], "other", [], MISSING),
        "client_id": _mostly(st.sampled_from([AUDIENCE, MISSING]), "other", 7),
        "token_use": _mostly(st.sampled_from(["access", MISSING]), "id", 7),
        "sub": _mostly(st.just("alice"), "", 7, MISSING, None),
        "nonce": _mostly(st.just(MISSING), "n"),
    }
)  # fmt: skip
_headers = st.fixed_dictionaries(
    {
        "alg": _mostly(st.just("RS256"), "none", "HS256", "PS256", MISSING, 7),
        "kid": _mostly(st.just(KID), "other", MISSING, 7),
        "typ": _mostly(st.sampled_from(["JWT", "at+jwt", MISSING]), "logout+jwt", 7),
        "x5t": st.sampled_from([KID, MISSING]),
        "jku": _mostly(st.just(MISSING), "https://evil.example.test"),
    }
)


def present(document: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in document.items() if value is not MISSING}


@pytest.fixture(scope="module")
def verifier() -> AccessTokenVerifier:
    return offline_verifier(ISSUER_KEYS)


def ours(verifier: AccessTokenVerifier, token: str) -> bool:
    try:
        verifier.verify(token)
    except TokenRejected:
        return False
    return True


def pyjwt_strict(token: str, claims: dict[str, Any]) -> bool:
    key = jwt.PyJWK(ISSUER_KEYS.jwk())
    try:
        jwt.decode(
            token,
            key=key,
            algorithms=["RS256"],
            issuer=ISSUER,
            audience=AUDIENCE if "aud" in claims else None,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "iss", "sub"], "verify_aud": "aud" in claims, "strict_aud": False},
        )
    except (jwt.PyJWTError, TypeError, ValueError):
        return False
    return True


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=_headers, claims=_claims)
def test_nothing_we_accept_is_refused_by_a_strict_pyjwt_decode(
    verifier: AccessTokenVerifier, header: dict[str, Any], claims: dict[str, Any]
) -> None:
    header, claims = present(header), present(claims)
    token = rs256_compact(header, claims, ISSUER_KEYS.key)
    if ours(verifier, token):
        assert pyjwt_strict(token, claims)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lifetime=st.integers(min_value=61, max_value=86400),
    typ=st.sampled_from(["JWT", "at+jwt", MISSING]),
    cognito=st.booleans(),
)
def test_well_formed_access_tokens_are_accepted_by_both(
    verifier: AccessTokenVerifier, lifetime: int, typ: Any, cognito: bool
) -> None:
    now = int(time.time())
    shape = {"client_id": AUDIENCE, "token_use": "access"} if cognito else {"aud": AUDIENCE}
    claims = {"iss": ISSUER, "sub": "alice", "iat": now, "exp": now + lifetime, **shape}
    token = rs256_compact(present({"alg": "RS256", "kid": KID, "typ": typ}), claims, ISSUER_KEYS.key)
    assert ours(verifier, token)
    assert pyjwt_strict(token, claims)
