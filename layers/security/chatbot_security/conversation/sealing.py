"""Messages at rest: sealed with the session's data key, bound to everything their item says."""

from __future__ import annotations

from chatbot_security.conversation.model_providers import ChatMessage
from chatbot_security.platform.observability import logger
from chatbot_security.privacy import crypto
from chatbot_security.storage.records import MessageRecord

MESSAGE_ROLES = ("user", "assistant")


def binding_of(record: MessageRecord) -> crypto.MessageBinding:
    return crypto.MessageBinding(record.session_id, record.message_id, record.role, record.seq, record.created_at)


def sealed_record(key: bytes, binding: crypto.MessageBinding, text: str) -> MessageRecord:
    """The stored form of a new message: its ciphertext bound to everything its item says."""
    return MessageRecord(
        binding.session_id,
        binding.seq,
        binding.message_id,
        binding.role,
        binding.created_ms,
        crypto.seal(key, binding, text),
    )


def open_record(key: bytes, record: MessageRecord) -> str | None:
    """The plaintext of a stored message, or None when it does not open (moved, rewritten or damaged).

    Version 2 ciphertexts bind the role, the position and the time, so a message whose role was
    rewritten does not open; a version 1 one (older messages) must at least carry a role we know.
    """
    if record.role not in MESSAGE_ROLES:
        return None
    try:
        return crypto.open_sealed(key, binding_of(record), record.content)
    except crypto.DecryptionError:
        return None


def readable_history(key: bytes, records: list[MessageRecord]) -> list[ChatMessage]:
    """The history the model sees: messages that do not open are left out, never guessed at."""
    history = []
    for record in records:
        content = open_record(key, record)
        if content is not None:
            history.append(ChatMessage(role=record.role, content=content))  # type: ignore[arg-type]
    if len(history) < len(records):
        logger.warning("unreadable messages left out of the history", extra={"count": len(records) - len(history)})
    return history
