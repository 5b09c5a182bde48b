"""The caller's own data rights: a copy of everything held about them (export), and its erasure.

No HTTP and no boto3 here. See docs/privacy.md for what is held and why the counters outlive an erasure.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from pydantic import BaseModel, Field

from chatbot_security.conversation.cursors import decode_export_cursor, encode_export_cursor
from chatbot_security.conversation.erasure import Erasure
from chatbot_security.conversation.errors import NotFoundError, ServiceUnavailableError
from chatbot_security.conversation.models import Message, Session, UsageReport
from chatbot_security.conversation.owner import Owner, owns
from chatbot_security.conversation.ports import ConversationStore
from chatbot_security.conversation.views import created_ms, message_view, session_view
from chatbot_security.identity.identity_keys import IdentityKeys
from chatbot_security.platform import audit
from chatbot_security.privacy import crypto
from chatbot_security.storage.records import SessionRecord

DEFAULT_EXPORT_PAGE = 50
# What one page's messages may add to the function's response, measured as the Lambda runtime writes it
# (the body is a JSON string inside the response document, escaped once more). Lambda refuses a response
# over 6 MB. A page takes a message only while it fits in this budget, except its first message, which is
# no larger than the turn response that once returned it (a user message is at most 100,000 characters,
# 1.2 MB escaped twice); so the messages, the sessions' fields and the envelope stay under the limit.
EXPORT_PAGE_BYTES = 4 * 1024 * 1024


class ExportedSession(Session):
    messages: list[Message] = Field(description="Oldest first; a session split across pages continues on the next")


class ExportPage(BaseModel):
    sessions: list[ExportedSession] = Field(
        description="Your live sessions, oldest first, each with this page's share of its messages"
    )
    next_cursor: str | None = Field(description="Opaque; valid for your export only. null on the last page")
    usage: UsageReport | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="Today's token usage, the body GET /v1/usage answers (on every page)",
    )


# Today's usage of a caller, as GET /v1/usage reports it.
UsageSource = Callable[[Owner], UsageReport]


@dataclass(frozen=True)
class _Position:
    """Where a page starts: in ``session_id`` after message ``after_seq``, then the sessions after it."""

    created_ms: int
    session_id: str
    after_seq: int


@dataclass
class DataRights:
    store: ConversationStore
    data_keys: crypto.DataKeys
    identity: IdentityKeys
    erasure: Erasure
    clock: Callable[[], float] = time.time
    page_bytes: int = EXPORT_PAGE_BYTES
    usage: UsageSource | None = None

    # -- export -----------------------------------------------------------------------------
    def export(self, owner: Owner, limit: int = DEFAULT_EXPORT_PAGE, cursor: str | None = None) -> ExportPage:
        """One page of everything held about the owner: their live sessions, oldest first, with their
        messages decrypted. A page holds at most ``limit`` messages, visits at most ``limit`` sessions and
        stays within :data:`EXPORT_PAGE_BYTES`; a cursor only pages the export of the owner it was minted for.
        An anonymous owner exports its own session, and is refused (404) once that session is gone."""
        start = _Position(*decode_export_cursor(self.identity.cursor_key, owner.key, cursor)) if cursor else None
        positions: Iterator[_Position]
        if owner.kind == "anonymous":
            own = self._usable(owner.session_id or "", owner)
            if own is None:
                raise NotFoundError()
            first = _Position(created_ms(own), own.session_id, 0)
            positions = iter([first] if start is None else [start] if start.session_id == own.session_id else [])
        else:
            positions = self._positions(owner, start)
        page = self._page(owner, positions, limit)
        return page if self.usage is None else page.model_copy(update={"usage": self.usage(owner)})

    def _page(self, owner: Owner, positions: Iterator[_Position], limit: int) -> ExportPage:
        sessions: list[ExportedSession] = []
        messages_left, sessions_left, bytes_left = limit, limit, self.page_bytes
        for position in positions:
            if messages_left == 0 or sessions_left == 0 or bytes_left <= 0:
                return ExportPage(sessions=sessions, next_cursor=self._cursor(owner, position))
            sessions_left -= 1
            record = self._usable(position.session_id, owner)  # as it is now: ended or deleted meanwhile, skipped
            if record is None:
                continue
            records, has_more = self.store.messages(record.session_id, position.after_seq, messages_left)
            key = self.data_keys.unwrap(record.session_id, record.wrapped_key) if records else b""
            taken: list[Message] = []
            last_seq = position.after_seq
            for message_record in records:
                message = message_view(key, message_record)
                size = _payload_bytes(message)
                if size > bytes_left and (taken or sessions):
                    has_more = True  # the rest of this session goes on the next page
                    break
                taken.append(message)
                bytes_left -= size
                last_seq = message_record.seq
            if taken or position.after_seq == 0:
                sessions.append(ExportedSession(**session_view(record).model_dump(), messages=taken))
            messages_left -= len(taken)
            if has_more:
                resume = replace(position, after_seq=last_seq)
                return ExportPage(sessions=sessions, next_cursor=self._cursor(owner, resume))
        return ExportPage(sessions=sessions, next_cursor=None)

    def _positions(self, owner: Owner, start: _Position | None) -> Iterator[_Position]:
        """Where each of the owner's sessions starts, from ``start`` on, oldest first: the owner index
        lists them (eventually consistent), and the page reads each again from the table."""
        now = int(self.clock())
        after: tuple[int, str] | None = None
        if start is not None:
            yield start
            after = (start.created_ms, start.session_id)
        while True:
            listed, has_more = self.store.session_page(owner.key, now, after, DEFAULT_EXPORT_PAGE)
            yield from (_Position(created_ms(entry), entry.session_id, 0) for entry in listed)
            if not has_more or not listed:
                return
            after = (created_ms(listed[-1]), listed[-1].session_id)

    def _usable(self, session_id: str, owner: Owner) -> SessionRecord | None:
        record = self.store.get_session(session_id) if session_id else None
        if record is None or not record.is_usable(int(self.clock())):
            return None
        return record if owns(owner, record) else None

    def _cursor(self, owner: Owner, position: _Position) -> str:
        return encode_export_cursor(
            self.identity.cursor_key, owner.key, position.created_ms, position.session_id, position.after_seq
        )

    # -- erasure ----------------------------------------------------------------------------
    def erase(self, owner: Owner) -> int:
        """Erase every session of the owner (an anonymous owner: its session), their messages and
        idempotency records; the number of sessions erased. The admin erasure's path, audited like it.

        The rate and token counters are kept until they expire (docs/privacy.md): erasing must not reset
        a budget. It keeps going when one session cannot be erased now, and then answers 503
        (``Retry-After``); repeating the call finishes the job. An anonymous owner whose session is gone
        is refused (404).
        """
        if owner.kind == "anonymous":
            record = self.store.get_session(owner.session_id or "")
            if record is None or not owns(owner, record):
                raise NotFoundError()
            records = [record]
        else:
            try:
                records = self.store.sessions_of(owner.key)
            except Exception:
                audit.record("erase_own_data", actor=owner.key, target=owner.key, count=0, outcome="incomplete")
                raise
        # An anonymous owner has no live-session counter (its one session is not counted).
        erased, complete = self.erasure.erase_sessions(owner.key, records, counted=owner.kind == "user")
        outcome: audit.Outcome = "erased" if complete else "incomplete"
        audit.record("erase_own_data", actor=owner.key, target=owner.key, count=erased, outcome=outcome)
        if not complete:
            raise ServiceUnavailableError()
        return erased


def _payload_bytes(message: Message) -> int:
    """An upper bound of what ``message`` adds to the function's response: its JSON, escaped again as a
    string of the response document, every non-ASCII character as ``\\uXXXX``."""
    return len(json.dumps(message.model_dump_json())) + 1
