"""Test doubles of the streaming worker's parts."""

from __future__ import annotations

from collections.abc import Callable

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
