"""Who is acting, without the credential: built from the Principal (HTTP) or the $connect context (stream)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Owner:
    key: str  # pseudonymous owner key, as stored on sessions
    kind: Literal["user", "anonymous"]
    session_id: str | None = None  # anonymous: the one session it may touch
    is_admin: bool = False
