"""The attack catalogue of issue 3: every way a caller might try to get past the authorizer.

Each attack is built once here and run three times: against the verifier (tests/unit), against the
authorizer handler in process (tests/integration/test_authorizer_attacks.py) and through the running
local API (tests/local/test_local_api_attacks.py). Every one must be denied, for the stated reason,
without the authorizer raising and without any of the token's text reaching a log.

Attacks that the authorizer lets through on purpose because their target is per-session (a valid
anonymous token used on another session) are not here: the chat function answers those (404), and
their tests say so by name.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import rsa

from support.tokens import (
    FakeIssuer,
    hs256_compact,
    non_canonical_signature,
    rs256_compact,
    unsigned_token,
)

SESSIONS = "POST /v1/sessions"
OWN_SESSION = "GET /v1/sessions/{session_id}"
ADMIN = "DELETE /v1/admin/users/{subject}"
ADMIN_TARGET = "user-bob"
_FOREIGN_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@dataclass(frozen=True)
class SessionGrant:
    """A genuine anonymous session and its token, as POST /v1/anonymous-sessions returned them."""

    session_id: str
    token: str


@dataclass(frozen=True)
class Target:
    """What the attacker holds: a trusted issuer's keys (for the shapes) and a way to get a real session."""

    issuer: FakeIssuer
    new_session: Callable[[], SessionGrant]


@dataclass(frozen=True)
class Attack:
    id: str
    # Returns the full Authorization header value.
    authorization: Callable[[Target], str]
    # The authorizer's deny reason (as logged and counted).
    reason: str
    route: str = SESSIONS

    def path_parameters(self, grant_session: str | None = None) -> dict[str, str]:
        if self.route == ADMIN:
            return {"subject": ADMIN_TARGET}
        if "{session_id}" in self.route:
            return {"session_id": grant_session or str(uuid.uuid4())}
        return {}


def bearer(token: str) -> str:
    return f"Bearer {token}"


def _now() -> int:
    return int(time.time())


def _header(issuer: FakeIssuer, **overrides: object) -> dict[str, object]:
    return {"alg": "RS256", "kid": issuer.kid, "typ": "JWT", **overrides}


def _with_header(**overrides: object) -> Callable[[Target], str]:
    def build(target: Target) -> str:
        issuer = target.issuer
        return bearer(rs256_compact(_header(issuer, **overrides), issuer.claims(), issuer.key))

    return build


def _with_claims(**overrides: object) -> Callable[[Target], str]:
    return lambda target: bearer(target.issuer.token(**overrides))


def _unsigned(alg: str) -> Callable[[Target], str]:
    return lambda target: bearer(unsigned_token({"alg": alg, "kid": target.issuer.kid}, target.issuer.claims()))


def _hs256_with_public_key(target: Target) -> str:
    issuer = target.issuer
    return bearer(
        hs256_compact({"alg": "HS256", "kid": issuer.kid, "typ": "JWT"}, issuer.claims(), issuer.public_pem())
    )


def _session_tamper(change: Callable[[SessionGrant], str]) -> Callable[[Target], str]:
    return lambda target: bearer(change(target.new_session()))


def _flip_mac(grant: SessionGrant) -> str:
    head, _, mac = grant.token.rpartition(".")
    return f"{head}.{('B' if mac[0] == 'A' else 'A')}{mac[1:]}"


def _other_session_id(grant: SessionGrant) -> str:
    return grant.token.replace(grant.session_id, str(uuid.uuid4()))


def _extended_expiry(grant: SessionGrant) -> str:
    prefix, session_id, expires_at, mac = grant.token.split(".")
    return f"{prefix}.{session_id}.{int(expires_at) + 86400:010d}.{mac}"


def _truncated_mac(grant: SessionGrant) -> str:
    return grant.token[:-1]


def _session_as_jwt_prefix(grant: SessionGrant) -> str:
    return grant.token.replace("cs1.", "cs2.", 1)


def _session_token_as_hs256_jwt(target: Target) -> str:
    # A JWS "signed" with the session token's MAC as the key: never an access token.
    grant = target.new_session()
    return bearer(
        hs256_compact({"alg": "HS256", "kid": target.issuer.kid}, target.issuer.claims(), grant.token.encode())
    )


ATTACKS: tuple[Attack, ...] = (
    # -- algorithm confusion --------------------------------------------------------------------
    Attack("alg-none", _unsigned("none"), "algorithm"),
    Attack("alg-None", _unsigned("None"), "algorithm"),
    Attack("alg-NONE", _unsigned("NONE"), "algorithm"),
    Attack(
        "alg-missing",
        lambda t: bearer(rs256_compact({"kid": t.issuer.kid}, t.issuer.claims(), t.issuer.key)),
        "algorithm",
    ),
    Attack("hs256-signed-with-the-public-key", _hs256_with_public_key, "algorithm"),
    Attack("ps256-not-in-the-allowlist", _with_header(alg="PS256"), "algorithm"),
    Attack(
        "signed-by-another-key-under-a-known-kid", lambda t: bearer(t.issuer.token_with(key=_FOREIGN_KEY)), "signature"
    ),
    # -- kid --------------------------------------------------------------------------------------
    Attack("unknown-kid", _with_header(kid="kid-nobody-published"), "unknown_kid"),
    Attack("kid-missing", lambda t: bearer(rs256_compact({"alg": "RS256"}, t.issuer.claims(), t.issuer.key)), "kid"),
    Attack("kid-not-a-string", _with_header(kid=7), "kid"),
    Attack("kid-path-traversal", _with_header(kid="../../../../../../etc/passwd"), "kid"),
    Attack("kid-sql-injection", _with_header(kid="x' OR '1'='1' --"), "kid"),
    Attack("kid-crlf-injection", _with_header(kid="key\r\nX-Injected: yes"), "kid"),
    Attack("kid-4kb", _with_header(kid="k" * 4096), "malformed"),
    # -- headers that carry keys or change the rules ----------------------------------------------
    Attack("jku-header", _with_header(jku="https://evil.example.test/jwks.json"), "forbidden_header"),
    Attack("x5u-header", _with_header(x5u="https://evil.example.test/cert.pem"), "forbidden_header"),
    Attack("jwk-header", _with_header(jwk=FakeIssuer(key=_FOREIGN_KEY).jwk()), "forbidden_header"),
    Attack("x5c-header", _with_header(x5c=["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]), "forbidden_header"),
    Attack(
        "unknown-crit", _with_header(crit=["urn:example:unknown"], **{"urn:example:unknown": True}), "forbidden_header"
    ),
    Attack("b64-false", _with_header(b64=False), "forbidden_header"),
    Attack("typ-logout-token", _with_header(typ="logout+jwt"), "token_type"),
    Attack(
        "duplicate-alg-in-header",
        lambda t: bearer(
            rs256_compact(f'{{"alg":"none","alg":"RS256","kid":"{t.issuer.kid}"}}', t.issuer.claims(), t.issuer.key)
        ),
        "malformed",
    ),
    # -- time -------------------------------------------------------------------------------------
    Attack(
        "expired", lambda t: bearer(t.issuer.token(iat=_now() - 7200, nbf=_now() - 7200, exp=_now() - 3600)), "expired"
    ),
    Attack("nbf-in-the-future", lambda t: bearer(t.issuer.token(nbf=_now() + 600, exp=_now() + 1200)), "not_yet_valid"),
    Attack("iat-in-the-future", lambda t: bearer(t.issuer.token(iat=_now() + 600, exp=_now() + 1200)), "not_yet_valid"),
    Attack("exp-missing", _with_claims(exp=None), "missing_claim"),
    Attack("exp-as-a-string", lambda t: bearer(t.issuer.token(exp=str(_now() + 600))), "invalid_claim"),
    # -- who issued it, for whom, about whom --------------------------------------------------------
    Attack("sub-missing", _with_claims(sub=None), "missing_claim"),
    Attack("sub-not-a-string", _with_claims(sub=12345), "sub"),
    Attack("wrong-issuer", _with_claims(iss="https://evil.example.test"), "issuer"),
    Attack("trailing-slash-issuer", lambda t: bearer(t.issuer.token(iss=t.issuer.issuer + "/")), "issuer"),
    Attack("wrong-audience", _with_claims(aud="another-api"), "audience"),
    Attack("cognito-token-of-another-app-client", _with_claims(aud=None, client_id="another-client"), "audience"),
    Attack(
        "no-aud-outside-the-cognito-shape",
        lambda t: bearer(t.issuer.token(aud=None, token_use=None, client_id=t.issuer.audience)),
        "audience",
    ),
    Attack("cognito-id-token", lambda t: bearer(t.issuer.token(token_use="id", at_hash="x" * 22)), "token_use"),
    Attack("oidc-id-token-with-nonce", _with_claims(token_use=None, nonce="n-0S6_WzA2Mj"), "id_token"),
    Attack("oidc-id-token-with-at-hash", _with_claims(token_use=None, at_hash="77QmUPtjPfzWtF2AnpK9RQ"), "id_token"),
    Attack(
        "roles-claim-as-a-string",
        _with_claims(**{"cognito:groups": "admin", "amr": ["pwd", "mfa"]}),
        "missing_role",
        route=ADMIN,
    ),
    Attack(
        "admin-without-mfa", _with_claims(**{"cognito:groups": ["admin"], "amr": ["pwd"]}), "missing_mfa", route=ADMIN
    ),
    # -- machine clients (OAuth client credentials): a trusted issuer's token with no person behind it
    Attack(
        "auth0-client-credentials", _with_claims(gty="client-credentials", sub="k3bO1a2Z@clients"), "client_credentials"
    ),
    Attack("auth0-clients-subject", _with_claims(sub="k3bO1a2Z@clients"), "client_credentials"),
    Attack(
        "okta-client-credentials",
        _with_claims(sub="0oa1b2c3d4e5F6g7H8i9", cid="0oa1b2c3d4e5F6g7H8i9"),
        "client_credentials",
    ),
    Attack(
        "cognito-client-credentials",
        lambda t: bearer(t.issuer.token(aud=None, client_id=t.issuer.audience, sub=t.issuer.audience)),
        "client_credentials",
    ),
    Attack("entra-id-app-only-token", _with_claims(idtyp="app"), "client_credentials"),
    Attack(
        "keycloak-service-account", _with_claims(preferred_username="service-account-backend"), "client_credentials"
    ),
    Attack(
        "machine-token-on-the-admin-route",
        _with_claims(gty="client-credentials", **{"cognito:groups": ["admin"], "amr": ["mfa"]}),
        "client_credentials",
        route=ADMIN,
    ),
    # -- shape ------------------------------------------------------------------------------------
    Attack("token-over-8-kib", _with_claims(padding="p" * 9000), "too_large"),
    Attack("stripped-signature", lambda t: bearer(t.issuer.token().rpartition(".")[0] + "."), "signature"),
    Attack("truncated-signature", lambda t: bearer(t.issuer.token()[:-2]), "signature"),
    Attack("non-canonical-signature", lambda t: bearer(non_canonical_signature(t.issuer.token())), "malformed"),
    Attack("five-segments", lambda t: bearer(t.issuer.token() + ".e30.e30"), "malformed"),
    Attack("two-segments", lambda t: bearer(t.issuer.token().rpartition(".")[0]), "malformed"),
    Attack("garbage", lambda t: bearer("garbage!@#$%^&*()"), "malformed"),
    Attack("not-bearer", lambda t: f"Basic {t.issuer.token()}", "malformed"),
    Attack("two-tokens", lambda t: bearer(t.issuer.token() + ", " + t.issuer.token()), "malformed"),
    Attack("header-of-10-kb", lambda t: bearer("A" * 10_240), "too_large"),
    # -- session tokens ---------------------------------------------------------------------------
    Attack("session-token-with-a-flipped-mac", _session_tamper(_flip_mac), "signature", OWN_SESSION),
    Attack("session-token-moved-to-another-session", _session_tamper(_other_session_id), "signature", OWN_SESSION),
    Attack("session-token-with-a-later-expiry", _session_tamper(_extended_expiry), "signature", OWN_SESSION),
    Attack("session-token-truncated", _session_tamper(_truncated_mac), "malformed", OWN_SESSION),
    Attack("session-token-with-another-type", _session_tamper(_session_as_jwt_prefix), "malformed", OWN_SESSION),
    Attack("session-token-on-an-oidc-only-route", lambda t: bearer(t.new_session().token), "route_not_allowed"),
    Attack("session-token-on-the-admin-route", lambda t: bearer(t.new_session().token), "route_not_allowed", ADMIN),
    Attack("jwt-signed-with-a-session-token", _session_token_as_hs256_jwt, "algorithm", OWN_SESSION),
)

ATTACK_IDS = [attack.id for attack in ATTACKS]
