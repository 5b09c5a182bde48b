"""The ``$connect`` authorizer's context: the connection's owner, session and credential expiry.

Identity is taken from the authorizer's context only, never from the frame or the query string. A
context that does not hold exactly what the authorizer puts there refuses the connection.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import UUID4, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError


def _epoch_seconds(value: object) -> object:
    """API Gateway may hand the context's numbers over as strings: digits only, nothing else."""
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return value


class ConnectContext(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)  # API Gateway adds principalId, integrationLatency

    owner: Annotated[str, Field(min_length=1, max_length=256, pattern=r"^[A-Za-z0-9_=+/.:-]+$")]
    kind: Literal["user", "anonymous"]
    session_id: UUID4
    credential_exp: Annotated[int, BeforeValidator(_epoch_seconds), Field(strict=True, ge=0)]


def connect_context(event: dict[str, Any]) -> ConnectContext | None:
    """The validated context of a ``$connect`` event, or None (the connection is refused)."""
    context = (event.get("requestContext") or {}).get("authorizer")
    if not isinstance(context, dict):
        return None
    try:
        return ConnectContext.model_validate(context)
    except ValidationError:
        return None
