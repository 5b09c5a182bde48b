"""Who is calling: the identity the authorizer established, passed to the chat function as context.

The authorizer's simple response carries only flat string/number/boolean values, so the principal
is serialised to a small set of keys and parsed back, strictly, by the chat function. The context
also carries the credential's expiry: API Gateway may serve a cached "allow" for up to the
authorizer cache TTL, and the chat function refuses a context whose credential has expired since.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

PrincipalKind = Literal["user", "anonymous"]
MAX_SUBJECT_LENGTH = 512
MAX_ROLES = 100
MAX_ROLE_LENGTH = 256
# Clock skew tolerated on a credential's expiry, here and in the access-token verifier.
EXPIRY_LEEWAY_SECONDS = 60


class Principal(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: PrincipalKind
    # For users: the OIDC `sub`; for anonymous callers: their session id.
    subject: str = Field(min_length=1, max_length=MAX_SUBJECT_LENGTH)
    issuer: str = Field(default="", max_length=2048)
    roles: tuple[str, ...] = ()
    mfa: bool = False
    # Set for anonymous callers only: the one session their token opens.
    session_id: str | None = None
    # When the credential stops being valid (epoch seconds); None when unknown.
    expires_at: int | None = Field(default=None, ge=0)

    @field_validator("roles")
    @classmethod
    def _bounded_roles(cls, roles: tuple[str, ...]) -> tuple[str, ...]:
        if len(roles) > MAX_ROLES or any(len(role) > MAX_ROLE_LENGTH for role in roles):
            raise ValueError("too many or too long roles")
        return roles

    def to_authorizer_context(self) -> dict[str, str | bool | int]:
        context: dict[str, str | bool | int] = {
            "kind": self.kind,
            "subject": self.subject,
            "issuer": self.issuer,
            "roles": json.dumps(list(self.roles), separators=(",", ":")),
            "mfa": self.mfa,
            "session_id": self.session_id or "",
        }
        if self.expires_at is not None:
            context["expires_at"] = self.expires_at
        return context

    @classmethod
    def from_authorizer_context(cls, context: Any, now: float | None = None) -> Principal:
        """Parse the context API Gateway passes on; raises ValueError on anything unexpected.

        A context whose credential has expired (beyond the leeway) is refused: that is an "allow"
        served from the authorizer's result cache after the token stopped being valid.
        """
        if not isinstance(context, dict):
            raise ValueError("missing authorizer context")
        try:
            roles = json.loads(context.get("roles") or "[]")
            expires_at = context.get("expires_at")
            principal = cls(
                kind=context.get("kind"),  # type: ignore[arg-type]
                subject=context.get("subject"),  # type: ignore[arg-type]
                issuer=context.get("issuer") or "",
                roles=tuple(roles) if isinstance(roles, list) else (),
                mfa=context.get("mfa") in (True, "true"),
                session_id=context.get("session_id") or None,
                expires_at=int(expires_at) if isinstance(expires_at, int | str) and expires_at != "" else None,
            )
        except (ValidationError, TypeError, ValueError) as error:
            raise ValueError("invalid authorizer context") from error
        moment = time.time() if now is None else now
        if principal.expires_at is not None and principal.expires_at + EXPIRY_LEEWAY_SECONDS <= moment:
            raise ValueError("the credential behind this authorizer context has expired")
        return principal
