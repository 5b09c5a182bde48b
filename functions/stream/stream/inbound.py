"""Client frames: size, UTF-8, JSON and schema checked in that order, before any data access.

A ``sendMessage`` frame is ``{"action": "sendMessage", "content": str, "client_message_id": UUID?}``: the
HTTP message body plus the action, held to the same model and the same 422 messages. API Gateway routes
a frame on its ``action``; anything it cannot route (not JSON, no or another action) reaches ``$default``.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from chatbot_security.conversation.errors import BadRequestError, PayloadTooLargeError, SchemaError
from chatbot_security.conversation.models import MessageRequest
from chatbot_security.conversation.schema_errors import describe
from chatbot_security.platform.strict_json import loads_strict

# API Gateway's limit on a WebSocket message; a larger one is refused with an error frame.
MAX_FRAME_BYTES = 128 * 1024
MAX_JSON_DEPTH = 32
SEND_MESSAGE = "sendMessage"
UNKNOWN_ACTION = f"action: must be {SEND_MESSAGE}"


def parse_send_message(body: object, is_base64: bool, max_message_chars: int) -> MessageRequest:
    """The message a ``sendMessage`` frame carries, or the error its frame deserves."""
    frame = parse_frame(body, is_base64)
    if frame.pop("action", None) != SEND_MESSAGE:
        raise SchemaError(UNKNOWN_ACTION)
    try:
        request = MessageRequest.model_validate(frame)
    except ValidationError as error:
        problems = [{**problem, "loc": ("body", *problem["loc"])} for problem in error.errors()]
        raise SchemaError(describe(problems)) from None
    if len(request.content) > max_message_chars:
        raise SchemaError(f"content: at most {max_message_chars} characters")
    return request


def refusal_of_unroutable(body: object, is_base64: bool) -> Exception:
    """Why a frame reached ``$default``: too large, not JSON, or no action this API has."""
    try:
        parse_frame(body, is_base64)
    except (BadRequestError, PayloadTooLargeError, SchemaError) as error:
        return error
    return SchemaError(UNKNOWN_ACTION)


def parse_frame(body: object, is_base64: bool) -> dict[str, Any]:
    """A text frame holding one JSON object of at most MAX_FRAME_BYTES."""
    if not isinstance(body, str) or is_base64:
        raise BadRequestError()  # an empty or binary frame: the protocol is JSON text
    if len(body) > MAX_FRAME_BYTES:  # at least one byte per character
        raise PayloadTooLargeError()
    try:
        raw = body.encode("utf-8", errors="strict")
    except UnicodeEncodeError:  # lone surrogates
        raise BadRequestError() from None
    if len(raw) > MAX_FRAME_BYTES:
        raise PayloadTooLargeError()
    try:
        frame = loads_strict(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadRequestError() from None
    if _depth(frame) > MAX_JSON_DEPTH:
        raise BadRequestError()
    if not isinstance(frame, dict):
        raise SchemaError(describe([{"type": "model_attributes_type", "loc": ("body",)}]))
    return frame


def _depth(value: object) -> int:
    """How deep arrays and objects nest in a parsed value, without recursion."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            deepest = max(deepest, depth)
            pending.extend((child, depth + 1) for child in children)
    return deepest
