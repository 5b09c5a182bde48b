"""Strict verification of OIDC / OAuth2 access tokens (docs/contract.md section 6, rule 1).

Division of labour, on purpose:

* **PyJWT** (2.15) supplies the cryptography: :class:`jwt.PyJWK` loads each JWKS entry (curve and
  key checks included) and its algorithm object verifies the signature. We never hand-roll RSA or
  ECDSA, and never let the token pick the key or the algorithm family.
* **This module** parses the compact serialization itself, once, and applies a stricter claim
  policy than a generic JWT library: one compiled-regex charset check over the whole token, canonical
  base64url, UTF-8 JSON with no duplicate names and no NaN/Infinity, a header allowlist for ``alg``
  and ``typ``, refused key-carrying headers, a validated ``kid`` looked up *before* any network,
  the signature verified *before* the payload is even decoded, numeric dates that must be bounded numbers,
  exact ``iss``, ``aud`` (or Cognito's ``client_id``), no ID tokens, no client-credentials (machine)
  tokens, every scope of ``OIDC_REQUIRED_SCOPES``, and a roles claim that grants only when it is a list
  of strings.

PyJWT's own ``jwt.decode`` is not on the hot path because it parses the token twice as slowly as
the signature check itself (see docs/authentication.md, "Performance"); a differential test
(``tests/unit/test_access_token_differential.py``) proves that nothing accepted here is refused by
a strictly configured ``jwt.decode``.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chatbot_security.identity.jwks import JwksCache, is_valid_kid
from chatbot_security.identity.principal import (
    EXPIRY_LEEWAY_SECONDS,
    MAX_ROLE_LENGTH,
    MAX_ROLES,
    MAX_SUBJECT_LENGTH,
    Principal,
)
from chatbot_security.identity.token_errors import TokenRejected
from chatbot_security.platform.strict_json import loads_strict

if TYPE_CHECKING:
    from chatbot_security.platform.authorizer_settings import AuthorizerSettings
    from chatbot_security.platform.settings import OidcSettings

MAX_TOKEN_BYTES = 8 * 1024
# A protected header is a handful of short names; 1 KiB of base64url is generous.
MAX_HEADER_CHARS = 1024
LEEWAY_SECONDS = EXPIRY_LEEWAY_SECONDS  # clock skew allowed on exp, nbf and iat
# exp, iat and nbf must lie between the epoch and the end of year 9999 (RFC 3339's last second).
MAX_NUMERIC_DATE = 253402300799
# Headers that carry or point at keys, change how the payload is read, or mark a JWE.
FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "x5c", "crit", "b64", "zip", "enc"})
# `typ` values of access tokens: plain JWT, or RFC 9068's at+jwt (case-insensitive, with or
# without the "application/" prefix). Anything else (e.g. "id_token+jwt", "logout+jwt") is refused.
ACCESS_TOKEN_TYPES = frozenset({"jwt", "at+jwt", "application/jwt", "application/at+jwt"})
# Claims OpenID Connect Core defines for ID tokens only: their presence means "not an access token".
ID_TOKEN_ONLY_CLAIMS = ("nonce", "at_hash", "c_hash", "s_hash")
ACCESS = "access"

# Three base64url segments (no padding); the signature may be empty (then it fails to verify).
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# The last character of a canonical unpadded base64url segment leaves its unused bits at zero.
_CANONICAL_LAST = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}


class AccessTokenVerifier:
    def __init__(
        self, settings: OidcSettings | AuthorizerSettings, jwks: JwksCache, clock: Callable[[], float] = time.time
    ) -> None:
        self._settings = settings
        self._jwks = jwks
        self._clock = clock
        self._algorithms = frozenset(settings.oidc_algorithms)
        self._audiences = frozenset(settings.oidc_audience)
        self._required_scopes = frozenset(settings.oidc_required_scopes)

    def verify(self, token: str) -> Principal:
        """The user of a valid access token; raises :class:`TokenRejected` with a reason otherwise."""
        settings = self._settings
        issuer = settings.oidc_issuer
        if issuer is None:
            raise TokenRejected("oidc_disabled")
        if not self._audiences:
            raise TokenRejected("audience_not_configured")
        if len(token) > MAX_TOKEN_BYTES:
            raise TokenRejected("too_large")
        if _COMPACT_JWS.fullmatch(token) is None:
            raise TokenRejected("malformed")
        header_end = token.index(".")
        signed_end = token.rindex(".")
        if header_end > MAX_HEADER_CHARS:
            raise TokenRejected("malformed")
        header = _json_object(_b64decode(token[:header_end]))
        algorithm = header.get("alg")
        if type(algorithm) is not str or algorithm not in self._algorithms:
            raise TokenRejected("algorithm")
        if not FORBIDDEN_HEADERS.isdisjoint(header):
            raise TokenRejected("forbidden_header")
        token_type = header.get("typ")
        if token_type is not None and (type(token_type) is not str or token_type.lower() not in ACCESS_TOKEN_TYPES):
            raise TokenRejected("token_type")
        kid = header.get("kid")
        if type(kid) is not str or not is_valid_kid(kid):
            raise TokenRejected("kid")
        key = self._jwks.key_for(kid)
        if key is None:
            raise TokenRejected("unknown_kid")
        if key.algorithm_name != algorithm:
            raise TokenRejected("algorithm")
        signature = _b64decode(token[signed_end + 1 :])
        if not key.Algorithm.verify(token[:signed_end].encode("ascii"), key.key, signature):
            raise TokenRejected("signature")
        # Only now, with the issuer's signature checked, is the payload decoded.
        claims = _json_object(_b64decode(token[header_end + 1 : signed_end]))
        return self._principal(claims, issuer)

    def _principal(self, claims: dict[str, Any], issuer: str) -> Principal:
        now = self._clock()
        expires_at = _numeric_date(claims, "exp", required=True)
        if expires_at is None or expires_at <= now - LEEWAY_SECONDS:
            raise TokenRejected("expired")
        for name in ("nbf", "iat"):
            moment = _numeric_date(claims, name, required=False)
            if moment is not None and moment > now + LEEWAY_SECONDS:
                raise TokenRejected("not_yet_valid")
        if "iss" not in claims:
            raise TokenRejected("missing_claim")
        if claims["iss"] != issuer:  # exact: a trailing slash is another issuer
            raise TokenRejected("issuer")
        token_use = claims.get("token_use")
        if token_use is not None and token_use != ACCESS:
            raise TokenRejected("token_use")
        if any(name in claims for name in ID_TOKEN_ONLY_CLAIMS):
            raise TokenRejected("id_token")
        self._check_audience(claims, token_use)
        subject = claims.get("sub")
        if subject is None:
            raise TokenRejected("missing_claim")
        if type(subject) is not str or not subject or len(subject) > MAX_SUBJECT_LENGTH:
            raise TokenRejected("sub")
        if is_client_credentials_token(claims):
            raise TokenRejected("client_credentials")
        if not self._required_scopes <= granted_scopes(claims):
            raise TokenRejected("scope")
        return Principal(
            kind="user",
            subject=subject,
            issuer=issuer,
            roles=roles_from_claim(claims.get(self._settings.oidc_roles_claim)),
            mfa=_has_mfa(claims.get("amr")),
            expires_at=int(expires_at),
        )

    def _check_audience(self, claims: dict[str, Any], token_use: object) -> None:
        """``aud`` must name one of ours; only Cognito's access-token shape may use ``client_id`` instead."""
        accepted = self._audiences
        if "aud" in claims:
            audience = claims["aud"]
            values = [audience] if type(audience) is str else audience
            if type(values) is not list or not values or any(type(value) is not str for value in values):
                raise TokenRejected("audience")
            if accepted.isdisjoint(values):
                raise TokenRejected("audience")
            return
        client_id = claims.get("client_id")
        if token_use != ACCESS or type(client_id) is not str or client_id not in accepted:
            raise TokenRejected("audience")


def is_client_credentials_token(claims: dict[str, Any]) -> bool:
    """Whether the token was issued to a machine client (OAuth client credentials), not to a person.

    Each provider marks it its own way: Auth0 ``gty: client-credentials`` and a ``sub`` of
    ``<client id>@clients``; Okta ``sub`` equal to ``cid``; Cognito ``sub`` equal to ``client_id`` and no
    ``username``; Entra ID ``idtyp: app``; Keycloak the service-account user ``service-account-<client>``.
    A token with none of these marks (only ``iss``, ``aud``, ``sub``, ``iat``, ``exp``, say) is a user's.
    """
    subject = claims.get("sub")
    if claims.get("gty") == "client-credentials":
        return True
    if type(subject) is str and subject.endswith("@clients"):
        return True
    if "cid" in claims and claims["cid"] == subject:
        return True
    if "client_id" in claims and claims["client_id"] == subject and "username" not in claims:
        return True
    if claims.get("idtyp") == "app":
        return True
    username = claims.get("preferred_username")
    return type(username) is str and username.startswith("service-account-")


def granted_scopes(claims: dict[str, Any]) -> frozenset[str]:
    """The scopes of ``scope`` and ``scp``: a space-separated string or a list of single scopes.

    Either claim in any other shape (a number, a list holding a non-string or a string with a space)
    makes the token grant no scope at all, so that a required scope is then missing.
    """
    granted: set[str] = set()
    for name in ("scope", "scp"):
        if name not in claims:
            continue
        value = claims[name]
        if type(value) is str:
            granted.update(value.split(" "))
        elif type(value) is list and all(type(item) is str and item and " " not in item for item in value):
            granted.update(value)
        else:
            return frozenset()
    granted.discard("")
    return frozenset(granted)


def roles_from_claim(value: object) -> tuple[str, ...]:
    """A roles claim grants something only when it is a (bounded) list of non-empty strings."""
    if type(value) is not list or len(value) > MAX_ROLES:
        return ()
    for role in value:
        if type(role) is not str or not role or len(role) > MAX_ROLE_LENGTH:
            return ()
    return tuple(value)


def _has_mfa(amr: object) -> bool:
    return type(amr) is list and "mfa" in amr


def _numeric_date(claims: dict[str, Any], name: str, *, required: bool) -> float | None:
    """A NumericDate claim: a JSON number (not a string, a boolean or null) within the calendar.

    The bounds are checked before any conversion: a signed token can carry an integer of hundreds of
    digits, which no float holds (``float(10**400)`` raises ``OverflowError``).
    """
    if name not in claims:
        if required:
            raise TokenRejected("missing_claim")
        return None
    value = claims[name]
    if type(value) is int:
        if not 0 <= value <= MAX_NUMERIC_DATE:
            raise TokenRejected("invalid_claim")
        return float(value)
    if type(value) is not float or not math.isfinite(value) or not 0 <= value <= MAX_NUMERIC_DATE:
        raise TokenRejected("invalid_claim")
    return value


def _b64decode(segment: str) -> bytes:
    """Canonical unpadded base64url (the charset was checked by the caller's regex)."""
    remainder = len(segment) % 4
    if remainder == 1 or (remainder and segment[-1] not in _CANONICAL_LAST[remainder]):
        raise TokenRejected("malformed")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as error:  # pragma: no cover - excluded by the checks above
        raise TokenRejected("malformed") from error


def _json_object(data: bytes) -> dict[str, Any]:
    """Strict JSON: UTF-8 only, no NaN/Infinity, no duplicate member names, an object at the top."""
    try:
        document = loads_strict(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise TokenRejected("malformed") from error
    if type(document) is not dict:
        raise TokenRejected("malformed")
    return document
