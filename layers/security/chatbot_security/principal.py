"""Who is calling: the identity the authorizer established, passed to the chat function as context.

The authorizer's simple response carries only flat string/number/boolean values, so the principal
is serialised to a small set of keys and parsed back, strictly, by the chat function.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

PrincipalKind = Literal["user", "anonymous"]


class Principal(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: PrincipalKind
    # For users: the OIDC `sub`; for anonymous callers: their session id.
    subject: str = Field(min_length=1, max_length=512)
    issuer: str = Field(default="", max_length=2048)
    roles: tuple[str, ...] = ()
    mfa: bool = False
    # Set for anonymous callers only: the one session their token opens.
    session_id: str | None = None

    @field_validator("roles")
    @classmethod
    def _bounded_roles(cls, roles: tuple[str, ...]) -> tuple[str, ...]:
        if len(roles) > 100 or any(len(role) > 256 for role in roles):
            raise ValueError("too many or too long roles")
        return roles

    def to_authorizer_context(self) -> dict[str, str | bool]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "issuer": self.issuer,
            "roles": json.dumps(list(self.roles), separators=(",", ":")),
            "mfa": self.mfa,
            "session_id": self.session_id or "",
        }

    @classmethod
    def from_authorizer_context(cls, context: Any) -> Principal:
        """Parse the context API Gateway passes on; raises ValueError on anything unexpected."""
        if not isinstance(context, dict):
            raise ValueError("missing authorizer context")
        try:
            roles = json.loads(context.get("roles") or "[]")
            return cls(
                kind=context.get("kind"),  # type: ignore[arg-type]
                subject=context.get("subject"),  # type: ignore[arg-type]
                issuer=context.get("issuer") or "",
                roles=tuple(roles) if isinstance(roles, list) else (),
                mfa=context.get("mfa") in (True, "true"),
                session_id=context.get("session_id") or None,
            )
        except (ValidationError, TypeError, json.JSONDecodeError) as error:
            raise ValueError("invalid authorizer context") from error
