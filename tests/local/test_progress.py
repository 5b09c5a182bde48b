"""The running count of `make fuzz` and `make load`: a bar on a terminal, periodic lines otherwise."""

from __future__ import annotations

import io

from support.clocks import ManualClock

from tools.progress import Progress


def test_without_a_terminal_a_line_is_printed_every_interval() -> None:
    stream, clock = io.StringIO(), ManualClock(0.0)
    progress = Progress("load: turns", 100, stream=stream, interval=10, clock=clock, tty=False)

    for second in range(1, 26):
        clock.now = float(second)
        progress.advance(2)

    assert stream.getvalue().splitlines() == [
        "load: turns: 20/100 (20%), 5xx: 0, 10 s",
        "load: turns: 40/100 (40%), 5xx: 0, 20 s",
    ]


def test_on_a_terminal_a_bar_is_redrawn_in_place() -> None:
    stream, clock = io.StringIO(), ManualClock(0.0)
    progress = Progress("fuzz: cases", 4, stream=stream, clock=clock, tty=True)

    for step in range(1, 5):
        clock.now = step * 1.0
        progress.advance(server_error=step == 3)
    progress.close()

    frames = stream.getvalue().split("\r")[1:]
    assert "\n" not in "".join(frames[:-1])  # redrawn on one line until the end
    assert frames[-1] == "fuzz: cases [" + "#" * 30 + "] 4/4 (100%), 5xx: 1, 4 s\n"


def test_the_last_line_says_where_it_stopped() -> None:
    stream, clock = io.StringIO(), ManualClock(0.0)
    progress = Progress("load: turns", 2000, stream=stream, clock=clock, tty=False)
    progress.advance(5)
    clock.now = 3.0

    progress.close()

    assert stream.getvalue() == "load: turns: 5/2000 (0%), 5xx: 0, 3 s\n"
