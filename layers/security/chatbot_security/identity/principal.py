"""Who is calling: the identity the authorizer established, passed to the chat function as context.

The authorizer's simple response carries only flat string/number/boolean values, so the principal
is serialised to a small set of keys and parsed back, strictly, by the chat function. The context
also carries the credential's expiry: API Gateway may serve a cached "allow" for up to the
authorizer cache TTL, and the chat function refuses a context whose credential has expired since.

A frozen dataclass checked by hand rather than a pydantic model: the authorizer builds one per
request and must start without pydantic (docs/performance.md). Construction refuses, with a
``ValueError``, any field of the wrong type or out of bounds, exactly as strictly as the context parser.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

PrincipalKind = Literal["user", "anonymous"]
PRINCIPAL_KINDS = frozenset({"user", "anonymous"})
MAX_SUBJECT_LENGTH = 512
MAX_ISSUER_LENGTH = 2048
MAX_ROLES = 100
MAX_ROLE_LENGTH = 256
# Clock skew tolerated on a credential's expiry, here and in the access-token verifier.
EXPIRY_LEEWAY_SECONDS = 60


@dataclass(frozen=True, slots=True)
class Principal:
    kind: PrincipalKind
    # For users: the OIDC `sub`; for anonymous callers: their session id.
    subject: str
    issuer: str = ""
    roles: tuple[str, ...] = ()
    mfa: bool = False
    # Set for anonymous callers only: the one session their token opens.
    session_id: str | None = None
    # When the credential stops being valid (epoch seconds); None when unknown.
    expires_at: int | None = None

    def __post_init__(self) -> None:
        invalid = _invalid_fields(self)
        if invalid:
            raise ValueError(f"invalid principal: {', '.join(invalid)}")

    # model_dump and model_copy are named like a pydantic model's, for callers written against one.
    def model_dump(self, *, exclude: Collection[str] = ()) -> dict[str, Any]:
        """The fields as a dict."""
        return {name: value for name, value in asdict(self).items() if name not in exclude}

    def model_copy(self, *, update: Mapping[str, Any]) -> Principal:
        """A copy with some fields changed, validated like any new principal."""
        return replace(self, **update)

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
        except (TypeError, ValueError) as error:
            raise ValueError("invalid authorizer context") from error
        moment = time.time() if now is None else now
        if principal.expires_at is not None and principal.expires_at + EXPIRY_LEEWAY_SECONDS <= moment:
            raise ValueError("the credential behind this authorizer context has expired")
        return principal


def _invalid_fields(principal: Principal) -> list[str]:
    """The fields of the wrong type or out of bounds: exact types (a bool is no number), bounded lengths."""
    kind, subject, issuer, roles = principal.kind, principal.subject, principal.issuer, principal.roles
    session_id, expires_at = principal.session_id, principal.expires_at
    checks = {
        "kind": type(kind) is str and kind in PRINCIPAL_KINDS,
        "subject": type(subject) is str and 1 <= len(subject) <= MAX_SUBJECT_LENGTH,
        "issuer": type(issuer) is str and len(issuer) <= MAX_ISSUER_LENGTH,
        "roles": type(roles) is tuple
        and len(roles) <= MAX_ROLES
        and all(type(role) is str and len(role) <= MAX_ROLE_LENGTH for role in roles),
        "mfa": type(principal.mfa) is bool,
        "session_id": session_id is None or type(session_id) is str,
        "expires_at": expires_at is None or (type(expires_at) is int and expires_at >= 0),
    }
    return [name for name, valid in checks.items() if not valid]
