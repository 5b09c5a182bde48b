"""Anonymous session tokens (docs/contract.md section 6, rule 3).

Format: ``cs1.<session_id>.<expires_at>.<mac>``, where ``mac`` is base64url(HMAC-SHA256) over
``cs1.<session_id>.<expires_at>`` with a key derived from the Secrets Manager secret for this
purpose only. The ``cs1.`` prefix and the derived key type the token: it can never be mistaken for a
JWT (which starts ``eyJ`` and is verified only with asymmetric algorithms), and an OIDC token never
passes here. Tokens verify against the current secret version and, during a rotation, the previous one.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Iterable

from chatbot_security.identity.principal import EXPIRY_LEEWAY_SECONDS, Principal
from chatbot_security.identity.token_errors import TokenRejected

PREFIX = "cs1"
MAX_TOKEN_LENGTH = 128
# SESSION_TTL_SECONDS can be at most 30 days: no genuine token expires later than that.
MAX_LIFETIME_SECONDS = 30 * 86400
_KEY_CONTEXT = b"chatbot/session-token/v1"
# Matched with fullmatch: "$" alone would also accept a trailing newline.
_TOKEN = re.compile(
    r"cs1\.([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})\.([0-9]{10})\.([A-Za-z0-9_-]{43})"
)


# 43 base64url characters carry 258 bits for a 256-bit MAC: the last one must leave its 2 spare bits at 0.
_CANONICAL_MAC_END = frozenset("AEIMQUYcgkosw048")


def looks_like_session_token(token: str) -> bool:
    return token.startswith(PREFIX + ".")


@functools.lru_cache(maxsize=8)
def derive_key(secret: str) -> bytes:
    """Domain-separated signing key, so the raw secret signs nothing directly (memoised per secret value)."""
    return hmac.digest(secret.encode(), _KEY_CONTEXT, hashlib.sha256)


def _mac(key: bytes, signed: str) -> str:
    return base64.urlsafe_b64encode(hmac.digest(key, signed.encode(), hashlib.sha256)).rstrip(b"=").decode()


def issue(key: bytes, session_id: str, expires_at: int) -> str:
    signed = f"{PREFIX}.{session_id}.{expires_at:010d}"
    return f"{signed}.{_mac(key, signed)}"


def verify(
    token: str,
    keys: Iterable[bytes],
    now: Callable[[], float] = time.time,
    max_lifetime_seconds: int = MAX_LIFETIME_SECONDS,
) -> Principal:
    """The anonymous principal for a valid token; raises :class:`TokenRejected` otherwise.

    The MAC is checked before anything the token says is believed; then the expiry must be in the
    future, and no further away than the longest session lifetime the deployment allows.
    """
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenRejected("too_large")
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise TokenRejected("malformed")
    session_id, expires_text, mac = match.groups()
    if mac[-1] not in _CANONICAL_MAC_END:  # one spelling per MAC: no malleable variants
        raise TokenRejected("malformed")
    presented = base64.urlsafe_b64decode(mac + "=")
    signed = token[: -len(mac) - 1].encode()
    for key in keys:
        if hmac.compare_digest(hmac.digest(key, signed, "sha256"), presented):
            break
    else:
        raise TokenRejected("signature")
    expires_at = int(expires_text)
    moment = now()
    if expires_at <= moment:
        raise TokenRejected("expired")
    if expires_at > moment + max_lifetime_seconds + EXPIRY_LEEWAY_SECONDS:  # clock skew between containers
        raise TokenRejected("expiry_too_far")
    return Principal(kind="anonymous", subject=session_id, session_id=session_id, expires_at=expires_at)
