"""JWKS discovery and caching (DESIGN.md section 6, rule 2).

* keys are cached for ``ttl_seconds`` (at least 5 minutes);
* whatever the reason (expiry or an unknown ``kid``), the container fetches at most once per
  ``min_fetch_interval_seconds`` (30 s), so a flood of made-up ``kid`` values costs one fetch;
* fetches time out after at most 2 s;
* keys whose ``use`` is not ``sig`` are ignored, and so are keys PyJWT cannot load;
* when the issuer is down, the last good keys keep working; with no keys at all, every token is denied.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import jwt

from chatbot_security.http_fetch import FetchError, fetch_json
from chatbot_security.settings import OidcSettings, _require_secure_url

MIN_TTL_SECONDS = 300
DEFAULT_TTL_SECONDS = 600
MIN_FETCH_INTERVAL_SECONDS = 30.0
MAX_FETCH_TIMEOUT_SECONDS = 2.0
MAX_KEYS = 50

FetchJson = Callable[[str, float], dict[str, Any]]


class JwksCache:
    def __init__(
        self,
        settings: OidcSettings,
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
        self._min_interval = min_fetch_interval_seconds
        self._timeout = min(timeout_seconds, MAX_FETCH_TIMEOUT_SECONDS)
        self._jwks_url: str | None = settings.oidc_jwks_url
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._last_attempt: float | None = None
        self._lock = threading.Lock()
        self.fetch_count = 0

    def key_for(self, kid: str) -> jwt.PyJWK | None:
        """The signing key with this ``kid``, refreshing the set when allowed; None when unknown."""
        now = self._clock()
        stale = self._fetched_at is None or now - self._fetched_at >= self._ttl
        if stale or kid not in self._keys:
            self._refresh(now)
        return self._keys.get(kid)

    def _refresh(self, now: float) -> None:
        with self._lock:
            if self._last_attempt is not None and now - self._last_attempt < self._min_interval:
                return
            self._last_attempt = now
            self.fetch_count += 1
            try:
                keys = self._load_keys()
            except FetchError:
                return  # keep the last good keys
            self._keys = keys
            self._fetched_at = now

    def _load_keys(self) -> dict[str, jwt.PyJWK]:
        document = self._fetch(self._resolve_jwks_url(), self._timeout)
        raw_keys = document.get("keys")
        if not isinstance(raw_keys, list):
            raise FetchError("JWKS without keys")
        keys: dict[str, jwt.PyJWK] = {}
        for raw in raw_keys[:MAX_KEYS]:
            key = _signing_key(raw, self._settings.oidc_algorithms)
            if key is not None:
                keys[raw["kid"]] = key
        return keys

    def _resolve_jwks_url(self) -> str:
        if self._jwks_url is None:
            issuer = self._settings.oidc_issuer
            if issuer is None:
                raise FetchError("OIDC is not configured")
            discovery = self._fetch(issuer.rstrip("/") + "/.well-known/openid-configuration", self._timeout)
            if discovery.get("issuer") != issuer:
                raise FetchError("discovery issuer mismatch")
            jwks_uri = discovery.get("jwks_uri")
            if not isinstance(jwks_uri, str):
                raise FetchError("discovery without jwks_uri")
            try:
                _require_secure_url("jwks_uri", jwks_uri, allow_loopback_http=self._settings.allow_loopback_issuer)
            except ValueError as error:
                raise FetchError("insecure jwks_uri") from error
            self._jwks_url = jwks_uri
        return self._jwks_url


def _signing_key(raw: Any, algorithms: tuple[str, ...]) -> jwt.PyJWK | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("kid"), str):
        return None
    if raw.get("use", "sig") != "sig":
        return None
    if "d" in raw or "k" in raw:  # private or symmetric material never belongs in a JWKS
        return None
    alg = raw.get("alg")
    if alg is not None and alg not in algorithms:
        return None
    try:
        return jwt.PyJWK(raw, algorithm=alg or _default_algorithm(raw, algorithms))
    except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError):
        return None


def _default_algorithm(raw: dict[str, Any], algorithms: tuple[str, ...]) -> str | None:
    families = {"RSA": ("RS", "PS"), "EC": ("ES",)}
    prefixes = families.get(str(raw.get("kty")), ())
    for algorithm in algorithms:
        if algorithm.startswith(prefixes):
            return algorithm
    return None
