"""The development OIDC issuer: discovery document, JWKS and token minting, on loopback by default.

The server process and `chatbot-local token` are separate processes, so they share two files in
the state folder (`.chatbot-local/` at the repo root, gitignored, mode 0600): the RSA private key
and `issuer.json`, written by the server with its issuer URL once it listens. None of this is
part of a deployment: it lives in the local package only.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

AUDIENCE = "chatbot-local"
KEY_FILE = "dev-issuer-key.pem"
STATE_FILE = "issuer.json"
DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/.well-known/jwks.json"
DEFAULT_ROLES_CLAIM = "cognito:groups"
ACCESS_TOKEN_USE = "access"  # noqa: S105 - the token_use claim of access tokens  # nosec B105


class IssuerError(Exception):
    """The development issuer is not available (not started, or its state is unreadable)."""


@dataclass(frozen=True)
class IssuerState:
    """What `chatbot-local token` needs from the running server."""

    issuer: str
    audience: str
    roles_claim: str
    kid: str
    pid: int


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def public_jwk(key: rsa.RSAPrivateKey) -> dict[str, str]:
    """The public half as a JWK, with its RFC 7638 thumbprint as `kid`."""
    numbers = key.public_key().public_numbers()
    members = {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)}
    thumbprint = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest()
    kid = base64.urlsafe_b64encode(thumbprint).rstrip(b"=").decode()
    return {**members, "kid": kid, "use": "sig", "alg": "RS256"}


def _private_dir(state_dir: Path) -> None:
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)


def _write_private(path: Path, data: bytes) -> None:
    """Write `data` to `path` readable by the owner only, atomically."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.chmod(temporary, 0o600)
    temporary.replace(path)


def load_or_create_key(state_dir: Path) -> rsa.RSAPrivateKey:
    """The issuer's RSA-2048 signing key, created on first use and kept in `state_dir`."""
    _private_dir(state_dir)
    path = state_dir / KEY_FILE
    if path.exists():
        os.chmod(path, 0o600)
        try:
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except ValueError:
            key = None
        if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048:
            return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write_private(path, pem)
    return key


def read_key(state_dir: Path) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key((state_dir / KEY_FILE).read_bytes(), password=None)
    except (OSError, ValueError):
        raise IssuerError(f"no development issuer key in {state_dir}: start chatbot-local first") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise IssuerError(f"{state_dir / KEY_FILE} is not an RSA key")
    return key


def write_state(state_dir: Path, state: IssuerState) -> None:
    _private_dir(state_dir)
    _write_private(state_dir / STATE_FILE, json.dumps(asdict(state), indent=2).encode())


def read_state(state_dir: Path) -> IssuerState:
    """The running server's issuer; IssuerError when no server with the development issuer runs."""
    try:
        data = json.loads((state_dir / STATE_FILE).read_text(encoding="utf-8"))
        state = IssuerState(**data)
    except (OSError, ValueError, TypeError):
        raise IssuerError("chatbot-local is not running with the development issuer (start it first)") from None
    if not _process_alive(state.pid):
        raise IssuerError("the chatbot-local that wrote the issuer state has stopped (start it again)")
    return state


def clear_state(state_dir: Path, pid: int) -> None:
    """Remove issuer.json if this process wrote it."""
    path = state_dir / STATE_FILE
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == pid:
            path.unlink()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mint_token(
    key: rsa.RSAPrivateKey,
    state: IssuerState,
    subject: str,
    *,
    roles: Sequence[str] = (),
    mfa: bool = False,
    scope: str = "",
    ttl_seconds: int = 3600,
    now: float | None = None,
) -> str:
    """An RS256 access token, shaped like a Cognito access token, for the development issuer."""
    issued_at = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "iss": state.issuer,
        "sub": subject,
        "aud": state.audience,
        "client_id": state.audience,
        "token_use": ACCESS_TOKEN_USE,
        "iat": issued_at,
        "nbf": issued_at,
        "exp": issued_at + ttl_seconds,
        "jti": str(uuid.uuid4()),
        state.roles_claim: list(roles),
    }
    if mfa:
        claims["amr"] = ["mfa"]
    if scope:
        claims["scope"] = scope
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": state.kid, "typ": "JWT"})


class DevIssuer:
    """Serves the discovery document and the JWKS on a free port unless given one.

    It listens on 127.0.0.1 unless given another address (a container fetching the JWKS); its URL, the
    tokens' `iss`, is http://127.0.0.1:<port> either way.
    """

    def __init__(self, key: rsa.RSAPrivateKey, port: int = 0, host: str = "127.0.0.1") -> None:
        self.jwk = public_jwk(key)
        try:
            self._server = _IssuerServer((host, port), _IssuerRequestHandler)
        except OSError as error:
            raise IssuerError(f"cannot serve the development issuer on {host}:{port} ({error.strerror})") from None
        port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{port}"
        documents = {
            DISCOVERY_PATH: {
                "issuer": self.url,
                "jwks_uri": self.url + JWKS_PATH,
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
            },
            JWKS_PATH: {"keys": [self.jwk]},
        }
        self._server.documents = {path: json.dumps(body).encode() for path, body in documents.items()}
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,), name="dev-issuer", daemon=True)

    @property
    def kid(self) -> str:
        return self.jwk["kid"]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _IssuerServer(ThreadingHTTPServer):
    daemon_threads = True
    documents: dict[str, bytes]


class _IssuerRequestHandler(BaseHTTPRequestHandler):
    server: _IssuerServer
    server_version = "chatbot-local-issuer"

    def version_string(self) -> str:
        return self.server_version

    def do_GET(self) -> None:
        body = self.server.documents.get(self.path.split("?", 1)[0])
        self.send_response(200 if body is not None else 404)
        body = body if body is not None else b'{"error":"not_found"}'
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "public, max-age=300")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the issuer's requests are not the API's."""
