"""The WebSocket protocol's server frames, and the batcher that turns a streamed answer into few of them.

Frames (docs/contract.md, streaming): ``{"type": "delta", "text": str}`` any number of times, then exactly
one of ``{"type": "done", "turn": {"user_message": Message, "assistant_message": Message}}`` or
``{"type": "error", "error": {"code", "message", "request_id"}}``. Each is compact JSON in UTF-8 and at
most :data:`MAX_FRAME_BYTES` (API Gateway's WebSocket frame size): a delta longer than that is split; a
``done`` frame over it is a programming error the caller prevents (the message and token caps keep a turn
well below it; :func:`frame_size` lets the caller check).

:class:`FrameBatcher` sends text (already masked) through ``send(frame)``, one PostToConnection each: at
most once per :data:`BATCH_INTERVAL_SECONDS` window, or earlier once the text waiting reaches
:data:`BATCH_THRESHOLD_BYTES`, and the rest on :meth:`FrameBatcher.flush`. The first text goes out at once,
so the batcher adds nothing to the time to the first frame. It keeps no timer: text that arrives inside a
window waits for the next :meth:`FrameBatcher.add` or for :meth:`FrameBatcher.flush`, so a caller whose
model may pause mid-answer flushes when its own read times out.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

#: API Gateway's limit on a WebSocket frame.
MAX_FRAME_BYTES = 32 * 1024
BATCH_INTERVAL_SECONDS = 0.05
BATCH_THRESHOLD_BYTES = 4 * 1024
#: ``{"type":"delta","text":""}``: a delta frame's bytes besides its text.
_DELTA_ENVELOPE = len(b'{"type":"delta","text":""}')


def encode(frame: Mapping[str, Any]) -> bytes:
    """Compact JSON in UTF-8. Model text is untrusted: a lone surrogate (which UTF-8 cannot carry) becomes
    ``?`` rather than an error."""
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")


def frame_size(frame: Mapping[str, Any]) -> int:
    """Bytes of ``frame`` once encoded: what the caller checks before building a ``done`` frame."""
    return len(encode(frame))


def delta_frames(text: str, limit: int = MAX_FRAME_BYTES) -> list[bytes]:
    """``text`` as delta frames of at most ``limit`` bytes each, in order (never splitting a character)."""
    frames: list[bytes] = []
    while text:
        frame = encode({"type": "delta", "text": text})
        if len(frame) <= limit:
            frames.append(frame)
            break
        cut = _longest_prefix(text, limit - _DELTA_ENVELOPE)
        frames.append(encode({"type": "delta", "text": text[:cut]}))
        text = text[cut:]
    return frames


def _longest_prefix(text: str, budget: int) -> int:
    """The most characters of ``text`` whose JSON string body fits in ``budget`` bytes (at least one):
    a character takes 1 to 6 bytes (``\\u001f``), so the answer lies between budget / 6 and budget."""
    low, high = max(1, budget // 6), min(len(text), budget)
    while low < high:
        middle = (low + high + 1) // 2
        if _body_size(text[:middle]) <= budget:
            low = middle
        else:
            high = middle - 1
    return low


def _body_size(text: str) -> int:
    return len(encode({"text": text})) - len(b'{"text":""}')


def done_frame(turn: Mapping[str, Any]) -> bytes:
    """The ``done`` frame of a stored turn (the HTTP 201 body's shape)."""
    frame = encode({"type": "done", "turn": turn})
    if len(frame) > MAX_FRAME_BYTES:
        raise ValueError(f"a done frame of {len(frame)} bytes exceeds the {MAX_FRAME_BYTES}-byte frame limit")
    return frame


def error_frame(code: str, message: str, request_id: str) -> bytes:
    """The ``error`` frame: the contract's error body (a generic message, never the input)."""
    return encode({"type": "error", "error": {"code": code, "message": message, "request_id": request_id}})


class FrameBatcher:
    def __init__(
        self,
        send: Callable[[bytes], None],
        clock: Callable[[], float] = time.monotonic,
        interval: float = BATCH_INTERVAL_SECONDS,
        threshold: int = BATCH_THRESHOLD_BYTES,
    ) -> None:
        self._send = send
        self._clock = clock
        self._interval = interval
        self._threshold = threshold
        self._pending: list[str] = []
        self._pending_bytes = 0
        self._last_sent = -math.inf
        self.frames_sent = 0

    def add(self, text: str) -> None:
        """Queue masked text; send what is queued when the window since the last frame has passed or the
        queue has reached the threshold."""
        if not text:
            return
        self._pending.append(text)
        self._pending_bytes += len(text.encode("utf-8", "replace"))
        if self._pending_bytes >= self._threshold or self._clock() - self._last_sent >= self._interval:
            self.flush()

    def flush(self) -> None:
        """Send everything queued now (the end of an answer, or before a ``done`` or ``error`` frame)."""
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        for frame in delta_frames(text):
            self._send(frame)
            self.frames_sent += 1
        self._last_sent = self._clock()
