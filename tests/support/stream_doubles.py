"""Test doubles of the streaming worker's parts."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from stream import outbound


class EachTextAFrame:
    """The batcher's contract without its clock: every text released goes out as one delta frame."""

    def __init__(self, send: Callable[[bytes], None]) -> None:
        self.send = send

    def add(self, text: str) -> None:
        if text:
            self.send(outbound.delta_frame(text))

    def flush(self) -> None:
        return


class ClosableStream(Iterable[str], Protocol):
    def close(self) -> None: ...


def read_then_close(stream: ClosableStream) -> list[str]:
    """What a reader that closes the stream after its first chunk (a client gone mid-answer) receives."""
    chunks: list[str] = []
    for chunk in stream:
        chunks.append(chunk)
        stream.close()
    return chunks
