"""Authorizer logic: who the bearer is, and whether that kind of caller may use the route.

Per-session ownership is the chat function's job (on every access); the decision here depends only
on the credential and the route key, which are exactly the identity sources of the authorizer's
result cache, so a cached decision can never be served to another principal or another route.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from chatbot_security.identity import session_tokens
from chatbot_security.identity.oidc import MAX_TOKEN_BYTES, AccessTokenVerifier
from chatbot_security.identity.principal import Principal
from chatbot_security.identity.token_errors import TokenRejected

if TYPE_CHECKING:
    from chatbot_security.identity.edge import OriginVerifier
    from chatbot_security.platform.authorizer_settings import AuthorizerSettings
    from chatbot_security.platform.settings import Settings

    # The handler reads the lean settings; the tests and the local API may pass the full model.
    AnySettings = Settings | AuthorizerSettings

ANONYMOUS_ROUTES = frozenset(
    {
        "GET /v1/sessions",
        "GET /v1/sessions/{session_id}",
        "DELETE /v1/sessions/{session_id}",
        "POST /v1/sessions/{session_id}/messages",
        "GET /v1/sessions/{session_id}/messages",
        "GET /v1/usage",
        "POST /v1/sessions/{session_id}/stream-tickets",
        "GET /v1/me/export",
        "DELETE /v1/me",
    }
)
ADMIN_ROUTE_PREFIX = "/v1/admin/"


class Authenticator:
    def __init__(
        self,
        settings: AnySettings,
        access_tokens: AccessTokenVerifier,
        session_token_keys: Callable[[], Iterable[bytes]],
    ) -> None:
        self._settings = settings
        self._access_tokens = access_tokens
        self._session_token_keys = session_token_keys

    def authenticate(self, token: str) -> Principal:
        if session_tokens.looks_like_session_token(token):
            if not self._settings.allow_anonymous:
                raise TokenRejected("anonymous_disabled")
            return session_tokens.verify(
                token, self._session_token_keys(), max_lifetime_seconds=self._settings.session_ttl_seconds
            )
        return self._access_tokens.verify(token)


def bearer_token(event: Mapping[str, Any]) -> str:
    headers = event.get("headers")
    value = headers.get("authorization") if isinstance(headers, Mapping) else None
    if not isinstance(value, str):
        raise TokenRejected("no_credentials")
    if len(value) > MAX_TOKEN_BYTES + 16:
        raise TokenRejected("too_large")
    scheme, _, token = value.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token or "," in token:
        raise TokenRejected("malformed")
    return token


def check_route(principal: Principal, route_key: str, settings: AnySettings) -> None:
    _, _, path = route_key.partition(" ")
    if principal.kind == "anonymous" and route_key not in ANONYMOUS_ROUTES:
        raise TokenRejected("route_not_allowed")
    if path.startswith(ADMIN_ROUTE_PREFIX):
        if settings.admin_role not in principal.roles:
            raise TokenRejected("missing_role")
        if settings.admin_require_mfa and not principal.mfa:
            raise TokenRejected("missing_mfa")


def check_origin(event: Mapping[str, Any], settings: AnySettings, origin: OriginVerifier | None) -> None:
    """With the edge on, only a request that came through CloudFront (valid origin header) goes on."""
    if settings.edge_enabled and (origin is None or not origin.is_valid(event.get("headers"))):
        raise TokenRejected("origin_invalid")


def authorize(
    event: Mapping[str, Any], authenticator: Authenticator, settings: AnySettings, origin: OriginVerifier | None = None
) -> Principal:
    """The principal allowed on this route; raises :class:`TokenRejected` with the reason otherwise.

    The origin is checked first: a direct call is refused before its token is even parsed.
    """
    check_origin(event, settings, origin)
    principal = authenticator.authenticate(bearer_token(event))
    check_route(principal, str(event.get("routeKey") or ""), settings)
    return principal
