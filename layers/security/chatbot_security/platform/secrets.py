"""Secrets Manager access with an in-container cache, so warm requests make no Secrets Manager call."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from chatbot_security.platform.aws_clients import client

CURRENT = "AWSCURRENT"
PREVIOUS = "AWSPREVIOUS"
DEFAULT_MAX_AGE_SECONDS = 900


@dataclass(frozen=True)
class _Cached:
    value: str | None
    fetched_at: float


class SecretCache:
    """Caches secret values by (secret id, version stage) for ``max_age`` seconds."""

    def __init__(
        self,
        fetch: Callable[[str, str], str | None] | None = None,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch or _fetch_from_secrets_manager
        self._max_age = max_age_seconds
        self._clock = clock
        self._cache: dict[tuple[str, str], _Cached] = {}
        self._lock = threading.Lock()

    def get(self, secret_id: str, stage: str = CURRENT) -> str | None:
        """The secret's value at ``stage``, or None when that stage does not exist."""
        key = (secret_id, stage)
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and now - cached.fetched_at < self._max_age:
                return cached.value
        value = self._fetch(secret_id, stage)
        with self._lock:
            self._cache[key] = _Cached(value, now)
        return value

    def require(self, secret_id: str) -> str:
        value = self.get(secret_id, CURRENT)
        if not value:
            raise RuntimeError("secret has no current value")
        return value


def _fetch_from_secrets_manager(secret_id: str, stage: str) -> str | None:
    secrets = client("secretsmanager")
    try:
        response = secrets.get_secret_value(SecretId=secret_id, VersionStage=stage)
    except secrets.exceptions.ResourceNotFoundException:
        if stage == CURRENT:
            raise
        return None  # no previous version yet: nothing to verify against
    value = response.get("SecretString")
    return value if isinstance(value, str) else None


@functools.cache
def shared_secret_cache() -> SecretCache:
    """The container's one secret cache."""
    return SecretCache()
