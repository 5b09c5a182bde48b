"""Amazon Bedrock through the Converse API, with optional Guardrails; ``ConverseStream`` for streaming
(bedrock_stream.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError
from botocore.exceptions import ConnectionError as BotoConnectionError

from chatbot_security.conversation.errors import ModelProviderError, ModelTimeoutError
from chatbot_security.conversation.model_providers.base import (
    GUARDRAIL_FALLBACK,
    HISTORY_WINDOW,
    ChatMessage,
    Deadline,
    ModelAnswer,
    ModelStream,
    retry_read_timeout,
    system_prompt,
)
from chatbot_security.conversation.model_providers.bedrock_results import (
    check_input_not_blocked,
    output_replaced,
    usage_of,
)
from chatbot_security.platform.aws_clients import single_attempt_client
from chatbot_security.platform.observability import logger
from chatbot_security.platform.settings import ModelSettings

# Used only when MODEL_ID is unset (local runs against Bedrock); a deployment takes the Region's inference
# profile of the same model from template.yaml's DefaultBedrockModel mapping (a test keeps the two equal).
DEFAULT_BEDROCK_MODEL_ID = "global.anthropic.claude-haiku-5-5"
BEDROCK_RETRYABLE = frozenset(
    {"ThrottlingException", "ServiceUnavailableException", "InternalServerException", "ModelNotReadyException"}
)


class BedrockConverseModel:
    """Amazon Bedrock through the Converse API, with optional Guardrails.

    ``runtime(read_timeout)`` gives the bedrock-runtime client of one attempt: the first attempt reads for
    the whole budget, a retry only for what is left of it, so a late retry ends in a timeout (504) before
    the function's own timeout would end the invocation (a 5xx from API Gateway without the error body).
    """

    history_window = HISTORY_WINDOW

    def __init__(
        self,
        settings: ModelSettings,
        runtime: Callable[[float], Any] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._settings = settings
        self._runtime = runtime or _bedrock_runtime
        self._clock = clock
        self._sleep = sleep

    def request(self, history: Sequence[ChatMessage], user_message: str, *, streaming: bool = False) -> dict[str, Any]:
        """The Converse (or ConverseStream) request. With a guardrail its trace is on, so that an input it
        blocks can be told from an output it replaces; a stream is checked chunk by chunk before it is sent
        (``sync``), so that nothing the guardrail would block reaches the client."""
        settings = self._settings
        request: dict[str, Any] = {
            "modelId": settings.model_id or DEFAULT_BEDROCK_MODEL_ID,
            "system": [{"text": system_prompt(settings)}],
            "messages": [
                {"role": message.role, "content": [{"text": message.content}]}
                for message in (*_alternating(history), ChatMessage("user", user_message))
            ],
            "inferenceConfig": {"maxTokens": settings.model_max_tokens},
        }
        if settings.moderation_enabled and settings.bedrock_guardrail_id:
            guardrail = {
                "guardrailIdentifier": settings.bedrock_guardrail_id,
                "guardrailVersion": settings.bedrock_guardrail_version or "DRAFT",
                "trace": "enabled",
            }
            request["guardrailConfig"] = {**guardrail, "streamProcessingMode": "sync"} if streaming else guardrail
        return request

    def reply(self, history: Sequence[ChatMessage], user_message: str) -> ModelAnswer:
        response = self.call("converse", self.request(history, user_message))
        blocks = response.get("output", {}).get("message", {}).get("content", [])
        text = "".join(block["text"] for block in blocks if isinstance(block.get("text"), str))
        input_tokens, output_tokens = usage_of(response)
        if response.get("stopReason") == "guardrail_intervened":
            check_input_not_blocked(response)
            if output_replaced(response, text):
                logger.info("model answer replaced by the guardrail")
                return ModelAnswer(text or GUARDRAIL_FALLBACK, input_tokens, output_tokens, moderated=True)
        if not text:
            raise ModelProviderError()
        return ModelAnswer(text, input_tokens, output_tokens)

    def stream(self, history: Sequence[ChatMessage], user_message: str) -> ModelStream:
        from chatbot_security.conversation.model_providers.bedrock_stream import BedrockStream

        return BedrockStream(self, self.request(history, user_message, streaming=True))

    def call(
        self, operation: str, request: dict[str, Any], first_chunk: Callable[[Any], Any] | None = None
    ) -> dict[str, Any]:
        """``operation`` with retries inside the deadline. ``first_chunk(response)``, when given, reads a
        stream up to its first chunk: a failure until then is retried like a failed call, none after it."""
        budget = self._settings.model_timeout_seconds
        deadline = Deadline(budget, self._clock)
        attempt = 0
        while True:
            read_timeout = budget if attempt == 0 else retry_read_timeout(deadline.remaining())
            try:
                response: dict[str, Any] = getattr(self._runtime(read_timeout), operation)(**request)
                if first_chunk is not None:
                    response["first_chunk"] = first_chunk(response)
                return response
            except ReadTimeoutError as error:
                raise ModelTimeoutError() from error
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                code = code[:1].upper() + code[1:]  # an exception event in a stream: "throttlingException"
                if code == "ModelTimeoutException":
                    raise ModelTimeoutError() from error
                failure: Exception = error
                retryable = code in BEDROCK_RETRYABLE
            except BotoConnectionError as error:  # connect timeouts included: nothing was sent yet
                failure, retryable = error, True
            except BotoCoreError as error:
                raise ModelProviderError() from error
            delay = deadline.backoff(attempt) if retryable else None
            if delay is None:
                logger.warning("model provider failed", extra={"provider": "bedrock", "attempts": attempt + 1})
                raise ModelProviderError() from failure
            self._sleep(delay)
            attempt += 1


def _alternating(history: Sequence[ChatMessage]) -> list[ChatMessage]:
    """Converse wants user/assistant turns alternating and starting with a user message."""
    turns = list(history)
    while turns and turns[0].role != "user":
        turns.pop(0)
    if turns and turns[-1].role == "user":
        turns.pop()
    return turns


def _bedrock_runtime(timeout_seconds: float) -> Any:
    # Retries are ours (bounded by the provider's deadline); botocore makes one attempt per call.
    return single_attempt_client("bedrock-runtime", timeout_seconds)
