"""URL checks shared by both settings readers (:mod:`.settings` and :mod:`.authorizer_settings`) and the
JWKS discovery: https only, except http on a loopback host in local runs; never credentials in a URL.
No pydantic here, so that the authorizer can import it on its cold path."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"localhost"})


def is_loopback_host(host: str | None) -> bool:
    """A loopback address, ``localhost``, or a name under ``.localhost`` (RFC 6761 reserves them all for
    loopback; a container reaches the development issuer by such a name mapped to its host)."""
    if not host:
        return False
    name = host.lower()
    if name in LOOPBACK_HOSTS or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_secure_url(name: str, url: str, *, allow_loopback_http: bool) -> None:
    """Raises ValueError naming the variable unless ``url`` is an https URL (or loopback http when allowed)."""
    parts = urlsplit(url)
    if not parts.hostname or parts.username or parts.password:
        raise ValueError(f"{name} must be an absolute URL without credentials")
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and allow_loopback_http and is_loopback_host(parts.hostname):
        return
    raise ValueError(f"{name} must use https")
