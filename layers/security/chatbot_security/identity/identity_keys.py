"""Pseudonymous keys for principals: HMAC-SHA256 with a secret pepper (docs/contract.md section 6, rule 8).

The table never stores a raw ``sub``, issuer or anonymous session marker as an owner; only these
hashes. The pepper lives in Secrets Manager; without it the hashes cannot be linked to people.
"""

from __future__ import annotations

import hashlib
import hmac

from chatbot_security.identity.principal import Principal

_OWNER = b"chatbot/owner/v1"
_RATE = b"chatbot/rate/v1"
_CURSOR = b"chatbot/cursor/v1"
_REQUEST = b"chatbot/request/v1"


class IdentityKeys:
    def __init__(self, pepper: str) -> None:
        root = pepper.encode()
        self._owner_key = hmac.digest(root, _OWNER, hashlib.sha256)
        self._rate_key = hmac.digest(root, _RATE, hashlib.sha256)
        self.cursor_key = hmac.digest(root, _CURSOR, hashlib.sha256)
        self._request_key = hmac.digest(root, _REQUEST, hashlib.sha256)

    def owner_of(self, principal: Principal) -> str:
        if principal.kind == "anonymous":
            return self._hash(self._owner_key, "anonymous", principal.subject)
        return self.owner_of_user(principal.issuer, principal.subject)

    def owner_of_user(self, issuer: str, subject: str) -> str:
        return self._hash(self._owner_key, "user", issuer, subject)

    def rate_key_of_ip(self, source_ip: str) -> str:
        return self._hash(self._rate_key, "ip", source_ip)

    def request_fingerprint(self, session_id: str, request_key: str, content: str) -> str:
        """Keyed hash of a post's content, stored with its idempotency record (never the content)."""
        return self._hash(self._request_key, "request", session_id, request_key, content)

    @staticmethod
    def _hash(key: bytes, *parts: str) -> str:
        message = "\x00".join(parts).encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()
