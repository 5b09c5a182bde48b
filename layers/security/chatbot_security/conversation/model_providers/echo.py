"""The echo model: deterministic and offline, for local runs and tests. It streams word by word with a
configurable pause (``ECHO_WORD_DELAY_MS``) so that a developer sees an answer stream in."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence

from chatbot_security.conversation.model_providers.base import ChatMessage, ModelAnswer

DEFAULT_WORD_DELAY_SECONDS = 0.06
_WORDS = re.compile(r"\s*\S+\s*|\s+")


def count_words(text: str) -> int:
    """The echo model's token count: whitespace-separated words."""
    return len(text.split())


class EchoModel:
    history_window = 0

    def __init__(
        self, word_delay_seconds: float = DEFAULT_WORD_DELAY_SECONDS, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        self._word_delay = word_delay_seconds
        self._sleep = sleep

    def reply(self, history: Sequence[ChatMessage], user_message: str) -> ModelAnswer:
        text = f"You said: {user_message}"
        return ModelAnswer(text, count_words(user_message), count_words(text))

    def stream(self, history: Sequence[ChatMessage], user_message: str) -> EchoStream:
        return EchoStream(self.reply(history, user_message), self._word_delay, self._sleep)


class EchoStream:
    """The echo answer, one word (with the whitespace after it) per chunk, a pause before every word but
    the first."""

    def __init__(self, answer: ModelAnswer, word_delay: float, sleep: Callable[[float], None]) -> None:
        self._answer = answer
        self._word_delay = word_delay
        self._sleep = sleep
        self._sent: list[str] = []
        self._closed = False

    def __iter__(self) -> Iterator[str]:
        for index, word in enumerate(_WORDS.findall(self._answer.text)):
            if index and self._word_delay:
                self._sleep(self._word_delay)
            if self._closed:
                return
            self._sent.append(word)
            yield word

    def result(self) -> ModelAnswer:
        text = "".join(self._sent)
        if text == self._answer.text:
            return self._answer
        return ModelAnswer(text, self._answer.input_tokens, count_words(text), interrupted=True)

    def close(self) -> None:
        self._closed = True
