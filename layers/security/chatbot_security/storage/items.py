"""Item mapping: records to DynamoDB items and back (attribute names in docs/architecture.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chatbot_security.storage.records import (
    COUNTED,
    MESSAGE_PREFIX,
    META,
    TURN_PENDING,
    TURN_PREFIX,
    MessageRecord,
    SessionRecord,
    TurnClaim,
    TurnRecord,
    expiry_bucket,
    message_sk,
    rfc3339,
    session_pk,
    turn_sk,
)

#: Boolean marks of a message item, bound to its ciphertext (docs/data-protection.md).
MESSAGE_FLAGS = ("moderated", "interrupted")


def session_item(session: SessionRecord) -> dict[str, Any]:
    return {
        "pk": {"S": session_pk(session.session_id)},
        "sk": {"S": META},
        "owner_key": {"S": session.owner_key},
        "created_at": {"S": rfc3339(session.created_ms / 1000 if session.created_ms else session.created_at)},
        "created_epoch": {"N": str(session.created_at)},
        "absolute_expires_at": {"N": str(session.absolute_expires_at)},
        "expires_at": {"N": str(session.expires_at)},
        "last_active_at": {"N": str(session.last_active_at)},
        "message_count": {"N": str(session.message_count)},
        "status": {"S": session.status},
        "wrapped_key": {"B": session.wrapped_key},
        "expiry_bucket": {"S": expiry_bucket(session.session_id)},
        "ttl": {"N": str(session.absolute_expires_at)},
        **({COUNTED: {"BOOL": True}} if session.live_counted else {}),
    }


def session_from_item(item: dict[str, Any], full: bool = True) -> SessionRecord:
    """A session from its table item, or (``full=False``) from the owner index, which projects neither
    the wrapped key nor whether the session is counted."""
    return SessionRecord(
        session_id=item["pk"]["S"].removeprefix("SESSION#"),
        owner_key=item["owner_key"]["S"],
        created_at=int(item["created_epoch"]["N"]),
        absolute_expires_at=int(item["absolute_expires_at"]["N"]),
        expires_at=int(item["expires_at"]["N"]),
        last_active_at=int(item["last_active_at"]["N"]),
        message_count=int(item["message_count"]["N"]),
        status=item["status"]["S"],
        wrapped_key=bytes(item["wrapped_key"]["B"]) if "wrapped_key" in item else b"",
        created_ms=epoch_ms(item["created_at"]["S"]),
        live_counted=(COUNTED in item) if full else None,
    )


def epoch_ms(timestamp: str) -> int:
    return int(datetime.fromisoformat(timestamp).timestamp() * 1000)


def message_item(message: MessageRecord, ttl: int) -> dict[str, Any]:
    item = {
        "pk": {"S": session_pk(message.session_id)},
        "sk": {"S": message_sk(message.seq)},
        "message_id": {"S": message.message_id},
        "role": {"S": message.role},
        "created_ms": {"N": str(message.created_at)},
        "content": {"B": message.content},
        "ttl": {"N": str(ttl)},
        **(
            {"input_tokens": {"N": str(message.tokens[0])}, "output_tokens": {"N": str(message.tokens[1])}}
            if message.tokens is not None
            else {}
        ),
    }
    for flag in MESSAGE_FLAGS:  # present only when true
        if getattr(message, flag):
            item[flag] = {"BOOL": True}
    return item


def turn_item(claim: TurnClaim) -> dict[str, Any]:
    return {
        "pk": {"S": session_pk(claim.session_id)},
        "sk": {"S": turn_sk(claim.request_key)},
        "state": {"S": TURN_PENDING},
        "token": {"S": claim.token},
        "fingerprint": {"S": claim.fingerprint},
        "lease_until": {"N": str(claim.lease_until)},
        "ttl": {"N": str(claim.ttl)},
    }


def turn_from_item(item: dict[str, Any]) -> TurnRecord:
    return TurnRecord(
        request_key=item["sk"]["S"].removeprefix(TURN_PREFIX),
        fingerprint=item["fingerprint"]["S"],
        state=item["state"]["S"],
        token=item["token"]["S"],
        lease_until=int(item.get("lease_until", {}).get("N", "0")),
        seq=int(item.get("seq", {}).get("N", "0")),
    )


def message_from_item(session_id: str, item: dict[str, Any]) -> MessageRecord:
    return MessageRecord(
        session_id=session_id,
        seq=int(item["sk"]["S"].removeprefix(MESSAGE_PREFIX)),
        message_id=item["message_id"]["S"],
        role=item["role"]["S"],
        created_at=int(item["created_ms"]["N"]),
        content=bytes(item["content"]["B"]),
        # Anything but a true boolean reads as a mark, so that the ciphertext (bound to the marks) refuses
        # an item whose mark was rewritten rather than the mark being dropped unnoticed.
        moderated="moderated" in item and item["moderated"] != {"BOOL": False},
        interrupted="interrupted" in item and item["interrupted"] != {"BOOL": False},
    )
