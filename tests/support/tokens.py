"""Keys and tokens for tests: an RSA issuer we control, and helpers to forge every kind of bad token."""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chatbot_security.identity.jwks import JwksCache
from chatbot_security.identity.oidc import AccessTokenVerifier
from chatbot_security.platform.settings import Settings

ISSUER = "https://issuer.example.test"
AUDIENCE = "chat-client"
KID = "test-key-1"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class FakeIssuer:
    """An OIDC issuer whose private key the tests hold."""

    issuer: str = ISSUER
    audience: str = AUDIENCE
    kid: str = KID
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def jwk(self, **overrides: Any) -> dict[str, Any]:
        numbers = self.key.public_key().public_numbers()
        jwk = {
            "kty": "RSA",
            "kid": self.kid,
            "use": "sig",
            "alg": "RS256",
            "n": b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
            "e": b64url(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
        }
        jwk.update(overrides)
        return jwk

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.jwk()]}

    def discovery(self, jwks_uri: str = ISSUER + "/jwks.json") -> dict[str, Any]:
        return {"issuer": self.issuer, "jwks_uri": jwks_uri}

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": "user-alice",
            "aud": self.audience,
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "jti": str(uuid.uuid4()),
            "token_use": "access",
        }
        claims.update(overrides)
        return {key: value for key, value in claims.items() if value is not None}

    def token(self, **claims: Any) -> str:
        """A token signed with the issuer's key, its claims overridden by `claims` (None removes one)."""
        return self.token_with(**claims)

    def token_with(
        self, *, headers: dict[str, Any] | None = None, key: rsa.RSAPrivateKey | None = None, **claims: Any
    ) -> str:
        """A token with extra JOSE `headers` or signed with another `key`."""
        return jwt.encode(
            self.claims(**claims),
            key or self.key,
            algorithm="RS256",
            headers={"kid": self.kid, **(headers or {})},
        )

    def public_pem(self) -> bytes:
        return self.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def unsigned_token(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A token assembled by hand, for headers and algorithms no library will sign."""
    parts = [b64url(json.dumps(header).encode()), b64url(json.dumps(claims).encode()), b64url(signature)]
    return ".".join(parts)


def rs256_compact(
    header: dict[str, Any] | str,
    claims: dict[str, Any] | str,
    key: rsa.RSAPrivateKey,
) -> str:
    """An RS256 JWS over exactly this header and payload text (no library adds or reorders anything)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    head = header if isinstance(header, str) else json.dumps(header)
    body = claims if isinstance(claims, str) else json.dumps(claims)
    signing_input = f"{b64url(head.encode())}.{b64url(body.encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64url(signature)}"


def hs256_compact(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    """An HMAC-signed JWS: what an attacker makes with a public key used as an HMAC secret."""
    import hashlib
    import hmac

    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64url(hmac.digest(secret, signing_input.encode(), hashlib.sha256))}"


def non_canonical_signature(token: str) -> str:
    """The same signature bytes, spelled with non-zero unused bits in the last base64url character."""
    head, body, signature = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(signature[-1])
    return f"{head}.{body}.{signature[:-1]}{alphabet[last | 1]}"


def segments_text(token: str, public: tuple[str, ...] = ()) -> list[str]:
    """Every piece of a token that must never reach a log: the segments and the decoded string values.

    ``public`` lists values that are configuration rather than token content (the issuer URL, which
    chatbot-local prints at start-up): they are not looked for.
    """
    pieces = [token, *(segment for segment in token.split(".") if len(segment) >= 8)]
    for segment in token.split(".")[:2]:
        try:
            decoded = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
        except ValueError:
            continue
        if isinstance(decoded, dict):
            pieces += [value for value in decoded.values() if isinstance(value, str) and len(value) >= 8]
    return [piece for piece in pieces if piece not in public]


def offline_verifier(issuer: FakeIssuer) -> AccessTokenVerifier:
    """An AccessTokenVerifier for ISSUER/AUDIENCE whose discovery document and JWKS come from `issuer`."""
    env = Settings.model_validate({"OIDC_ISSUER": ISSUER, "OIDC_AUDIENCE": AUDIENCE})
    jwks = issuer.jwks()
    return AccessTokenVerifier(
        env, JwksCache(env, fetch=lambda url, timeout: jwks if "jwks" in url else issuer.discovery())
    )
