"""Domain errors. Each maps to one HTTP status and a generic, input-free message."""

from __future__ import annotations


class ChatbotError(Exception):
    status = 500
    code = "internal_error"
    message = "The request could not be completed."
    #: Seconds a client should wait before trying again (the Retry-After header), when it may.
    retry_after_seconds: int | None = None


class BadRequestError(ChatbotError):
    status = 400
    code = "bad_request"
    message = "The request body is not valid UTF-8 JSON."


class ForbiddenError(ChatbotError):
    status = 403
    code = "forbidden"
    message = "You are not allowed to do this."


class NotFoundError(ChatbotError):
    status = 404
    code = "not_found"
    message = "The resource does not exist."


class SessionFullError(ChatbotError):
    status = 409
    code = "session_full"
    message = "The session has reached its message limit; start a new session."


class TooManySessionsError(ChatbotError):
    status = 409
    code = "too_many_sessions"
    message = "You have reached the limit of live sessions; delete one first."


class IdempotencyConflictError(ChatbotError):
    status = 409
    code = "idempotency_conflict"
    message = "This client_message_id was already used for another message in this session."


class BusyError(ChatbotError):
    """A second message on a WebSocket connection while a turn streams on it (the turn goes on)."""

    status = 409
    code = "busy"
    message = "A message is already being answered on this connection; wait for it to finish."


class PayloadTooLargeError(ChatbotError):
    status = 413
    code = "payload_too_large"
    message = "The request body is too large."


class UnsupportedMediaTypeError(ChatbotError):
    status = 415
    code = "unsupported_media_type"
    message = "Send the request body as application/json."


class SchemaError(ChatbotError):
    status = 422
    code = "validation_error"
    message = "The request does not match the API schema."

    def __init__(self, message: str | None = None) -> None:
        """``message`` names the failing known field and its rule; it never holds the input."""
        super().__init__(message or self.message)
        if message:
            self.message = message


class ContentBlockedError(ChatbotError):
    """The moderation guardrail refused the user's message: nothing is stored and no model is called."""

    status = 422
    code = "content_blocked"
    message = "The message was refused by content moderation."


class RateLimitedError(ChatbotError):
    status = 429
    code = "rate_limited"
    message = "Too many requests; retry later."

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(self.message)
        self.retry_after_seconds = max(1, retry_after_seconds)


class QuotaExceededError(ChatbotError):
    """The owner's daily token quota (or the deployment's daily budget) has no room for this turn."""

    status = 429
    code = "quota_exceeded"
    message = "The daily token quota is used up; retry after the next UTC midnight."

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(self.message)
        self.retry_after_seconds = max(1, retry_after_seconds)


class ModelProviderError(ChatbotError):
    status = 502
    code = "model_error"
    message = "The model provider failed to answer."


class ModelTimeoutError(ChatbotError):
    status = 504
    code = "model_timeout"
    message = "The model provider did not answer in time."


class ServiceUnavailableError(ChatbotError):
    """DynamoDB, KMS or Secrets Manager throttled, failed or timed out beyond the SDK's retries
    (docs/resilience.md): temporary, so the client may repeat the request after Retry-After."""

    status = 503
    code = "service_unavailable"
    message = "A service the API depends on is busy; retry later."
    retry_after_seconds = 2
