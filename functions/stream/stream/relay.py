"""One streamed answer: model chunks through the stream masker into delta frames, until the end or until
the client goes away.

What the client receives is always a prefix of the masked full answer: the masker holds back a bounded
look-ahead window, so personal data split across chunks is never sent unmasked. Frames are batched
(one ``PostToConnection`` per window or size threshold, at most 32 KB each).

A client that disconnects (``GoneException``) cancels the model stream. The turn is then stored with
what the model had written up to that point, masked like any answer and marked ``"interrupted": true``:
on reload the user sees what was answered rather than a question without a reply. Usage is what the
provider reported, or its upper-bound estimate (``estimate_tokens``) when the stream was cut short before
it said. When the client left
before the model wrote anything, nothing is stored (the claim is released).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Protocol

from chatbot_security.conversation.model_providers import ChatMessage, ModelAnswer, ModelStream, estimate_tokens
from chatbot_security.platform.observability import logger
from stream.callbacks import ConnectionGone


class NothingAnswered(Exception):
    """The client left before the model wrote anything: there is no turn to store."""


class Masker(Protocol):
    def feed(self, chunk: str) -> str: ...
    def finish(self) -> str: ...


class DeltaSink(Protocol):
    def add(self, text: str) -> None: ...
    def flush(self) -> None: ...


def relay(stream: ModelStream, masker: Masker, sink: DeltaSink, prompt: Sequence[ChatMessage]) -> ModelAnswer:
    """Stream the answer to the client; the model's answer (``interrupted`` when the client left)."""
    received: list[str] = []
    try:
        for chunk in stream:
            received.append(chunk)
            sink.add(masker.feed(chunk))
        sink.add(masker.finish())
        sink.flush()
    except ConnectionGone:
        stream.close()
        logger.info("client gone: model stream cancelled", extra={"chunks": len(received)})
        return _cut_short(stream, "".join(received), prompt)
    except BaseException:
        stream.close()  # a failed or timed-out model: release its connection, then report the error
        raise
    return stream.result()


def _cut_short(stream: ModelStream, text: str, prompt: Sequence[ChatMessage]) -> ModelAnswer:
    if not text:
        raise NothingAnswered()
    try:
        reported = stream.result()
    except Exception:  # a cancelled stream may have no result: estimate its usage
        reported = None
    if reported is not None and reported.text == text:
        return dataclasses.replace(reported, interrupted=True)
    return ModelAnswer(
        text=text,
        input_tokens=estimate_tokens(*(message.content for message in prompt)),
        output_tokens=estimate_tokens(text),
        interrupted=True,
    )


def prompt_of(history: Sequence[ChatMessage], user_text: str) -> list[ChatMessage]:
    return [*history, ChatMessage(role="user", content=user_text)]


StreamCall = Callable[[Sequence[ChatMessage], str], ModelAnswer]
