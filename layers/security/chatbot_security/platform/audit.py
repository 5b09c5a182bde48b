"""Audit events: one structured log record for every admin action and every erasure.

Each event names who acted and on whom by their pseudonymous owner hash (the ``owner_key`` of their
table items, never a ``sub``, issuer, session id or IP), how many sessions it touched and how it ended.
The hashes are written with letters only (hex digits ``0``-``9`` as ``g``-``p``): every redaction
pattern of the log formatter needs digits, an ``@`` or a dot, so no pattern can take an audit field
apart. ``tr g-p 0-9`` turns one back into the table's ``owner_key`` (docs/operations.md).
"""

from __future__ import annotations

from typing import Literal

from chatbot_security.platform.observability import logger

AUDIT_MESSAGE = "audit"
Action = Literal["admin_erase_user", "delete_session", "erase_own_data"]
Outcome = Literal["erased", "incomplete", "denied", "not_found"]

_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def pseudonym(owner_key: str) -> str:
    """An owner hash (lowercase hex) written with letters only."""
    return owner_key.lower().translate(_LETTERS)


def record(action: Action, *, actor: str, target: str | None, count: int, outcome: Outcome) -> None:
    """Write one audit event; ``actor`` and ``target`` are owner hashes (``target`` None when unknown)."""
    event: dict[str, str | int | None] = {
        "action": action,
        "actor": pseudonym(actor),
        "target": pseudonym(target) if target is not None else None,
        "count": count,
        "outcome": outcome,
    }
    logger.info(AUDIT_MESSAGE, extra={"audit": event})
