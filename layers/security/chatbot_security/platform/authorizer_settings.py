"""The HTTP authorizer's settings, read without pydantic (the authorizer's cold path imports none).

With :mod:`.settings` and :mod:`.lean_settings` the only places that read the environment. It reads
exactly the names the authorizer uses, with the names, defaults and bounds of
:class:`chatbot_security.platform.settings.Settings`, once per container; any value that model refuses
is refused here too, with the variable's name (a differential test keeps the two in step). It is
stricter in two corners a deployment never uses: an integer must be plain digits (no ``1_000`` or
``60.0``), and a boolean one of the usual words.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from chatbot_security.platform.urls import require_secure_url

ASYMMETRIC_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"})
_TRUE = frozenset({"1", "true", "yes", "on", "t", "y"})
_FALSE = frozenset({"0", "false", "no", "off", "f", "n"})
_INTEGER = re.compile(r"[+-]?[0-9]{1,18}")
# What the settings model strips from a text or a number: Unicode's White_Space characters. Python's own
# str.strip() also strips the ASCII separators 0x1C to 0x1F, which the model keeps (and then refuses in
# a number): stripping them here would read a value the model reads differently.
_WHITESPACE = "".join(chr(code) for code in range(0x3001) if chr(code).isspace() and not 0x1C <= code <= 0x1F)
MAX_SESSION_TTL_SECONDS = 30 * 86400


@dataclass(frozen=True, slots=True)
class AuthorizerSettings:
    oidc_issuer: str | None = None
    oidc_audience: tuple[str, ...] = ()
    oidc_jwks_url: str | None = None
    oidc_roles_claim: str = "cognito:groups"
    oidc_algorithms: tuple[str, ...] = ("RS256",)
    oidc_required_scopes: tuple[str, ...] = ()
    admin_role: str = "admin"
    admin_require_mfa: bool = True
    allow_loopback_issuer: bool = False
    sam_local: bool = False
    allow_anonymous: bool = False
    session_ttl_seconds: int = 86400
    session_token_secret_arn: str | None = None
    edge_protection: str = "none"
    edge_origin_secret_arn: str | None = None
    edge_origin_secret_max_age_seconds: int = 300

    @property
    def loopback_http_allowed(self) -> bool:
        """http:// on a loopback host, for local runs only (chatbot-local, or sam local invoke)."""
        return self.allow_loopback_issuer or self.sam_local

    @property
    def edge_enabled(self) -> bool:
        return self.edge_protection == "waf"

    def require(self, field: str) -> str:
        """A resource name the running code cannot do without, or fail with its variable name."""
        value = getattr(self, field)
        if not value:
            raise RuntimeError(f"{field.upper()} is not configured")
        return str(value)


def read_authorizer_settings(environment: Mapping[str, str]) -> AuthorizerSettings:
    """The settings from ``environment``; raises ValueError naming the first variable that is wrong."""
    env = _Environment(environment)
    algorithms = env.csv("OIDC_ALGORITHMS", ("RS256",))
    if not algorithms or not ASYMMETRIC_ALGORITHMS.issuperset(algorithms):
        raise ValueError("OIDC_ALGORITHMS accepts only asymmetric JWS algorithms")
    settings = AuthorizerSettings(
        oidc_issuer=env.optional("OIDC_ISSUER"),
        oidc_audience=env.csv("OIDC_AUDIENCE", ()),
        oidc_jwks_url=env.optional("OIDC_JWKS_URL"),
        oidc_roles_claim=env.text("OIDC_ROLES_CLAIM", "cognito:groups"),
        oidc_algorithms=algorithms,
        oidc_required_scopes=tuple(environment.get("OIDC_REQUIRED_SCOPES", "").split()),
        admin_role=env.text("ADMIN_ROLE", "admin"),
        admin_require_mfa=env.boolean("ADMIN_REQUIRE_MFA", default=True),
        allow_loopback_issuer=env.boolean("ALLOW_LOOPBACK_ISSUER", default=False),
        sam_local=env.boolean("AWS_SAM_LOCAL", default=False),
        allow_anonymous=env.boolean("ALLOW_ANONYMOUS", default=False),
        session_ttl_seconds=env.integer("SESSION_TTL_SECONDS", 86400, 60, MAX_SESSION_TTL_SECONDS),
        session_token_secret_arn=env.optional("SESSION_TOKEN_SECRET_ARN"),
        edge_protection=env.choice("EDGE_PROTECTION", "none", ("none", "waf")),
        edge_origin_secret_arn=env.optional("EDGE_ORIGIN_SECRET_ARN"),
        edge_origin_secret_max_age_seconds=env.integer("EDGE_ORIGIN_SECRET_MAX_AGE_SECONDS", 300, 1, 900),
    )
    for name, url in (("OIDC_ISSUER", settings.oidc_issuer), ("OIDC_JWKS_URL", settings.oidc_jwks_url)):
        if url is not None:
            require_secure_url(name, url, allow_loopback_http=settings.loopback_http_allowed)
    if settings.edge_enabled and settings.edge_origin_secret_arn is None:
        raise ValueError("EDGE_PROTECTION=waf needs EDGE_ORIGIN_SECRET_ARN")
    return settings


@functools.cache
def get_authorizer_settings() -> AuthorizerSettings:
    """The authorizer's settings from the process environment, validated once per container."""
    return read_authorizer_settings(os.environ)


class _Environment:
    """Typed reads of one environment, each failing with the variable's name."""

    def __init__(self, environment: Mapping[str, str]) -> None:
        self._environment = environment

    def optional(self, name: str) -> str | None:
        """Blank (by Python's measure, as the model's) or unset is None; anything else stripped."""
        value = self._environment.get(name, "")
        return value.strip(_WHITESPACE) if value.strip() else None

    def text(self, name: str, default: str) -> str:
        value = self._environment.get(name)
        if value is None:
            return default
        if not value.strip(_WHITESPACE):
            raise ValueError(f"{name} must not be empty")
        return value.strip(_WHITESPACE)

    def csv(self, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
        value = self._environment.get(name)
        if value is None:
            return default
        return tuple(item.strip() for item in value.split(",") if item.strip())

    def boolean(self, name: str, *, default: bool) -> bool:
        value = self._environment.get(name)
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ValueError(f"{name} must be true or false")

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self._environment.get(name)
        if value is None:
            return default
        text = value.strip(_WHITESPACE)
        if not _INTEGER.fullmatch(text) or not low <= int(text) <= high:
            raise ValueError(f"{name} must be a whole number from {low} to {high}")
        return int(text)

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        value = self._environment.get(name)
        if value is None:
            return default
        if value not in choices:
            raise ValueError(f"{name} must be one of {', '.join(choices)}")
        return value
