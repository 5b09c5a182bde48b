"""Opaque pagination cursors, bound by an HMAC to what they page (a session's messages, or one owner's
sessions) so they cannot be bent to another session or another user."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct
import uuid

from chatbot_security.conversation.errors import SchemaError

_MAC_BYTES = 16
NOT_A_CURSOR = "cursor: must be a next_cursor of this listing"


def encode_cursor(key: bytes, session_id: str, last_seq: int) -> str:
    payload = struct.pack(">I", last_seq)
    mac = hmac.digest(key, session_id.encode() + b"\x00" + payload, hashlib.sha256)[:_MAC_BYTES]
    return base64.urlsafe_b64encode(payload + mac).rstrip(b"=").decode()


def decode_cursor(key: bytes, session_id: str, cursor: str) -> int:
    """The last sequence number the cursor's page ended on; 422 for anything not minted for this session."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError) as error:
        raise SchemaError(NOT_A_CURSOR) from error
    if len(raw) != 4 + _MAC_BYTES:
        raise SchemaError(NOT_A_CURSOR)
    payload, mac = raw[:4], raw[4:]
    expected = hmac.digest(key, session_id.encode() + b"\x00" + payload, hashlib.sha256)[:_MAC_BYTES]
    if not hmac.compare_digest(mac, expected):
        raise SchemaError(NOT_A_CURSOR)
    return int(struct.unpack(">I", payload)[0])


_SESSIONS = b"sessions\x00"
_SESSION_PAYLOAD = struct.Struct(">Q16s")  # creation time in ms, session id


def encode_session_cursor(key: bytes, owner_key: str, created_ms: int, session_id: str) -> str:
    """A cursor after the session (``created_ms``, ``session_id``) in ``owner_key``'s listing."""
    payload = _SESSION_PAYLOAD.pack(created_ms, uuid.UUID(session_id).bytes)
    mac = hmac.digest(key, _SESSIONS + owner_key.encode() + b"\x00" + payload, hashlib.sha256)[:_MAC_BYTES]
    return base64.urlsafe_b64encode(payload + mac).rstrip(b"=").decode()


def decode_session_cursor(key: bytes, owner_key: str, cursor: str) -> tuple[int, str]:
    """(creation time in ms, session id) of the last session listed; 422 for anything not minted for
    this owner's listing."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError) as error:
        raise SchemaError(NOT_A_CURSOR) from error
    if len(raw) != _SESSION_PAYLOAD.size + _MAC_BYTES:
        raise SchemaError(NOT_A_CURSOR)
    payload, mac = raw[: _SESSION_PAYLOAD.size], raw[_SESSION_PAYLOAD.size :]
    expected = hmac.digest(key, _SESSIONS + owner_key.encode() + b"\x00" + payload, hashlib.sha256)[:_MAC_BYTES]
    if not hmac.compare_digest(mac, expected):
        raise SchemaError(NOT_A_CURSOR)
    created_ms, session_id = _SESSION_PAYLOAD.unpack(payload)
    return int(created_ms), str(uuid.UUID(bytes=session_id))


_EXPORT = b"export\x00"
_EXPORT_PAYLOAD = struct.Struct(">Q16sI")  # creation time in ms and id of the session to resume, last seq given


def encode_export_cursor(key: bytes, owner_key: str, created_ms: int, session_id: str, after_seq: int) -> str:
    """A cursor into ``owner_key``'s export: resume in the session (``created_ms``, ``session_id``) after
    message ``after_seq``, then go on with the sessions created after it."""
    payload = _EXPORT_PAYLOAD.pack(created_ms, uuid.UUID(session_id).bytes, after_seq)
    mac = hmac.digest(key, _EXPORT + owner_key.encode() + b"\x00" + payload, hashlib.sha256)[:_MAC_BYTES]
    return base64.urlsafe_b64encode(payload + mac).rstrip(b"=").decode()


def decode_export_cursor(key: bytes, owner_key: str, cursor: str) -> tuple[int, str, int]:
    """(creation time in ms, session id, last sequence number given) of an export cursor; 422 for anything
    not minted for this owner's export."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError) as error:
        raise SchemaError(NOT_A_CURSOR) from error
    if len(raw) != _EXPORT_PAYLOAD.size + _MAC_BYTES:
        raise SchemaError(NOT_A_CURSOR)
    payload, mac = raw[: _EXPORT_PAYLOAD.size], raw[_EXPORT_PAYLOAD.size :]
    expected = hmac.digest(key, _EXPORT + owner_key.encode() + b"\x00" + payload, hashlib.sha256)[:_MAC_BYTES]
    if not hmac.compare_digest(mac, expected):
        raise SchemaError(NOT_A_CURSOR)
    created_ms, session_id, after_seq = _EXPORT_PAYLOAD.unpack(payload)
    return int(created_ms), str(uuid.UUID(bytes=session_id)), int(after_seq)
