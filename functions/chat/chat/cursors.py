"""Opaque pagination cursors, bound to one session by an HMAC so they cannot be bent to another."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import struct

from chatbot_security.errors import SchemaError

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
