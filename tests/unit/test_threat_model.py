"""docs/threat-model.md maps every rule of docs/contract.md section 6 and the OWASP LLM items that apply to the
code that enforces them and the tests that prove them. The table must not rot: every named test must
exist (found by parsing the test files, parametrized tests by their function name) and every named
path must exist."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "threat-model.md"
RULES = (
    [str(number) for number in range(1, 14)]
    + ["LLM01", "LLM02", "LLM05", "LLM07", "LLM10", "NET", "AUDIT"]
    + ["STREAM-TICKET", "STREAM-CONNECT", "PRIV"]
)
TICKED = re.compile(r"`([^`]+)`")
# Rows for the findings of the outside security review follow the rules: "review 5", "review 10 (access log)".
REVIEW_ROW = re.compile(r"review \d+( \([a-z -]+\))?")


FINDINGS = "## Findings of the outside security review"


def table(heading: str = "## Rules and tests") -> dict[str, tuple[list[str], list[str]]]:
    """rule -> (paths that enforce it, tests that prove it), from the table under ``heading``."""
    section = PAGE.read_text(encoding="utf-8").split(heading, 1)[1].split("\n## ", 1)[0]
    rows: dict[str, tuple[list[str], list[str]]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("rule", "finding", "") or set(cells[0]) <= {"-"}:
            continue
        rows[cells[0]] = (TICKED.findall(cells[2]), TICKED.findall(cells[3]))
    return rows


@functools.cache
def defined_tests(path: Path) -> frozenset[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test_"):
            names.add(node.name)
    return frozenset(names)


def test_every_rule_and_llm_item_has_code_and_tests() -> None:
    rows = table()
    assert list(rows)[: len(RULES)] == RULES
    assert all(REVIEW_ROW.fullmatch(row) for row in list(rows)[len(RULES) :]), list(rows)
    for rule, (paths, tests) in rows.items():
        assert paths, f"rule {rule} names no enforcing code"
        assert tests, f"rule {rule} names no test"


def rows_to_check() -> list[str]:
    return list(table()) + findings()


def findings() -> list[str]:
    return list(table(FINDINGS))


def test_every_review_finding_has_code_and_tests() -> None:
    assert findings(), "the findings table is empty or missing"
    for finding, (paths, tests) in table(FINDINGS).items():
        assert paths, f"{finding} names no enforcing code"
        assert tests, f"{finding} names no test"


@pytest.mark.parametrize("rule", rows_to_check())
def test_every_named_test_exists(rule: str) -> None:
    _, tests = {**table(), **table(FINDINGS)}[rule]
    missing = []
    for reference in tests:
        file, _, name = reference.partition("::")
        path = ROOT / file
        if not (file.startswith("tests/") and name and path.is_file() and name in defined_tests(path)):
            missing.append(reference)
    assert missing == [], f"rule {rule}: no such test"


@pytest.mark.parametrize("rule", rows_to_check())
def test_every_named_path_exists(rule: str) -> None:
    paths, _ = {**table(), **table(FINDINGS)}[rule]
    missing = [path for path in paths if "::" in path or not (ROOT / path).exists()]
    assert missing == [], f"rule {rule}: no such file"


def test_a_missing_test_would_be_caught(tmp_path: Path) -> None:
    # The checker itself: a renamed test is no longer found
    sample = tmp_path / "test_sample.py"
    sample.write_text("import pytest\n\n@pytest.mark.parametrize('x', [1])\ndef test_real(x):\n    pass\n")
    assert defined_tests(sample) == {"test_real"}
    assert "test_renamed" not in defined_tests(sample)
