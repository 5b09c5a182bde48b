"""A small, derandomised run of the API fuzzer (`make fuzz` runs the full one) so CI catches a 5xx or a
response that breaks docs/openapi.json: every operation, positive and negative cases, valid tokens of
both kinds, real session ids, cursors and subjects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.api_fuzzer import ApiFuzzer, FuzzReport, fuzzed_api

pytestmark = pytest.mark.local_api

CASES_PER_OPERATION = 12


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzReport]:
    folder: Path = tmp_path_factory.mktemp("fuzz")
    with fuzzed_api(folder) as api:
        yield ApiFuzzer(api, derandomize=True).run(CASES_PER_OPERATION)


def test_no_fuzzed_request_gets_a_5xx_or_an_answer_outside_the_openapi_document(report: FuzzReport) -> None:
    print("\n".join(report.lines()))
    assert report.total >= 100
    assert report.server_errors == 0
    assert report.failures == []


def test_the_fuzzer_reaches_past_the_front_door(report: FuzzReport) -> None:
    # Real sessions, turns, history pages, deletions and erasures were exercised, not only 404s and 422s
    statuses = report.by_operation
    assert statuses["POST /v1/sessions/{session_id}/messages"][201] > 0
    assert statuses["GET /v1/sessions/{session_id}/messages"][200] > 0
    assert statuses["DELETE /v1/sessions/{session_id}"][204] > 0
    assert statuses["DELETE /v1/admin/users/{subject}"][204] > 0
    assert statuses["GET /v1/me/export"][200] > 0
    assert statuses["DELETE /v1/me"][204] > 0
    assert {operation for operation, _ in report.cases} == set(report.by_operation)
    assert len(report.by_operation) == 12
