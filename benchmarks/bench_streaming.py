"""Streaming: time from the model's first chunk to the first frame sent, and PostToConnection calls per
answer against its length (docs/performance.md, Streaming).

    .venv/bin/python benchmarks/bench_streaming.py [--runs N]

A fake streaming model hands its chunks (4 characters each, about one token) to the worker's pipeline:
the stream masker (privacy/stream_masking.py), then the frame batcher (conversation/frames.py), whose
``send`` stands for PostToConnection. The first figure is wall time on the real clock from the model's
first chunk to the first frame sent: for an answer opening with prose (sent as soon as its first word is
complete) and one opening with a number (held until the masker's look-ahead window has passed). The
second counts the frames of 1, 10 and 100 KB answers on a fake clock, with the model writing 100 tokens
a second (a chunk every 10 ms) and with the whole answer arriving at once (batched by size).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers" / "security"), str(Path(__file__).resolve().parent)]

from budgets import record  # noqa: E402

from chatbot_security.conversation.frames import BATCH_INTERVAL_SECONDS, MAX_FRAME_BYTES, FrameBatcher  # noqa: E402
from chatbot_security.privacy.stream_masking import StreamMasker  # noqa: E402

CHUNK = 4
PROSE = "Sure. Here is what you asked for, in a few short paragraphs with ordinary words and no numbers. "
NUMBERED = "42 is the answer you asked for; call 020 7946 0958 or write to help@example.com for more. "


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def chunks_of(text: str) -> list[str]:
    return [text[start : start + CHUNK] for start in range(0, len(text), CHUNK)]


def pipeline(chunks: Iterator[str], send: Callable[[bytes], None], clock: Callable[[], float]) -> None:
    """What the stream worker does with a model stream: mask, batch, send, flush at the end."""
    masker, batcher = StreamMasker(), FrameBatcher(send, clock)
    for chunk in chunks:
        batcher.add(masker.feed(chunk))
    batcher.add(masker.finish())
    batcher.flush()


class FirstFrameProbe:
    """A fake model over ``answer`` and a ``send`` that note when the first chunk and first frame pass."""

    def __init__(self, answer: list[str]) -> None:
        self.answer = answer
        self.first_chunk_at = 0.0
        self.first_frame_at = 0.0
        self.chunks_before = 0

    def model(self) -> Iterator[str]:
        for index, chunk in enumerate(self.answer):
            if index == 0:
                self.first_chunk_at = time.perf_counter()
            if not self.first_frame_at:
                self.chunks_before = index + 1
            yield chunk

    def send(self, frame: bytes) -> None:
        if not self.first_frame_at:
            self.first_frame_at = time.perf_counter()


def first_frame_seconds(opening: str, runs: int) -> tuple[float, int]:
    """Median wall time from the first chunk to the first frame, and the chunks it took."""
    times, chunk_counts = [], []
    answer = chunks_of(opening * 20)
    for _ in range(runs):
        probe = FirstFrameProbe(answer)
        pipeline(probe.model(), probe.send, time.monotonic)
        times.append(probe.first_frame_at - probe.first_chunk_at)
        chunk_counts.append(probe.chunks_before)
    return statistics.median(times), max(chunk_counts)


def calls_per_answer(length: int, seconds_per_chunk: float) -> tuple[int, int]:
    """PostToConnection calls for an answer of ``length`` characters, and its largest frame."""
    clock, frames = FakeClock(), list[bytes]()

    def model() -> Iterator[str]:
        for chunk in chunks_of((PROSE * (length // len(PROSE) + 1))[:length]):
            yield chunk
            clock.now += seconds_per_chunk

    pipeline(model(), frames.append, clock)
    return len(frames), max(map(len, frames))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    options = parser.parse_args()

    print("time from the model's first chunk to the first frame sent (fake model, real clock)")
    for name, opening in (("opening with prose", PROSE), ("opening with a number", NUMBERED)):
        seconds, chunks = first_frame_seconds(opening, options.runs)
        print(f"  {name:<24} {seconds * 1e6:8.0f} us   after {chunks} chunks of {CHUNK} characters")
        record("streaming", f"first chunk to first frame, {name}", f"{seconds * 1e6:.0f} us", f"{chunks} chunks",
               None)  # fmt: skip

    print(f"PostToConnection calls per answer ({BATCH_INTERVAL_SECONDS * 1000:.0f} ms windows, frames <= "
          f"{MAX_FRAME_BYTES} bytes)")  # fmt: skip
    for pace, seconds_per_chunk in (("100 tokens/s", 0.01), ("all at once", 0.0)):
        for size in (1_000, 10_000, 100_000):
            calls, largest = calls_per_answer(size, seconds_per_chunk)
            chunks = len(chunks_of("x" * size))
            print(f"  {size // 1000:>4} KB, {pace:<13} {calls:6d} calls for {chunks:6d} chunks, largest frame "
                  f"{largest} bytes")  # fmt: skip
            record("streaming", f"PostToConnection calls, {size // 1000} KB, {pace}", str(calls),
                   f"{chunks} chunks", None)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
