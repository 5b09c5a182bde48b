"""A session store whose deletes fail on demand: erasure must retry or report, never half-finish."""

from __future__ import annotations

from chatbot_security.storage.records import SessionRecord
from tools.fakes import InMemorySessionStore


class FlakyStore(InMemorySessionStore):
    """Fails ``mark_deleted`` of the listed sessions a given number of times, like a throttled table."""

    def __init__(self) -> None:
        super().__init__()
        self.failures: dict[str, int] = {}

    def mark_deleted(self, session: SessionRecord, now: int) -> None:
        if self.failures.get(session.session_id, 0) > 0:
            self.failures[session.session_id] -= 1
            raise TimeoutError("injected")
        super().mark_deleted(session, now)
