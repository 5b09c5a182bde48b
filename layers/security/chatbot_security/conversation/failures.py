"""Every failure of a request becomes the contract's error, in one place, for both front doors.

The HTTP API turns it into a response (status, ``Retry-After``, the error body); the streaming API
into an ``error`` frame with the same body. Failures with a 5xx status are logged here, once, by
type and code only: never the message, which may quote input.
"""

from __future__ import annotations

from typing import Any

from chatbot_security.conversation.errors import ChatbotError, ServiceUnavailableError
from chatbot_security.platform.observability import logger
from chatbot_security.platform.transient_errors import is_transient


def as_chatbot_error(error: BaseException) -> ChatbotError:
    """The contract's error for ``error``: itself when it is one; 503 when a dependency was temporarily
    unavailable (AWS throttled, failed or timed out beyond the SDK's retries); otherwise a generic 500."""
    if isinstance(error, ChatbotError):
        if error.status >= 500:
            logger.error("request failed", extra={"error_code": error.code})
        return error
    if is_transient(error):
        logger.warning("dependency unavailable", extra={"error_type": type(error).__name__})
        return ServiceUnavailableError()
    logger.error("unhandled error", extra={"error_type": type(error).__name__})
    return ChatbotError()


def error_payload(error: ChatbotError, request_id: str) -> dict[str, Any]:
    """The contract's error body: a code, a generic message and the request id, nothing else."""
    return {"error": {"code": error.code, "message": error.message, "request_id": request_id}}
