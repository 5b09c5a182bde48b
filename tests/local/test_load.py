"""A small run of the load test (`make load` runs 20 clients and 2,000 turns): concurrent clients on
loopback, repeated posts, every acknowledged turn read back in order and once."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.load_api import loaded_api, run_load

pytestmark = pytest.mark.local_api


def test_concurrent_clients_get_no_5xx_and_find_every_acknowledged_turn_in_order(tmp_path: Path) -> None:
    with loaded_api(tmp_path) as api:
        report = run_load(api, clients=6, turns=60, max_seconds=60)

    print("\n".join(report.lines()))
    assert report.server_errors == 0
    assert report.problems == []
    assert report.turns == 60
    assert report.repeats == 6
