"""Any endpoint that speaks OpenAI's ``POST {base}/chat/completions``; the key is a bearer token.
Streaming (``stream: true``, server-sent events) is in openai_stream.py."""

from __future__ import annotations

import functools
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from chatbot_security.conversation.errors import ModelProviderError, ModelTimeoutError
from chatbot_security.conversation.model_providers.base import (
    GUARDRAIL_FALLBACK,
    HISTORY_WINDOW,
    ChatMessage,
    Deadline,
    ModelAnswer,
    ModelStream,
    system_prompt,
)
from chatbot_security.conversation.model_providers.openai_results import MAX_ANSWER_BYTES, usage_of
from chatbot_security.platform.observability import logger
from chatbot_security.platform.settings import ModelSettings

_HTTP_RETRYABLE = frozenset({408, 409, 429, 500, 502, 503, 504})


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect could carry the API key to another host: never follow one."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@functools.cache
def _opener() -> urllib.request.OpenerDirector:
    """Built on first use, not at import: its HTTPS handler loads the CA bundle (tens of milliseconds of
    every cold start), which only this provider needs."""
    return urllib.request.build_opener(_NoRedirects)


class RetryableHttpError(Exception):
    pass


class OpenAiCompatibleModel:
    history_window = HISTORY_WINDOW

    def __init__(
        self,
        settings: ModelSettings,
        base_url: str,
        api_key: Callable[[], str],
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not settings.model_id:
            raise RuntimeError("MODEL_ID is not configured")
        self._settings = settings
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._api_key = api_key
        self._clock = clock
        self._sleep = sleep

    def body(self, history: Sequence[ChatMessage], user_message: str) -> dict[str, Any]:
        settings = self._settings
        return {
            "model": settings.model_id,
            "messages": [
                {"role": "system", "content": system_prompt(settings)},
                *({"role": message.role, "content": message.content} for message in history),
                {"role": "user", "content": user_message},
            ],
            "max_tokens": settings.model_max_tokens,
        }

    def reply(self, history: Sequence[ChatMessage], user_message: str) -> ModelAnswer:
        body = self.body(history, user_message)
        answer = self.call(json.dumps(body).encode(), _read_json)
        try:
            choice = answer["choices"][0]
            text = choice["message"]["content"]
        except (KeyError, IndexError, TypeError) as error:
            raise ModelProviderError() from error
        input_tokens, output_tokens = usage_of(answer, body, text if isinstance(text, str) else "")
        if choice.get("finish_reason") == "content_filter" and not text:
            return ModelAnswer(GUARDRAIL_FALLBACK, input_tokens, output_tokens, moderated=True)
        if not isinstance(text, str) or not text:
            raise ModelProviderError()
        return ModelAnswer(text, input_tokens, output_tokens, moderated=choice.get("finish_reason") == "content_filter")

    def stream(self, history: Sequence[ChatMessage], user_message: str) -> ModelStream:
        from chatbot_security.conversation.model_providers.openai_stream import OpenAiStream

        return OpenAiStream(self, self.body(history, user_message))

    def call(self, payload: bytes, read: Callable[[Any], Any]) -> Any:
        """POST ``payload`` and ``read(response)`` with retries inside the deadline; ``read`` runs inside
        the attempt, so a failure while it reads is retried too (a stream reads only its first chunk)."""
        deadline = Deadline(self._settings.model_timeout_seconds, self._clock)
        attempt = 0
        while True:
            try:
                return self._attempt(payload, deadline.remaining(), read)
            except TimeoutError as error:
                raise ModelTimeoutError() from error
            except RetryableHttpError as error:
                delay = deadline.backoff(attempt)
                if delay is None:
                    logger.warning("model provider failed", extra={"provider": "openai", "attempts": attempt + 1})
                    raise ModelProviderError() from error
            self._sleep(delay)
            attempt += 1

    def _attempt(self, payload: bytes, timeout: float, read: Callable[[Any], Any]) -> Any:
        if timeout <= 0:
            raise TimeoutError()
        request = urllib.request.Request(  # noqa: S310 - the base URL is https (or loopback http), checked by the settings
            self._url,
            data=payload,
            method="POST",
            headers={
                "Authorization": f"Bearer {self._api_key()}",
                "Content-Type": "application/json",
                "Accept": "application/json, text/event-stream",
            },
        )
        try:
            # The scheme is https (or loopback http in local runs), checked by the settings.
            response = _opener().open(request, timeout=timeout)  # nosec B310
        except urllib.error.HTTPError as error:
            error.close()
            if error.code in _HTTP_RETRYABLE:
                raise RetryableHttpError() from error
            logger.warning("model provider refused the request", extra={"provider": "openai", "status": error.code})
            raise ModelProviderError() from error
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                raise TimeoutError() from error
            raise RetryableHttpError() from error
        except ConnectionError as error:
            raise RetryableHttpError() from error
        try:
            return read(response)
        except ConnectionError as error:
            response.close()
            raise RetryableHttpError() from error
        except BaseException:
            response.close()
            raise


def _read_json(response: Any) -> Any:
    with response:
        raw = response.read(MAX_ANSWER_BYTES + 1)
    if len(raw) > MAX_ANSWER_BYTES:
        raise ModelProviderError()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise ModelProviderError() from error
