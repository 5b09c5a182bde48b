"""The no-bypass check of the edge (docs/edge.md): a request counts as coming through CloudFront only
when it carries the origin header with a value of the origin secret.

CloudFront adds ``X-Origin-Verify`` from the origin secret (Secrets Manager, pinned to one version by a
template parameter). During a rotation two values are valid: the secret's current and previous
versions; once the previous stage is removed, its value is refused as soon as the cache forgets it.
The client address of a request is taken from ``CloudFront-Viewer-Address`` only on a request whose
origin header is valid; anything else would let a direct caller choose its own address.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from chatbot_security.platform.secrets import CURRENT, PREVIOUS, SecretCache

if TYPE_CHECKING:
    from chatbot_security.platform.authorizer_settings import AuthorizerSettings
    from chatbot_security.platform.settings import Settings

ORIGIN_HEADER = "x-origin-verify"
VIEWER_ADDRESS_HEADER = "cloudfront-viewer-address"
# Generated values are 64 characters; anything much longer is not worth comparing.
MAX_ORIGIN_VALUE_CHARS = 256


def header(headers: Any, name: str) -> str | None:
    """A header's value by lower-case name (payload 2.0 lower-cases them; tolerate other spellings)."""
    if not isinstance(headers, Mapping):
        return None
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if isinstance(k, str) and k.lower() == name), None)
    return value if isinstance(value, str) else None


def origin_secret_values(secrets: SecretCache, secret_arn: str) -> Iterator[str]:
    """The accepted values, current version first; the previous one is read only when needed."""
    for stage in (CURRENT, PREVIOUS):
        value = secrets.get(secret_arn, stage)
        if value:
            yield value


class OriginVerifier:
    """Whether a request carries a valid origin header."""

    def __init__(self, values: Callable[[], Iterable[str]]) -> None:
        self._values = values

    def is_valid(self, headers: Any) -> bool:
        presented = header(headers, ORIGIN_HEADER)
        if not presented or len(presented) > MAX_ORIGIN_VALUE_CHARS:
            return False
        candidate = presented.encode()
        # Constant-time comparison with each accepted value (current first, then previous).
        return any(hmac.compare_digest(candidate, expected.encode()) for expected in self._values())


def verifier_for(settings: Settings | AuthorizerSettings, secrets: SecretCache) -> OriginVerifier:
    secret_arn = settings.require("edge_origin_secret_arn")
    return OriginVerifier(functools.partial(origin_secret_values, secrets, secret_arn))


@functools.cache
def default_verifier() -> OriginVerifier:
    """The container's verifier: its own cache, so a retired value expires after the configured age."""
    from chatbot_security.platform.settings import get_settings  # pydantic: not on the authorizer's path

    return container_verifier(get_settings())


def container_verifier(settings: Settings | AuthorizerSettings) -> OriginVerifier:
    """A verifier with a cache of its own, which forgets a value after the configured age."""
    return verifier_for(settings, SecretCache(max_age_seconds=settings.edge_origin_secret_max_age_seconds))


def viewer_ip(headers: Any) -> str | None:
    """The client address CloudFront reports (``198.51.100.10:46532``, ``[2001:db8::1]:46532``)."""
    value = header(headers, VIEWER_ADDRESS_HEADER)
    if not value or len(value) > 64:
        return None
    address, separator, port = value.strip().rpartition(":")
    if not separator or not port.isdigit():
        return None
    try:
        return str(ipaddress.ip_address(address.removeprefix("[").removesuffix("]")))
    except ValueError:
        return None


def client_ip(event: Mapping[str, Any], origin_verified: bool) -> str:
    """The address the per-IP limits count: CloudFront's viewer address behind a verified edge, else
    the source address API Gateway saw (never ``X-Forwarded-For``)."""
    source = str(((event.get("requestContext") or {}).get("http") or {}).get("sourceIp") or "")
    if origin_verified:
        return viewer_ip(event.get("headers")) or source
    return source
