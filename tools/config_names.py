"""The binding configuration names (docs/contract.md sections 4 and 8), in one place for every test suite."""

from __future__ import annotations

DESIGN_SECTION_4 = (
    "OIDC_ISSUER",
    "OIDC_AUDIENCE",
    "OIDC_JWKS_URL",
    "OIDC_ROLES_CLAIM",
    "ADMIN_ROLE",
    "ADMIN_REQUIRE_MFA",
    "ALLOW_ANONYMOUS",
    "ALLOWED_ORIGINS",
    "SESSION_TTL_SECONDS",
    "SESSION_IDLE_SECONDS",
    "MAX_MESSAGE_CHARS",
    "MAX_BODY_BYTES",
    "MAX_MESSAGES_PER_SESSION",
    "RATE_LIMIT_PER_MINUTE",
    "ANON_SESSIONS_PER_HOUR",
    "MODEL_PROVIDER",
    "MODEL_ID",
    "MODEL_MAX_TOKENS",
    "MODEL_TIMEOUT_SECONDS",
    "BEDROCK_GUARDRAIL_ID",
    "BEDROCK_GUARDRAIL_VERSION",
    "PII_MASKING",
)

# Added by the second round (docs/contract.md section 4 lists them with the others).
SECOND_ROUND = (
    "SESSIONS_PER_HOUR",
    "MAX_LIVE_SESSIONS",
    "OIDC_REQUIRED_SCOPES",
    "EDGE_PROTECTION",
    "MODERATION",
    "TOKENS_PER_DAY",
    "ANON_TOKENS_PER_DAY",
    "DAILY_TOKEN_BUDGET",
)
CONFIGURATION_NAMES = DESIGN_SECTION_4 + SECOND_ROUND
