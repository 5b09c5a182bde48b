"""docs/threat-model.md maps every rule of DESIGN.md section 6 and the OWASP LLM items that apply to the
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
RULES = [str(number) for number in range(1, 14)] + ["LLM01", "LLM02", "LLM05", "LLM07", "LLM10", "NET", "AUDIT"]
TICKED = re.compile(r"`([^`]+)`")


def table() -> dict[str, tuple[list[str], list[str]]]:
    """rule -> (paths that enforce it, tests that prove it), from the "Rules and tests" table."""
    section = PAGE.read_text(encoding="utf-8").split("## Rules and tests", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, tuple[list[str], list[str]]] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("rule", "") or set(cells[0]) <= {"-"}:
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
    assert list(rows) == RULES
    for rule, (paths, tests) in rows.items():
        assert paths, f"rule {rule} names no enforcing code"
        assert tests, f"rule {rule} names no test"


@pytest.mark.parametrize("rule", RULES)
def test_every_named_test_exists(rule: str) -> None:
    _, tests = table()[rule]
    missing = []
    for reference in tests:
        file, _, name = reference.partition("::")
        path = ROOT / file
        if not (file.startswith("tests/") and name and path.is_file() and name in defined_tests(path)):
            missing.append(reference)
    assert missing == [], f"rule {rule}: no such test"


@pytest.mark.parametrize("rule", RULES)
def test_every_named_path_exists(rule: str) -> None:
    paths, _ = table()[rule]
    missing = [path for path in paths if "::" in path or not (ROOT / path).exists()]
    assert missing == [], f"rule {rule}: no such file"


def test_a_missing_test_would_be_caught(tmp_path: Path) -> None:
    # The checker itself: a renamed test is no longer found
    sample = tmp_path / "test_sample.py"
    sample.write_text("import pytest\n\n@pytest.mark.parametrize('x', [1])\ndef test_real(x):\n    pass\n")
    assert defined_tests(sample) == {"test_real"}
    assert "test_renamed" not in defined_tests(sample)
