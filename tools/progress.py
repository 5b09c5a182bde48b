"""A running count for the long local runs (`make fuzz`, `make load`): a bar redrawn in place where a
terminal is attached, one plain line every few seconds otherwise (CI logs, pipes)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

BAR_WIDTH = 30


class Progress:
    def __init__(
        self,
        label: str,
        total: int,
        *,
        stream: TextIO | None = None,
        interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        tty: bool | None = None,
    ) -> None:
        self.label = label
        self.total = max(1, total)
        self.done = 0
        self.errors = 0
        self._stream = sys.stderr if stream is None else stream
        self._tty = self._stream.isatty() if tty is None else tty
        self._interval = interval
        self._clock = clock
        self._started = clock()
        self._last = self._started
        self._lock = threading.Lock()

    def advance(self, count: int = 1, *, server_error: bool = False) -> None:
        """Count `count` more; redraw (terminal) or print a line when `interval` has passed."""
        with self._lock:
            self.done += count
            self.errors += int(server_error)
            now = self._clock()
            if self._tty:
                if now - self._last >= 0.1 or self.done >= self.total:
                    self._last = now
                    self._stream.write("\r" + self._bar(now))
                    self._stream.flush()
            elif now - self._last >= self._interval:
                self._last = now
                self._stream.write(self._line(now) + "\n")
                self._stream.flush()

    def close(self) -> None:
        with self._lock:
            now = self._clock()
            self._stream.write(("\r" + self._bar(now) if self._tty else self._line(now)) + "\n")
            self._stream.flush()

    def _fraction(self) -> float:
        return min(1.0, self.done / self.total)

    def _bar(self, now: float) -> str:
        filled = int(self._fraction() * BAR_WIDTH)
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        return f"{self.label} [{bar}] {self._counts(now)}"

    def _line(self, now: float) -> str:
        return f"{self.label}: {self._counts(now)}"

    def _counts(self, now: float) -> str:
        percent = int(self._fraction() * 100)
        return f"{self.done}/{self.total} ({percent}%), 5xx: {self.errors}, {now - self._started:.0f} s"
