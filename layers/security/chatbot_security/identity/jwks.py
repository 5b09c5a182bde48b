"""JWKS discovery and caching (docs/contract.md section 6, rule 2).

* keys are cached for ``ttl_seconds`` (at least 5 minutes);
* whatever the reason (expiry or an unknown ``kid``), the container fetches at most once per
  ``min_fetch_interval_seconds`` (30 s), so a flood of made-up ``kid`` values costs one fetch;
  a ``kid`` that is not even well-formed (:func:`is_valid_kid`) never reaches this cache;
* one refresh (discovery and JWKS together) gets at most 2 s of wall-clock time;
* keys whose ``use`` is not ``sig`` are ignored, and so are symmetric or private keys, RSA keys
  under 2048 bits, keys for algorithms outside ``OIDC_ALGORITHMS`` and keys PyJWT cannot load;
* when the issuer is down (or answers with no usable key), the last good keys keep working; with no
  keys at all, every token is denied.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chatbot_security.identity.http_fetch import FetchError, fetch_json
from chatbot_security.platform.observability import logger
from chatbot_security.platform.urls import require_secure_url

if TYPE_CHECKING:  # PyJWT and cryptography load with the first key set: a session-token container never needs them
    import jwt

    from chatbot_security.platform.authorizer_settings import AuthorizerSettings
    from chatbot_security.platform.settings import OidcSettings

MIN_TTL_SECONDS = 300
DEFAULT_TTL_SECONDS = 600
MIN_FETCH_INTERVAL_SECONDS = 30.0
MAX_FETCH_TIMEOUT_SECONDS = 2.0
MAX_KEYS = 50
MIN_RSA_BITS = 2048
MAX_KID_LENGTH = 128
# Key ids seen in the wild: base64/base64url thumbprints (Cognito uses "+", "/" and "="), hex,
# UUIDs, dotted or colon-separated names. No whitespace, quotes, control or path characters beyond "/".
_KID = re.compile(r"[A-Za-z0-9_+/=.:-]{1," + str(MAX_KID_LENGTH) + r"}")

FetchJson = Callable[[str, float], dict[str, Any]]


def is_valid_kid(kid: str) -> bool:
    """A ``kid`` worth looking up: short, from a plain charset, and no path traversal."""
    return _KID.fullmatch(kid) is not None and ".." not in kid


class JwksCache:
    def __init__(
        self,
        settings: OidcSettings | AuthorizerSettings,
        *,
        fetch: FetchJson = fetch_json,
        clock: Callable[[], float] = time.monotonic,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        min_fetch_interval_seconds: float = MIN_FETCH_INTERVAL_SECONDS,
        timeout_seconds: float = MAX_FETCH_TIMEOUT_SECONDS,
    ) -> None:
        self._settings = settings
        self._fetch = fetch
        self._clock = clock
        self._ttl = max(ttl_seconds, MIN_TTL_SECONDS)
        self._min_interval = max(min_fetch_interval_seconds, MIN_FETCH_INTERVAL_SECONDS)
        self._timeout = min(timeout_seconds, MAX_FETCH_TIMEOUT_SECONDS)
        self._jwks_url: str | None = settings.oidc_jwks_url
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fresh_until = float("-inf")
        self._last_attempt: float | None = None
        self._lock = threading.Lock()
        self.fetch_count = 0

    def key_for(self, kid: str) -> jwt.PyJWK | None:
        """The signing key with this ``kid``, refreshing the set when allowed; None when unknown."""
        key = self._keys.get(kid)
        now = self._clock()
        if key is None or now >= self._fresh_until:
            self._refresh(now)
            key = self._keys.get(kid)
        return key

    def _refresh(self, now: float) -> None:
        with self._lock:
            if self._last_attempt is not None and now - self._last_attempt < self._min_interval:
                return
            self._last_attempt = now
            self.fetch_count += 1
            deadline = self._clock() + self._timeout
            try:
                keys = self._load_keys(deadline)
            except FetchError as error:
                # Keep the last good keys; say why, so that an "unknown_kid" denial can be traced to it.
                logger.warning("key set refresh failed", extra={"error": str(error)})
                return
            self._keys = keys
            self._fresh_until = now + self._ttl

    def _load_keys(self, deadline: float) -> dict[str, jwt.PyJWK]:
        document = self._fetch(self._resolve_jwks_url(deadline), self._remaining(deadline))
        raw_keys = document.get("keys")
        if not isinstance(raw_keys, list):
            raise FetchError("JWKS without keys")
        keys: dict[str, jwt.PyJWK] = {}
        for raw in raw_keys[:MAX_KEYS]:
            key = _signing_key(raw, self._settings.oidc_algorithms)
            if key is not None:
                keys.setdefault(raw["kid"], key)
        if not keys:
            raise FetchError("JWKS without a usable signing key")
        return keys

    def _remaining(self, deadline: float) -> float:
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise FetchError("JWKS refresh out of time")
        return remaining

    def _resolve_jwks_url(self, deadline: float) -> str:
        if self._jwks_url is None:
            issuer = self._settings.oidc_issuer
            if issuer is None:
                raise FetchError("OIDC is not configured")
            discovery_url = issuer.rstrip("/") + "/.well-known/openid-configuration"
            discovery = self._fetch(discovery_url, self._remaining(deadline))
            if discovery.get("issuer") != issuer:
                raise FetchError("discovery issuer mismatch")
            jwks_uri = discovery.get("jwks_uri")
            if not isinstance(jwks_uri, str):
                raise FetchError("discovery without jwks_uri")
            try:
                require_secure_url("jwks_uri", jwks_uri, allow_loopback_http=self._settings.loopback_http_allowed)
            except ValueError as error:
                raise FetchError("insecure jwks_uri") from error
            self._jwks_url = jwks_uri
        return self._jwks_url


def _signing_key(raw: Any, algorithms: tuple[str, ...]) -> jwt.PyJWK | None:
    """The JWKS entry as a verification key, or None when it is not one we may use."""
    if not _usable_entry(raw, algorithms):
        return None
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    algorithm = raw.get("alg") or _default_algorithm(raw, algorithms)
    try:
        key = jwt.PyJWK(raw, algorithm=algorithm)
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError):
        return None
    if isinstance(key.key, rsa.RSAPublicKey) and key.key.key_size < MIN_RSA_BITS:
        return None
    return key


def _usable_entry(raw: Any, algorithms: tuple[str, ...]) -> bool:
    """A public signing key with a well-formed kid, for an allowed algorithm (or one we can infer)."""
    if not isinstance(raw, dict) or not isinstance(raw.get("kid"), str) or not is_valid_kid(raw["kid"]):
        return False
    if raw.get("use", "sig") != "sig":
        return False
    if "d" in raw or "k" in raw:  # private or symmetric material never belongs in a JWKS
        return False
    alg = raw.get("alg")
    if alg is not None:
        return alg in algorithms
    return _default_algorithm(raw, algorithms) is not None


def _default_algorithm(raw: dict[str, Any], algorithms: tuple[str, ...]) -> str | None:
    families = {"RSA": ("RS", "PS"), "EC": ("ES",)}
    prefixes = families.get(str(raw.get("kty")), ())
    for algorithm in algorithms:
        if algorithm.startswith(prefixes):
            return algorithm
    return None
