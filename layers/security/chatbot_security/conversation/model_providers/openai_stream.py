"""An OpenAI-compatible answer streamed as server-sent events (``stream: true``).

The endpoint reports usage only when asked (``stream_options.include_usage``), in a last event without
choices; where it gives none, the counts are an upper bound (:func:`estimate_tokens`). The request is
retried until the first text chunk arrives, never after it; a read that stalls for longer than the time
budget is a timeout (504).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from chatbot_security.conversation.errors import ModelProviderError, ModelTimeoutError
from chatbot_security.conversation.model_providers.base import GUARDRAIL_FALLBACK, ModelAnswer
from chatbot_security.conversation.model_providers.openai_results import MAX_ANSWER_BYTES, usage_of
from chatbot_security.conversation.model_providers.stream_base import ReleasableStream
from chatbot_security.platform.observability import logger


class _StreamingCall(Protocol):
    """The model's retried POST (``OpenAiCompatibleModel.call``), which the stream starts."""

    def call(self, payload: bytes, read: Callable[[Any], Any]) -> Any: ...


#: Every chunk of a stream comes in its own JSON envelope: allow for it on top of the answer itself.
MAX_STREAM_BYTES = 8 * MAX_ANSWER_BYTES
MAX_LINE_BYTES = 64 * 1024


class OpenAiStream(ReleasableStream):
    def __init__(self, model: _StreamingCall, body: dict[str, Any]) -> None:
        super().__init__()
        self._model = model
        self._body = body
        self._usage: dict[str, Any] = {}
        self._finish_reason: str | None = None
        self._read_bytes = 0

    def __iter__(self) -> Iterator[str]:
        self._start()
        payload = {**self._body, "stream": True, "stream_options": {"include_usage": True}}
        first = self._model.call(json.dumps(payload).encode(), self._first_chunk)
        if first is not None and not self._closed:
            yield first
        while not self._closed and not self._finished:
            text = self._next_text()
            if text is not None:
                yield text
        self._release()

    def _first_chunk(self, response: Any) -> str | None:
        self._release()
        self._connection, self._read_bytes = response, 0
        self._chunks.clear()
        self._usage, self._finish_reason, self._finished = {}, None, False
        while not self._finished:
            text = self._next_text()
            if text is not None:
                return text
        return None

    def _next_text(self) -> str | None:
        """Reads one event line: its text, or None (another event, or the end, which sets finished)."""
        try:
            line = self._connection.readline(MAX_LINE_BYTES + 1)
        except (OSError, ValueError, AttributeError) as error:
            self._release()
            if self._closed:  # closed from another thread while a read was waiting: the end, not a failure
                return None
            if isinstance(error, TimeoutError):
                raise ModelTimeoutError() from error
            raise ModelProviderError() from error
        if self._closed:
            return None
        self._read_bytes += len(line)
        if len(line) > MAX_LINE_BYTES or self._read_bytes > MAX_STREAM_BYTES:
            self._release()
            raise ModelProviderError()
        if not line:  # the connection ended without [DONE]: the answer may be cut anywhere
            self._release()
            raise ModelProviderError()
        data = line.strip()
        if not data.startswith(b"data:"):
            return None  # blank separators, comments, event names
        data = data[5:].strip()
        if data == b"[DONE]":
            self._finished = True
            return None
        return self._event(data)

    def _event(self, data: bytes) -> str | None:
        try:
            event = json.loads(data)
        except (ValueError, UnicodeDecodeError) as error:
            self._release()
            raise ModelProviderError() from error
        if not isinstance(event, dict):
            self._release()
            raise ModelProviderError()
        if isinstance(event.get("usage"), dict):
            self._usage = event["usage"]
        choices = event.get("choices") or []
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return None
        choice = choices[0]
        self._finish_reason = choice.get("finish_reason") or self._finish_reason
        text = (choice.get("delta") or {}).get("content")
        if isinstance(text, str) and text:
            self._chunks.append(text)
            return text
        return None

    def result(self) -> ModelAnswer:
        text = "".join(self._chunks)
        input_tokens, output_tokens = usage_of({"usage": self._usage}, self._body, text)
        interrupted = not self._finished
        if self._finish_reason == "content_filter":
            logger.info("model answer filtered by the provider")
            return ModelAnswer(text or GUARDRAIL_FALLBACK, input_tokens, output_tokens, moderated=True)
        if not text and not interrupted:
            raise ModelProviderError()
        return ModelAnswer(text, input_tokens, output_tokens, interrupted=interrupted)

    def _shutdown_of(self, connection: Any) -> Callable[[], object] | None:
        sock = getattr(getattr(connection.fp, "raw", None), "_sock", None)
        return None if sock is None else lambda: sock.shutdown(socket.SHUT_RDWR)
