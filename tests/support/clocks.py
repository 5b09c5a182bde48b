"""A clock the test sets by hand, for the code that takes ``clock: Callable[[], float]``."""

from __future__ import annotations

# 2027-01-15T08:00:00Z: the start of a minute and of an hour, early in a UTC day.
FIXED_START = 1_800_000_000


class ManualClock:
    def __init__(self, now: float = FIXED_START) -> None:
        self.now = float(now)

    def __call__(self) -> float:
        return self.now
