"""Server frames pushed through the connection's callback URL: ``delta``, ``done`` and ``error``.

Every frame is JSON text with a ``type``; an error frame carries the same body as an HTTP error
(``code``, a generic ``message`` that never echoes the input, ``request_id``).
"""

from __future__ import annotations

import json
from typing import Any

from chatbot_security.conversation.errors import ChatbotError
from chatbot_security.conversation.models import Turn


def error_frame(error: ChatbotError, request_id: str) -> bytes:
    return _encode({"type": "error", "error": {"code": error.code, "message": error.message, "request_id": request_id}})


def delta_frame(text: str) -> bytes:
    return _encode({"type": "delta", "text": text})


def done_frame(turn: Turn) -> bytes:
    """The stored turn, in the shape of the HTTP 201 body."""
    return _encode({"type": "done", "turn": turn.model_dump(mode="json")})


def _encode(frame: dict[str, Any]) -> bytes:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
