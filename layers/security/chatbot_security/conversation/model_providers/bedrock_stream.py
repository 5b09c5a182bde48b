"""Amazon Bedrock ``ConverseStream``: the answer chunk by chunk.

The call is retried like ``Converse`` (inside the same deadline) until the first text chunk arrives, and
never after it: a client already holds part of the answer. A read that stalls for longer than the time
budget is a timeout (504); an exception event in the stream is a provider failure (502).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NoReturn, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import ReadTimeoutError as Urllib3ReadTimeoutError

from chatbot_security.conversation.errors import ModelProviderError, ModelTimeoutError
from chatbot_security.conversation.model_providers.base import GUARDRAIL_FALLBACK, ModelAnswer, estimate_tokens
from chatbot_security.conversation.model_providers.bedrock_results import (
    check_input_not_blocked,
    output_replaced,
    usage_of,
)
from chatbot_security.conversation.model_providers.stream_base import ReleasableStream
from chatbot_security.platform.observability import logger


class _StreamingCall(Protocol):
    """The model's retried call (``BedrockConverseModel.call``), which the stream starts."""

    def call(
        self, operation: str, request: dict[str, Any], first_chunk: Callable[[Any], Any] | None = None
    ) -> dict[str, Any]: ...


class BedrockStream(ReleasableStream):
    def __init__(self, model: _StreamingCall, request: dict[str, Any]) -> None:
        super().__init__()
        self._model = model
        self._request = request
        self._stop_reason: str | None = None
        self._metadata: dict[str, Any] = {}
        self._events: Any = None

    def __iter__(self) -> Iterator[str]:
        self._start()
        response = self._model.call("converse_stream", self._request, first_chunk=self._first_chunk)
        if self._closed:
            self._release()
            return
        if response["first_chunk"] is not None:
            yield response["first_chunk"]
        while not self._closed:
            text = self._next_text()
            if text is None:
                self._finished = not self._closed
                return
            yield text

    def _first_chunk(self, response: dict[str, Any]) -> str | None:
        """Reads up to the first text chunk (or the end of an answer without text); an exception event
        until then propagates as a ClientError, so that the call is retried."""
        self._release()
        self._events = iter(response["stream"])
        self._connection = response["stream"]
        self._chunks.clear()
        self._stop_reason, self._metadata = None, {}
        text = self._next_text()
        self._finished = text is None and not self._closed
        return text

    def _next_text(self) -> str | None:
        """The next text chunk, or None at the end of the stream; records the stop reason and usage."""
        try:
            for event in self._events:
                if "contentBlockDelta" in event:
                    text = event["contentBlockDelta"].get("delta", {}).get("text")
                    if isinstance(text, str) and text:
                        self._chunks.append(text)
                        return text
                elif "messageStop" in event:
                    self._stop_reason = event["messageStop"].get("stopReason")
                elif "metadata" in event:
                    self._metadata = event["metadata"]
        except (Urllib3ReadTimeoutError, TimeoutError, ClientError, Urllib3Error, BotoCoreError, OSError,
                ValueError, AttributeError) as error:  # fmt: skip
            self._release()
            if self._closed:  # closed from another thread while a read was waiting: the end, not a failure
                return None
            self._fail(error)
        return None

    def _fail(self, error: Exception) -> NoReturn:
        if isinstance(error, (Urllib3ReadTimeoutError, TimeoutError)):
            raise ModelTimeoutError() from error
        if isinstance(error, ClientError):
            if self._chunks:  # part of the answer is out: no retry
                logger.warning("model stream failed", extra={"provider": "bedrock"})
                raise ModelProviderError() from None
            raise error  # before the first chunk: the call is retried
        raise ModelProviderError() from error

    def result(self) -> ModelAnswer:
        text = "".join(self._chunks)
        input_tokens, output_tokens = usage_of(self._metadata)
        interrupted = not self._finished
        if interrupted or not self._metadata.get("usage"):  # cut short: an upper bound of what was spent
            input_tokens = input_tokens or estimate_tokens(*_texts_of(self._request))
            output_tokens = max(output_tokens, estimate_tokens(text))
        if self._stop_reason == "guardrail_intervened":
            check_input_not_blocked(self._metadata)
            if output_replaced(self._metadata, text):
                logger.info("model answer replaced by the guardrail")
                return ModelAnswer(text or GUARDRAIL_FALLBACK, input_tokens, output_tokens, moderated=True)
        if not text and not interrupted:
            raise ModelProviderError()
        return ModelAnswer(text, input_tokens, output_tokens, interrupted=interrupted)

    def _shutdown_of(self, connection: Any) -> Callable[[], object] | None:
        shutdown: Callable[[], object] | None = getattr(getattr(connection, "_raw_stream", None), "shutdown", None)
        return shutdown


def _texts_of(request: dict[str, Any]) -> list[str]:
    blocks = [*request.get("system", []), *(block for message in request["messages"] for block in message["content"])]
    return [block["text"] for block in blocks]
