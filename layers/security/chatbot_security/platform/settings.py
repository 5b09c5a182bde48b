"""The one place that reads the environment.

Every configuration name of docs/contract.md section 4 (plus the resource names the template injects) is a
field of :class:`Settings`, validated once and read through :func:`get_settings`.
"""

from __future__ import annotations

import functools
import os
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from chatbot_security.platform.urls import LOOPBACK_HOSTS, is_loopback_host, require_secure_url

__all__ = ["LOOPBACK_HOSTS", "is_loopback_host", "require_secure_url"]  # re-exported: callers import them here


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _blank_is_none(value: object) -> object:
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _split_spaces(value: object) -> object:
    if isinstance(value, str):
        return value.split()
    return value


CsvList = Annotated[tuple[str, ...], BeforeValidator(_split_csv)]
SpaceList = Annotated[tuple[str, ...], BeforeValidator(_split_spaces)]
OptionalStr = Annotated[str | None, BeforeValidator(_blank_is_none)]


class _EnvModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True, str_strip_whitespace=True)


class OidcSettings(_EnvModel):
    oidc_issuer: OptionalStr = Field(default=None, alias="OIDC_ISSUER")
    oidc_audience: CsvList = Field(default=(), alias="OIDC_AUDIENCE")
    oidc_jwks_url: OptionalStr = Field(default=None, alias="OIDC_JWKS_URL")
    oidc_roles_claim: str = Field(default="cognito:groups", alias="OIDC_ROLES_CLAIM", min_length=1)
    oidc_algorithms: CsvList = Field(default=("RS256",), alias="OIDC_ALGORITHMS")
    # Scopes every access token must carry (in `scope` or `scp`), space-separated like the claim itself.
    oidc_required_scopes: SpaceList = Field(default=(), alias="OIDC_REQUIRED_SCOPES")
    admin_role: str = Field(default="admin", alias="ADMIN_ROLE", min_length=1)
    admin_require_mfa: bool = Field(default=True, alias="ADMIN_REQUIRE_MFA")
    # Only chatbot-local sets this: it lets OIDC_ISSUER / OIDC_JWKS_URL (and OPENAI_BASE_URL) use
    # http:// on a loopback host.
    allow_loopback_issuer: bool = Field(default=False, alias="ALLOW_LOOPBACK_ISSUER")
    # Set by `sam local invoke` (never by Lambda): SAM passes only the variables the template declares,
    # so ALLOW_LOOPBACK_ISSUER cannot reach its container; the local issuer is on loopback there too.
    sam_local: bool = Field(default=False, alias="AWS_SAM_LOCAL")

    @field_validator("oidc_algorithms")
    @classmethod
    def _asymmetric_only(cls, algorithms: tuple[str, ...]) -> tuple[str, ...]:
        allowed = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}
        bad = [alg for alg in algorithms if alg not in allowed]
        if bad or not algorithms:
            raise ValueError("OIDC_ALGORITHMS accepts only asymmetric JWS algorithms")
        return algorithms

    @model_validator(mode="after")
    def _check_urls(self) -> OidcSettings:
        for name, url in (("OIDC_ISSUER", self.oidc_issuer), ("OIDC_JWKS_URL", self.oidc_jwks_url)):
            if url is not None:
                require_secure_url(name, url, allow_loopback_http=self.loopback_http_allowed)
        return self

    @property
    def loopback_http_allowed(self) -> bool:
        """http:// on a loopback host, for local runs only (chatbot-local, or sam local invoke)."""
        return self.allow_loopback_issuer or self.sam_local


def _require_websocket_url(url: str, *, allow_loopback_ws: bool) -> None:
    parts = urlsplit(url)
    if not parts.hostname or parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("STREAM_URL must be an absolute URL without credentials, query or fragment")
    if parts.scheme == "wss" or (parts.scheme == "ws" and allow_loopback_ws and is_loopback_host(parts.hostname)):
        return
    raise ValueError("STREAM_URL must use wss")


class LimitSettings(_EnvModel):
    session_ttl_seconds: int = Field(default=86400, alias="SESSION_TTL_SECONDS", ge=60, le=30 * 86400)
    session_idle_seconds: int = Field(default=1800, alias="SESSION_IDLE_SECONDS", ge=60, le=30 * 86400)
    max_message_chars: int = Field(default=4000, alias="MAX_MESSAGE_CHARS", ge=1, le=100_000)
    max_body_bytes: int = Field(default=16384, alias="MAX_BODY_BYTES", ge=256, le=1_048_576)
    max_messages_per_session: int = Field(default=200, alias="MAX_MESSAGES_PER_SESSION", ge=2, le=10_000)
    rate_limit_per_minute: int = Field(default=20, alias="RATE_LIMIT_PER_MINUTE", ge=1, le=10_000)
    anon_sessions_per_hour: int = Field(default=10, alias="ANON_SESSIONS_PER_HOUR", ge=1, le=100_000)
    sessions_per_hour: int = Field(default=30, alias="SESSIONS_PER_HOUR", ge=1, le=100_000)
    max_live_sessions: int = Field(default=100, alias="MAX_LIVE_SESSIONS", ge=1, le=100_000)


class QuotaSettings(_EnvModel):
    """Model tokens (input + output) per UTC day: per signed-in user, per anonymous session, and for the
    whole deployment (0: no deployment budget); prices (USD per million tokens) for the cost metric."""

    tokens_per_day: int = Field(default=200_000, alias="TOKENS_PER_DAY", ge=1, le=1_000_000_000)
    anon_tokens_per_day: int = Field(default=20_000, alias="ANON_TOKENS_PER_DAY", ge=1, le=1_000_000_000)
    daily_token_budget: int = Field(default=0, alias="DAILY_TOKEN_BUDGET", ge=0, le=1_000_000_000_000)
    model_input_price_per_mtok: float = Field(default=1.0, alias="MODEL_INPUT_PRICE_PER_MTOK", ge=0, le=10_000)
    model_output_price_per_mtok: float = Field(default=5.0, alias="MODEL_OUTPUT_PRICE_PER_MTOK", ge=0, le=10_000)


class ModelSettings(_EnvModel):
    model_provider: Literal["echo", "bedrock", "openai"] = Field(default="echo", alias="MODEL_PROVIDER")
    model_id: OptionalStr = Field(default=None, alias="MODEL_ID")
    model_max_tokens: int = Field(default=1024, alias="MODEL_MAX_TOKENS", ge=1, le=200_000)
    model_timeout_seconds: float = Field(default=30, alias="MODEL_TIMEOUT_SECONDS", gt=0, le=900)
    bedrock_guardrail_id: OptionalStr = Field(default=None, alias="BEDROCK_GUARDRAIL_ID")
    bedrock_guardrail_version: OptionalStr = Field(default=None, alias="BEDROCK_GUARDRAIL_VERSION")
    # A model setting too: the Bedrock provider passes the guardrail to Converse only when moderation is on.
    moderation: Literal["guardrail", "off"] = Field(default="off", alias="MODERATION")
    # Instructions given to the model ahead of every conversation; empty means the built-in prompt.
    # Configuration, not a secret: it must never hold one (rule 10).
    model_system_prompt: OptionalStr = Field(default=None, alias="MODEL_SYSTEM_PROMPT", max_length=8000)
    # Base URL of the OpenAI-compatible endpoint (MODEL_PROVIDER=openai), such as https://api.example.com/v1.
    openai_base_url: OptionalStr = Field(default=None, alias="OPENAI_BASE_URL")
    # Pause between the words the local echo model streams, so that a developer sees an answer stream in.
    echo_word_delay_ms: int = Field(default=60, alias="ECHO_WORD_DELAY_MS", ge=0, le=10_000)

    @property
    def moderation_enabled(self) -> bool:
        return self.moderation == "guardrail"


#: Stored and returned in place of an answer the guardrail blocks (the template sets the same text).
DEFAULT_REFUSAL_TEXT = "Sorry, I can't share that answer."


class ModerationSettings(_EnvModel):
    """docs/security.md "Moderation": every turn through an Amazon Bedrock guardrail, or none.

    ``guardrail`` needs ``BEDROCK_GUARDRAIL_ID`` (the template gives the guardrail it creates, or the one
    configured), whatever the provider: Bedrock applies it to the user's text and in Converse, the others
    through ApplyGuardrail on the text and on the answer. Locally, ``LOCAL_FAKE_GUARDRAIL`` stands in for it.
    """

    moderation_refusal_text: str = Field(
        default=DEFAULT_REFUSAL_TEXT, alias="MODERATION_REFUSAL_TEXT", min_length=1, max_length=500
    )
    # chatbot-local only (with ALLOW_LOOPBACK_ISSUER): a small deterministic guardrail instead of Bedrock.
    local_fake_guardrail: bool = Field(default=False, alias="LOCAL_FAKE_GUARDRAIL")


class ResourceSettings(_EnvModel):
    table_name: OptionalStr = Field(default=None, alias="TABLE_NAME")
    kms_key_id: OptionalStr = Field(default=None, alias="KMS_KEY_ID")
    session_token_secret_arn: OptionalStr = Field(default=None, alias="SESSION_TOKEN_SECRET_ARN")
    user_id_pepper_secret_arn: OptionalStr = Field(default=None, alias="USER_ID_PEPPER_SECRET_ARN")
    model_api_key_secret_arn: OptionalStr = Field(default=None, alias="MODEL_API_KEY_SECRET_ARN")
    # The cleanup function's own name: its scheduled run starts one run per expiry shard (unset: in-process).
    cleanup_function: OptionalStr = Field(default=None, alias="CLEANUP_FUNCTION")


class EdgeSettings(_EnvModel):
    """CloudFront and AWS WAF in front of the HTTP API (docs/edge.md).

    With ``waf`` every request must carry the origin header whose value CloudFront adds from the
    origin secret; the authorizer and the chat function refuse any other request.
    """

    edge_protection: Literal["none", "waf"] = Field(default="none", alias="EDGE_PROTECTION")
    edge_origin_secret_arn: OptionalStr = Field(default=None, alias="EDGE_ORIGIN_SECRET_ARN")
    # How long a container keeps the origin secret's values: a value removed from the secret (the end
    # of a rotation) is refused at the latest this long afterwards.
    edge_origin_secret_max_age_seconds: int = Field(
        default=300, alias="EDGE_ORIGIN_SECRET_MAX_AGE_SECONDS", ge=1, le=900
    )

    @property
    def edge_enabled(self) -> bool:
        return self.edge_protection == "waf"


class StreamSettings(_EnvModel):
    """The WebSocket API's function names and callback URL (docs/streaming.md)."""

    # The worker the stream function hands a claimed turn to (an asynchronous invoke).
    stream_worker_function: OptionalStr = Field(default=None, alias="STREAM_WORKER_FUNCTION")
    # The API Gateway management API of the WebSocket stage (https://{api}.execute-api.{region}.amazonaws.com/v1).
    stream_callback_url: OptionalStr = Field(default=None, alias="STREAM_CALLBACK_URL")


class Settings(
    OidcSettings,
    LimitSettings,
    QuotaSettings,
    ModelSettings,
    ModerationSettings,
    ResourceSettings,
    EdgeSettings,
    StreamSettings,
):
    allow_anonymous: bool = Field(default=False, alias="ALLOW_ANONYMOUS")
    allowed_origins: CsvList = Field(default=(), alias="ALLOWED_ORIGINS")
    pii_masking: bool = Field(default=True, alias="PII_MASKING")
    # The WebSocket API's URL that stream tickets point at (wss://...; ws:// on a loopback host in local runs).
    # Unset: no streaming, and the stream-ticket route answers like an unknown route.
    stream_url: OptionalStr = Field(default=None, alias="STREAM_URL")

    @model_validator(mode="after")
    def _check_model_endpoint(self) -> Settings:
        if self.openai_base_url is not None:
            # Local runs (ALLOW_LOOPBACK_ISSUER) may point at an http server on a loopback host.
            require_secure_url("OPENAI_BASE_URL", self.openai_base_url, allow_loopback_http=self.loopback_http_allowed)
        if self.stream_callback_url is not None:
            # Locally the management API is chatbot-local's WebSocket server, on a loopback host.
            require_secure_url(
                "STREAM_CALLBACK_URL", self.stream_callback_url, allow_loopback_http=self.loopback_http_allowed
            )
        return self

    @model_validator(mode="after")
    def _check_stream_url(self) -> Settings:
        if self.stream_url is not None:
            _require_websocket_url(self.stream_url, allow_loopback_ws=self.loopback_http_allowed)
        return self

    @model_validator(mode="after")
    def _check_moderation(self) -> Settings:
        if self.local_fake_guardrail:
            if not self.loopback_http_allowed:
                raise ValueError("LOCAL_FAKE_GUARDRAIL is for local runs only")
            if not self.moderation_enabled:
                raise ValueError("LOCAL_FAKE_GUARDRAIL needs MODERATION=guardrail")
        elif self.moderation_enabled and self.bedrock_guardrail_id is None:
            # Fail closed: moderation asked for and no guardrail to apply would let every turn through.
            raise ValueError(f"MODERATION=guardrail needs BEDROCK_GUARDRAIL_ID (MODEL_PROVIDER={self.model_provider})")
        return self

    @model_validator(mode="after")
    def _check_edge(self) -> Settings:
        if self.edge_enabled and self.edge_origin_secret_arn is None:
            raise ValueError("EDGE_PROTECTION=waf needs EDGE_ORIGIN_SECRET_ARN")
        return self

    def require(self, field: str) -> str:
        """Return a resource name the running code cannot do without, or fail with its variable name."""
        value = getattr(self, field)
        if not value:
            alias = type(self).model_fields[field].alias
            raise RuntimeError(f"{alias} is not configured")
        return str(value)


@functools.cache
def get_settings() -> Settings:
    """Settings from the environment, validated once per container."""
    return Settings.model_validate(dict(os.environ))
