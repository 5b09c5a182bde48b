"""What callers see of stored records: the contract's Session and Message shapes."""

from __future__ import annotations

from chatbot_security.conversation.models import Message, Session
from chatbot_security.conversation.sealing import open_record
from chatbot_security.platform.observability import logger
from chatbot_security.storage.records import MessageRecord, SessionRecord, rfc3339


def session_view(record: SessionRecord) -> Session:
    return Session(
        session_id=record.session_id,
        created_at=rfc3339(created_ms(record) / 1000),
        expires_at=rfc3339(record.expires_at),
        message_count=record.message_count,
    )


def message_view(key: bytes, record: MessageRecord) -> Message:
    """The stored message; one that fails to open is served as unreadable, not as a failed page."""
    content = open_record(key, record)
    if content is None:
        logger.warning("unreadable message", extra={"error_type": "DecryptionError"})
        return Message(
            message_id=record.message_id,
            role="user" if record.role == "user" else "assistant",
            content="",
            created_at=created_at(record),
            unreadable=True,
        )
    return Message(
        message_id=record.message_id,
        role=record.role,  # type: ignore[arg-type]
        content=content,
        created_at=created_at(record),
    )


def created_at(record: MessageRecord) -> str:
    """The message's time as RFC 3339; the epoch when the stored value is no representable time."""
    try:
        return rfc3339(record.created_at / 1000)
    except (OverflowError, OSError, ValueError):
        return rfc3339(0)


def created_ms(record: SessionRecord) -> int:
    return record.created_ms or record.created_at * 1000
