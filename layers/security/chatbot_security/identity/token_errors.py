"""Why a credential was refused. The reason is logged and counted; the token never is."""

from __future__ import annotations


class TokenRejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
