"""Strict verification of OIDC / OAuth2 access tokens (DESIGN.md section 6, rule 1).

PyJWT does the signature and registered-claim checks; this module adds what a generic JWT library
leaves to the caller: header hygiene (algorithm allowlist, no key-carrying or critical headers),
audience-or-client_id matching for Cognito and generic issuers, ``token_use`` and a strict roles claim.
"""

from __future__ import annotations

from typing import Any

import jwt

from chatbot_security.jwks import JwksCache
from chatbot_security.principal import Principal
from chatbot_security.settings import OidcSettings
from chatbot_security.token_errors import TokenRejected

MAX_TOKEN_BYTES = 8 * 1024
LEEWAY_SECONDS = 60
MAX_KID_LENGTH = 256
FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit"})


class AccessTokenVerifier:
    def __init__(self, settings: OidcSettings, jwks: JwksCache) -> None:
        self._settings = settings
        self._jwks = jwks

    def verify(self, token: str) -> Principal:
        settings = self._settings
        if settings.oidc_issuer is None:
            raise TokenRejected("oidc_disabled")
        if not settings.oidc_audience:
            raise TokenRejected("audience_not_configured")
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenRejected("too_large")
        if token.count(".") != 2:
            raise TokenRejected("malformed")
        header = _header(token)
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in settings.oidc_algorithms:
            raise TokenRejected("algorithm")
        if FORBIDDEN_HEADERS & header.keys():
            raise TokenRejected("forbidden_header")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > MAX_KID_LENGTH:
            raise TokenRejected("kid")
        key = self._jwks.key_for(kid)
        if key is None:
            raise TokenRejected("unknown_kid")
        if key.algorithm_name != algorithm:
            raise TokenRejected("algorithm")
        claims = _decode(token, key, algorithm, settings.oidc_issuer)
        _check_audience(claims, settings.oidc_audience)
        if "token_use" in claims and claims["token_use"] != "access":  # noqa: S105 - a claim, not a password
            raise TokenRejected("token_use")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > 512:
            raise TokenRejected("sub")
        return Principal(
            kind="user",
            subject=subject,
            issuer=settings.oidc_issuer,
            roles=_roles(claims.get(settings.oidc_roles_claim)),
            mfa=_has_mfa(claims.get("amr")),
        )


def _header(token: str) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as error:
        raise TokenRejected("malformed") from error
    if not isinstance(header, dict):
        raise TokenRejected("malformed")
    return header


def _decode(token: str, key: jwt.PyJWK, algorithm: str, issuer: str) -> dict[str, Any]:
    try:
        claims = jwt.decode(
            token,
            key=key,
            algorithms=[algorithm],
            issuer=issuer,
            leeway=LEEWAY_SECONDS,
            options={
                "require": ["exp", "iss", "sub"],
                "verify_signature": True,
                "verify_exp": True,
                "verify_nbf": True,
                "verify_iat": True,
                "verify_iss": True,
                "verify_aud": False,  # checked below: `aud` or Cognito's `client_id`
                "strict_aud": False,
            },
        )
    except jwt.ExpiredSignatureError as error:
        raise TokenRejected("expired") from error
    except jwt.ImmatureSignatureError as error:
        raise TokenRejected("not_yet_valid") from error
    except jwt.InvalidIssuerError as error:
        raise TokenRejected("issuer") from error
    except jwt.MissingRequiredClaimError as error:
        raise TokenRejected("missing_claim") from error
    except jwt.InvalidSignatureError as error:
        raise TokenRejected("signature") from error
    except (jwt.PyJWTError, ValueError, TypeError) as error:
        raise TokenRejected("invalid") from error
    return claims


def _check_audience(claims: dict[str, Any], accepted: tuple[str, ...]) -> None:
    if "aud" in claims:
        audience = claims["aud"]
        values = [audience] if isinstance(audience, str) else audience
        if not isinstance(values, list) or not any(isinstance(v, str) and v in accepted for v in values):
            raise TokenRejected("audience")
        return
    client_id = claims.get("client_id")
    if not isinstance(client_id, str) or client_id not in accepted:
        raise TokenRejected("audience")


def _roles(value: object) -> tuple[str, ...]:
    """A roles claim grants something only when it is a list of strings."""
    if not isinstance(value, list) or not all(isinstance(role, str) for role in value):
        return ()
    return tuple(value[:100])


def _has_mfa(amr: object) -> bool:
    return isinstance(amr, list) and "mfa" in amr
