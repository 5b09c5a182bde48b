"""Rule 1: strict verification of OIDC access tokens. Each attack must be denied."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from support.tokens import (
    AUDIENCE,
    ISSUER,
    KID,
    FakeIssuer,
    b64url,
    non_canonical_signature,
    rs256_compact,
    unsigned_token,
)

from chatbot_security.identity.jwks import JwksCache
from chatbot_security.identity.oidc import AccessTokenVerifier
from chatbot_security.identity.token_errors import TokenRejected
from chatbot_security.platform.settings import Settings


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
    assert rejection(make_verifier(issuer), issuer.token_with(key=forger)) == "signature"


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
    assert rejection(make_verifier(issuer), issuer.token_with(headers={header: value})) == "forbidden_header"


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
    assert rejection(make_verifier(issuer), issuer.token_with(headers={"kid": "unknown"})) == "unknown_kid"


def test_oidc_off_denies_every_access_token(issuer: FakeIssuer) -> None:
    settings = Settings.model_validate({})
    verifier = AccessTokenVerifier(settings, JwksCache(settings, fetch=lambda url, timeout: {}))
    assert rejection(verifier, issuer.token()) == "oidc_disabled"


# -- header hygiene ---------------------------------------------------------------------------------
class CountingFetch:
    def __init__(self, issuer: FakeIssuer) -> None:
        self.issuer = issuer
        self.calls = 0

    def __call__(self, url: str, timeout: float) -> dict[str, Any]:
        self.calls += 1
        return self.issuer.discovery() if url.endswith("openid-configuration") else self.issuer.jwks()


@pytest.mark.parametrize(
    "kid",
    ["../../../../etc/passwd", "x' OR '1'='1' --", "key\r\nX-Injected: yes", "k" * 129, "", "a b", "kid\n", "ключ"],
    ids=["path-traversal", "sql", "crlf", "too-long", "empty", "space", "trailing-newline", "non-ascii"],
)
def test_malformed_kid_is_refused_before_any_key_lookup(issuer: FakeIssuer, kid: str) -> None:
    settings = Settings.model_validate({"OIDC_ISSUER": ISSUER, "OIDC_AUDIENCE": AUDIENCE})
    fetch = CountingFetch(issuer)
    verifier = AccessTokenVerifier(settings, JwksCache(settings, fetch=fetch))
    assert rejection(verifier, issuer.token_with(headers={"kid": kid})) == "kid"
    assert fetch.calls == 0


def test_a_4kb_kid_is_refused_by_the_header_size_cap(issuer: FakeIssuer) -> None:
    assert rejection(make_verifier(issuer), issuer.token_with(headers={"kid": "k" * 4096})) == "malformed"


def test_kids_seen_at_real_issuers_are_well_formed() -> None:
    from chatbot_security.identity.jwks import is_valid_kid

    for kid in ("1234example=", "abcd+/efgh==", "nOo3ZDrODXEK1jKWhXslHR_KXEg", "2024-05-01.rsa", "a1b2c3d4" * 5):
        assert is_valid_kid(kid), kid


def test_duplicate_header_names_are_refused(issuer: FakeIssuer) -> None:
    header = f'{{"alg":"none","alg":"RS256","kid":"{KID}"}}'
    assert rejection(make_verifier(issuer), rs256_compact(header, issuer.claims(), issuer.key)) == "malformed"


def test_b64_false_header_is_refused(issuer: FakeIssuer) -> None:
    token = rs256_compact({"alg": "RS256", "kid": KID, "b64": False}, issuer.claims(), issuer.key)
    assert rejection(make_verifier(issuer), token) == "forbidden_header"


def test_header_over_one_kib_is_refused(issuer: FakeIssuer) -> None:
    assert rejection(make_verifier(issuer), issuer.token_with(headers={"x-padding": "p" * 800})) == "malformed"


@pytest.mark.parametrize("typ", ["logout+jwt", "id_token+jwt", "secevent+jwt", "JOSE", "dpop+jwt", 7])
def test_typ_other_than_jwt_or_at_jwt_is_refused(issuer: FakeIssuer, typ: Any) -> None:
    assert (
        rejection(
            make_verifier(issuer), rs256_compact({"alg": "RS256", "kid": KID, "typ": typ}, issuer.claims(), issuer.key)
        )
        == "token_type"
    )


@pytest.mark.parametrize("typ", ["JWT", "jwt", "at+jwt", "application/at+jwt", None])
def test_access_token_typ_values_are_accepted(issuer: FakeIssuer, typ: str | None) -> None:
    header = {"alg": "RS256", "kid": KID, **({"typ": typ} if typ else {})}
    assert make_verifier(issuer).verify(rs256_compact(header, issuer.claims(), issuer.key)).subject == "user-alice"


def test_non_canonical_base64_signature_is_refused(issuer: FakeIssuer) -> None:
    assert rejection(make_verifier(issuer), non_canonical_signature(issuer.token())) == "malformed"


def test_payload_is_not_read_before_the_signature_is_verified(issuer: FakeIssuer) -> None:
    # A payload that is not even JSON, under a signature that does not match: the signature decides.
    head = b64url(json.dumps({"alg": "RS256", "kid": KID}).encode())
    token = f"{head}.{b64url(b'not json at all')}.{b64url(b'x' * 256)}"
    assert rejection(make_verifier(issuer), token) == "signature"


def test_token_with_an_alg_other_than_its_keys_is_refused(issuer: FakeIssuer) -> None:
    verifier = make_verifier(issuer, OIDC_ALGORITHMS="RS256,PS256")
    assert rejection(verifier, rs256_compact({"alg": "PS256", "kid": KID}, issuer.claims(), issuer.key)) == "algorithm"


# -- claims -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("exp", ["9999999999", True, [9999999999], {"n": 1}], ids=["string", "bool", "list", "object"])
def test_numeric_dates_must_be_json_numbers(issuer: FakeIssuer, exp: Any) -> None:
    assert rejection(make_verifier(issuer), issuer.token(exp=exp)) == "invalid_claim"


def test_non_finite_numeric_dates_are_refused(issuer: FakeIssuer) -> None:
    verifier = make_verifier(issuer)
    claims = json.dumps(issuer.claims()).replace('"exp": ', '"exp": 1e999, "x": ')
    assert rejection(verifier, rs256_compact({"alg": "RS256", "kid": KID}, claims, issuer.key)) == "invalid_claim"
    nan = json.dumps(issuer.claims()).replace('"exp": ', '"exp": NaN, "x": ')
    assert rejection(verifier, rs256_compact({"alg": "RS256", "kid": KID}, nan, issuer.key)) == "malformed"


@pytest.mark.parametrize("claim", ["nonce", "at_hash", "c_hash", "s_hash"])
def test_id_token_only_claims_mark_an_id_token(issuer: FakeIssuer, claim: str) -> None:
    assert rejection(make_verifier(issuer), issuer.token(token_use=None, **{claim: "abc"})) == "id_token"


def test_token_without_aud_must_have_the_cognito_access_token_shape(issuer: FakeIssuer) -> None:
    verifier = make_verifier(issuer)
    assert verifier.verify(issuer.token(aud=None, client_id=AUDIENCE, token_use="access")).subject
    assert rejection(verifier, issuer.token(aud=None, client_id=AUDIENCE, token_use=None)) == "audience"


@pytest.mark.parametrize("aud", [[], [AUDIENCE, 7], 7, {"aud": AUDIENCE}], ids=["empty", "mixed", "number", "object"])
def test_malformed_aud_is_refused(issuer: FakeIssuer, aud: Any) -> None:
    assert rejection(make_verifier(issuer), issuer.token(aud=aud)) == "audience"


def test_one_of_several_configured_audiences_is_enough(issuer: FakeIssuer) -> None:
    verifier = make_verifier(issuer, OIDC_AUDIENCE=f"api://other, {AUDIENCE}")
    assert verifier.verify(issuer.token(aud=["something-else", AUDIENCE])).subject == "user-alice"


def test_missing_or_wrong_type_issuer_is_denied(issuer: FakeIssuer) -> None:
    verifier = make_verifier(issuer)
    assert rejection(verifier, issuer.token(iss=None)) == "missing_claim"
    as_list = rs256_compact({"alg": "RS256", "kid": KID}, issuer.claims(iss=[ISSUER]), issuer.key)
    assert rejection(verifier, as_list) == "issuer"


@pytest.mark.parametrize("sub", ["", 7, "s" * 513], ids=["empty", "number", "too-long"])
def test_sub_must_be_a_bounded_string(issuer: FakeIssuer, sub: Any) -> None:
    assert rejection(make_verifier(issuer), issuer.token(sub=sub)) == "sub"


@pytest.mark.parametrize(
    "roles",
    [["admin", ""], ["r" * 257], ["admin"] * 101, {"admin": True}, None],
    ids=["empty-role", "too-long-role", "too-many", "object", "null"],
)
def test_roles_claim_out_of_bounds_grants_nothing(issuer: FakeIssuer, roles: Any) -> None:
    assert make_verifier(issuer).verify(issuer.token(**{"cognito:groups": roles})).roles == ()


def test_mfa_needs_mfa_in_an_amr_list(issuer: FakeIssuer) -> None:
    verifier = make_verifier(issuer)
    assert verifier.verify(issuer.token(amr=["pwd", "mfa"])).mfa is True
    assert verifier.verify(issuer.token(amr="mfa")).mfa is False
    assert verifier.verify(issuer.token(amr=["pwd"])).mfa is False


def test_principal_carries_the_token_expiry(issuer: FakeIssuer) -> None:
    expires_at = int(time.time()) + 300
    assert make_verifier(issuer).verify(issuer.token(exp=expires_at)).expires_at == expires_at


# -- issuer shapes, by configuration alone ------------------------------------------------------------
def test_generic_oidc_shape_with_aud_and_a_roles_claim(issuer: FakeIssuer) -> None:
    verifier = make_verifier(issuer, OIDC_ROLES_CLAIM="roles")
    header = {"alg": "RS256", "kid": KID, "typ": "at+jwt"}
    claims = issuer.claims(token_use=None, aud=[AUDIENCE], roles=["admin"], client_id="spa-client", scope="chat")
    principal = verifier.verify(rs256_compact(header, claims, issuer.key))
    assert (principal.subject, principal.roles) == ("user-alice", ("admin",))


def test_entra_shape_with_an_x5t_header_and_groups(issuer: FakeIssuer) -> None:
    verifier = make_verifier(issuer, OIDC_ROLES_CLAIM="groups", OIDC_AUDIENCE="api://chatbot")
    header = {"alg": "RS256", "kid": KID, "typ": "JWT", "x5t": KID}
    claims = issuer.claims(token_use=None, aud="api://chatbot", groups=["chat-admins"], ver="2.0", scp="chat")
    assert verifier.verify(rs256_compact(header, claims, issuer.key)).roles == ("chat-admins",)


def test_cognito_shape_with_client_id_and_cognito_groups(issuer: FakeIssuer) -> None:
    claims = {"aud": None, "client_id": AUDIENCE, "token_use": "access", "cognito:groups": ["admin"], "scope": "openid"}
    assert make_verifier(issuer).verify(issuer.token(**claims)).roles == ("admin",)


def test_es256_issuer_works_when_configured() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    numbers = key.public_key().public_numbers()
    jwk = {
        "kty": "EC", "crv": "P-256", "kid": "ec-1", "use": "sig", "alg": "ES256",
        "x": b64url(numbers.x.to_bytes(32, "big")), "y": b64url(numbers.y.to_bytes(32, "big")),
    }  # fmt: skip
    settings = Settings.model_validate({"OIDC_ISSUER": ISSUER, "OIDC_AUDIENCE": AUDIENCE, "OIDC_ALGORITHMS": "ES256"})
    verifier = AccessTokenVerifier(
        settings,
        JwksCache(settings, fetch=lambda url, timeout: {"keys": [jwk]} if "jwks" in url else FakeIssuer().discovery()),
    )
    token = jwt.encode(FakeIssuer().claims(), key, algorithm="ES256", headers={"kid": "ec-1"})
    assert verifier.verify(token).subject == "user-alice"
    assert rejection(verifier, token[:-4] + "AAAA") == "signature"


def test_session_token_is_never_an_access_token(issuer: FakeIssuer) -> None:
    from chatbot_security.identity import session_tokens

    token = session_tokens.issue(session_tokens.derive_key("s"), "0b9f9a52-7c1e-4d4b-9a39-5d1f3a0c2b61", 9_999_999_999)
    assert rejection(make_verifier(issuer), token) == "malformed"


def test_null_numeric_dates_are_refused(issuer: FakeIssuer) -> None:
    # Found by the differential test: a present-but-null `iat` is not "absent".
    for name in ("iat", "nbf", "exp"):
        claims = {**issuer.claims(), name: None}
        token = rs256_compact({"alg": "RS256", "kid": KID}, claims, issuer.key)
        assert rejection(make_verifier(issuer), token) == "invalid_claim"


# -- numeric dates out of any sensible range (a signed token can carry anything) -------------------
@pytest.mark.parametrize("name", ["exp", "iat", "nbf"])
@pytest.mark.parametrize(
    "value",
    [10**400, 2**1024, -(10**400), 1e300, -1, 253402300800],
    ids=["10e400", "2e1024", "minus-10e400", "1e300", "negative", "after-year-9999"],
)
def test_numeric_dates_out_of_bounds_are_denied_cleanly(issuer: FakeIssuer, name: str, value: Any) -> None:
    # Given a token the issuer really signed, whose date is out of range (a huge integer used to
    # raise OverflowError inside the verifier)
    claims = {**issuer.claims(), name: value}
    token = rs256_compact({"alg": "RS256", "kid": KID}, claims, issuer.key)
    # Then it is refused with a reason code, like any other bad claim
    assert rejection(make_verifier(issuer), token) == "invalid_claim"


def test_the_largest_sensible_expiry_is_still_a_number_we_accept(issuer: FakeIssuer) -> None:
    # The bound is the end of year 9999: a far but representable expiry still verifies
    principal = make_verifier(issuer).verify(issuer.token(exp=253402300799))
    assert principal.expires_at == 253402300799


# -- machine (client-credentials) tokens are not users ------------------------------------------
@pytest.mark.parametrize(
    "claims",
    [
        {"gty": "client-credentials", "sub": "k3bO1a2Z@clients"},
        {"sub": "k3bO1a2Z@clients"},
        {"gty": "client-credentials"},
        {"sub": "0oa1b2c3d4e5F6g7H8i9", "cid": "0oa1b2c3d4e5F6g7H8i9"},
        {"aud": None, "client_id": AUDIENCE, "sub": AUDIENCE},
        {"idtyp": "app"},
        {"preferred_username": "service-account-chat-backend"},
    ],
    ids=["auth0", "auth0-sub-only", "auth0-gty-only", "okta", "cognito", "entra-id", "keycloak"],
)
def test_client_credentials_tokens_are_not_users(issuer: FakeIssuer, claims: dict[str, Any]) -> None:
    # Given a token the trusted issuer signed for a machine client, marked as each provider marks it
    token = issuer.token(**claims)
    # Then it is refused: a machine has no person behind it to own sessions
    assert rejection(make_verifier(issuer), token) == "client_credentials"


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "auth0|5f7c8ec7c33c6c004bbafe82", "gty": "password"},
        {"sub": "00u1a2b3c4D5e6F7g8h9", "cid": "0oa1b2c3d4e5F6g7H8i9"},
        {"aud": None, "client_id": AUDIENCE, "sub": "2f6c1d8e-user", "username": "alice"},
        {"aud": None, "client_id": AUDIENCE, "sub": AUDIENCE, "username": AUDIENCE},
        {"idtyp": "user"},
        {"preferred_username": "alice", "sub": "service-account-is-only-a-sub"},
    ],
    ids=[
        "auth0-user",
        "okta-user",
        "cognito-user",
        "cognito-user-named-like-the-client",
        "entra-user",
        "keycloak-user",
    ],
)
def test_user_tokens_of_each_provider_stay_users(issuer: FakeIssuer, claims: dict[str, Any]) -> None:
    assert make_verifier(issuer).verify(issuer.token(**claims)).kind == "user"


def test_a_token_with_only_the_registered_claims_is_a_user(issuer: FakeIssuer) -> None:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 600}
    token = rs256_compact({"alg": "RS256", "kid": KID}, claims, issuer.key)
    assert make_verifier(issuer).verify(token).subject == "alice"


# -- OIDC_REQUIRED_SCOPES -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "claims",
    [
        {"scope": "openid chat:write"},
        {"scope": "chat:write openid profile"},
        {"scp": "chat:write"},
        {"scp": ["openid", "chat:write"]},
        {"scope": ["chat:write"]},
    ],
    ids=["scope-string", "scope-among-others", "entra-scp-string", "okta-scp-list", "scope-list"],
)
def test_a_token_carrying_every_required_scope_is_accepted(issuer: FakeIssuer, claims: dict[str, Any]) -> None:
    verifier = make_verifier(issuer, OIDC_REQUIRED_SCOPES="chat:write")
    assert verifier.verify(issuer.token(**claims)).subject == "user-alice"


@pytest.mark.parametrize(
    "claims",
    [
        {},
        {"scope": "openid profile"},
        {"scope": "chat:writer"},
        {"scope": "chat"},
        {"scope": ["chat:write openid"]},
        {"scp": "chat:write", "scope": 7},
        {"scp": [1, "chat:write"]},
        {"scope": "CHAT:WRITE"},
    ],
    ids=[
        "none",
        "others",
        "longer-name",
        "prefix",
        "list-item-with-a-space",
        "scope-not-a-string",
        "scp-mixed",
        "case",
    ],
)
def test_a_token_without_a_required_scope_is_denied(issuer: FakeIssuer, claims: dict[str, Any]) -> None:
    verifier = make_verifier(issuer, OIDC_REQUIRED_SCOPES="chat:write")
    assert rejection(verifier, issuer.token(**claims)) == "scope"


def test_every_required_scope_must_be_present(issuer: FakeIssuer) -> None:
    verifier = make_verifier(issuer, OIDC_REQUIRED_SCOPES="chat:read  chat:write")
    assert rejection(verifier, issuer.token(scope="chat:read")) == "scope"
    assert verifier.verify(issuer.token(scope="chat:write chat:read")).subject == "user-alice"


def test_no_scope_is_required_by_default(issuer: FakeIssuer) -> None:
    assert make_verifier(issuer).verify(issuer.token()).subject == "user-alice"
