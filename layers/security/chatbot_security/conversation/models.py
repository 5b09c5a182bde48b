"""Request and response models of the chat API (docs/contract.md section 3)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import UUID4, AfterValidator, BaseModel, ConfigDict, Field, Strict

from chatbot_security.privacy.text_policy import is_visibly_blank, refused_character

# C0 and C1 controls except tab and newline, plus the bidirectional embedding, override and
# isolate characters (Trojan Source). Carriage return is rejected too: newline is the line break.
FORBIDDEN_CHARACTERS = "\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069"
_ALLOWED_TEXT = f"^[^{FORBIDDEN_CHARACTERS}]*$"
HARD_MAX_MESSAGE_CHARS = 100_000


def _visible_text(value: str) -> str:
    """Invisible and control Unicode refused (chatbot_security.privacy.text_policy); the reason names a rule,
    never the character or the text."""
    reason = refused_character(value)
    if reason is not None:
        raise ValueError(f"must not contain a {reason}")
    if is_visibly_blank(value):
        raise ValueError("must not be blank")
    return value


MessageText = Annotated[
    str,
    Strict(),
    Field(
        min_length=1,
        max_length=HARD_MAX_MESSAGE_CHARS,
        pattern=_ALLOWED_TEXT,
        description=(
            "At most MAX_MESSAGE_CHARS characters (default 4000); not blank (at least one visible "
            "character); no control characters other than newline and tab; no bidirectional controls, "
            "zero-width or tag characters, Unicode line separators or noncharacters, except the joiners, "
            "variation selectors and flag tags that languages and emoji need (see docs/data-protection.md)."
        ),
    ),
    AfterValidator(_visible_text),
]


class MessageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: MessageText
    client_message_id: UUID4 | None = Field(
        default=None,
        description="Optional idempotency key: a repeat in the same session returns the first answer again.",
    )


class Session(BaseModel):
    session_id: str = Field(description="UUIDv4")
    created_at: str = Field(description="RFC 3339")
    expires_at: str = Field(description="RFC 3339: the earlier of the absolute and the idle expiry")
    message_count: int


class AnonymousSession(Session):
    session_token: str = Field(description="Bearer token that opens this session only, until it expires")


class SessionList(BaseModel):
    sessions: list[Session] = Field(description="Oldest first")
    next_cursor: str | None = Field(description="Opaque; valid for your listing only. null on the last page")


class Message(BaseModel):
    message_id: str
    role: Literal["user", "assistant"]
    content: str = Field(description="Plain text, as stored (personal data masked); never HTML")
    created_at: str = Field(description="RFC 3339")
    unreadable: bool = Field(
        default=False,
        # Present (and true) only on a message whose stored ciphertext did not open: absent otherwise.
        exclude_if=lambda value: not value,
        description=(
            "Present, and true, only when the stored message could not be decrypted (damaged, or altered "
            "by someone with write access to the table): its content is then empty, and its role and time "
            "are as stored, unverified. The other messages of the page are unaffected."
        ),
    )

    moderated: bool = Field(
        default=False,
        exclude_if=lambda value: not value,
        description=(
            "Present, and true, only on an assistant message whose answer moderation replaced: its content is "
            "then the configured refusal text. Absent otherwise."
        ),
    )
    interrupted: bool = Field(
        default=False,
        exclude_if=lambda value: not value,
        description=(
            "Present, and true, only on an assistant message whose streamed answer was cut short (the client "
            "went away): its content is what had been written until then. Absent otherwise."
        ),
    )


class Turn(BaseModel):
    user_message: Message
    assistant_message: Message


class MessagePage(BaseModel):
    messages: list[Message] = Field(description="Oldest first")
    next_cursor: str | None = Field(description="Opaque; valid for this session only. null on the last page")


class ErrorDetail(BaseModel):
    code: str
    message: str
    request_id: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class GatewayError(BaseModel):
    """Answers API Gateway makes itself (401, 403 of a denied authorizer, 404 of an unknown route)."""

    message: str


class UsageReport(BaseModel):
    """``GET /v1/usage``: the caller's model tokens today."""

    period: str = Field(description="The UTC day counted, YYYY-MM-DD")
    tokens_used: int = Field(
        description="Input and output tokens used today (a turn being answered counts its reservation)"
    )
    tokens_limit: int = Field(
        description=(
            "The limit that binds you today: your daily quota, or less when the deployment's daily budget has "
            "less left (then what you used plus what it has left)"
        )
    )
