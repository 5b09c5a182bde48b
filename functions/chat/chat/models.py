"""Request and response models of the chat API (DESIGN.md section 3)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import UUID4, AfterValidator, BaseModel, ConfigDict, Field, Strict

# C0 and C1 controls except tab and newline, plus the bidirectional embedding, override and
# isolate characters (Trojan Source). Carriage return is rejected too: newline is the line break.
_FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
HARD_MAX_MESSAGE_CHARS = 100_000


def _no_forbidden_characters(value: str) -> str:
    if _FORBIDDEN.search(value):
        raise ValueError("contains control or bidirectional override characters")
    if not value.strip():
        raise ValueError("must not be blank")
    return value


MessageText = Annotated[
    str, Strict(), Field(min_length=1, max_length=HARD_MAX_MESSAGE_CHARS), AfterValidator(_no_forbidden_characters)
]


class MessageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: MessageText
    client_message_id: UUID4 | None = None


class Session(BaseModel):
    session_id: str
    created_at: str
    expires_at: str
    message_count: int


class AnonymousSession(Session):
    session_token: str


class SessionList(BaseModel):
    sessions: list[Session]


class Message(BaseModel):
    message_id: str
    role: Literal["user", "assistant"]
    content: str
    created_at: str


class Turn(BaseModel):
    user_message: Message
    assistant_message: Message


class MessagePage(BaseModel):
    messages: list[Message]
    next_cursor: str | None


class ErrorDetail(BaseModel):
    code: str
    message: str
    request_id: str


class ErrorBody(BaseModel):
    error: ErrorDetail
