"""One streamed answer: model chunks through the stream masker into delta frames, until the end or until
the client goes away.

What the client receives is always a prefix of the masked full answer: the masker holds back a bounded
look-ahead window, so personal data split across chunks is never sent unmasked. Frames are batched
(one ``PostToConnection`` per window or size threshold, at most 32 KB each).

A client that disconnects (``GoneException``) cancels the model stream at once, so no more tokens are
produced, and the turn is **not stored**: :class:`ClientGone` makes the engine release the claim, as for
a failed model. A client that reconnects and sends the message again with the same ``client_message_id``
gets a whole answer, rather than the replay of one cut short; one that does not finds the session as it
was before the message.
"""

from __future__ import annotations

from typing import Protocol

from chatbot_security.conversation.model_providers import ModelAnswer, ModelStream
from chatbot_security.platform.observability import logger
from stream.callbacks import ConnectionGone


class ClientGone(Exception):
    """The client left while the answer streamed: the model was stopped and the turn is not stored."""


class Masker(Protocol):
    def feed(self, chunk: str) -> str: ...
    def finish(self) -> str: ...


class DeltaSink(Protocol):
    def add(self, text: str) -> None: ...
    def flush(self) -> None: ...


def relay(stream: ModelStream, masker: Masker, sink: DeltaSink) -> ModelAnswer:
    """Stream the answer to the client; the model's whole answer (text and usage) once it has ended."""
    chunks = 0
    try:
        for chunk in stream:
            chunks += 1
            sink.add(masker.feed(chunk))
        sink.add(masker.finish())
        sink.flush()
    except ConnectionGone:
        stream.close()
        logger.info("client gone: model stream cancelled", extra={"chunks": chunks})
        raise ClientGone() from None
    except BaseException:
        stream.close()  # a failed or timed-out model: release its connection, then report the error
        raise
    return stream.result()
