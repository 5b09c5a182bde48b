"""The repository stands alone: nothing in it cites a document or a path outside the checkout.

Code, comments, docs and tests cite the product contract as docs/contract.md; a reference to a file
that only exists beside some checkout (a design note, a shared folder) is a dead end for anyone who
clones the repository.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIPPED_DIRS = {".git", ".venv", ".tools", ".aws-sam", ".chatbot-local", "__pycache__", ".pytest_cache",
                ".mypy_cache", ".ruff_cache", ".hypothesis", "node_modules", "htmlcov"}  # fmt: skip
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".json", ".js", ".html", ".css", ".txt", ".cfg", ".sh", ""}
# Documents that live outside the repository, named as a checkout beside it would see them.
OUTSIDE = re.compile(r"DESIGN\.md|STYLE\.md|\.\./shared\b|\bshared/(?:DESIGN|STYLE|tools)")
MARKDOWN_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _text_files() -> list[Path]:
    files = []
    for directory, dirs, names in os.walk(ROOT):
        # Hidden folders are tools' output (lint variants, caches), except the CI entry point.
        dirs[:] = [name for name in dirs if name not in SKIPPED_DIRS and (name == ".ci" or not name.startswith("."))]
        for name in names:
            path = Path(directory, name)
            if path.suffix in TEXT_SUFFIXES and path.stat().st_size < 2_000_000 and path.name != "uv.lock":
                files.append(path)
    return files


def _offending_lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return []
    return [f"{path.relative_to(ROOT)}:{n}" for n, line in enumerate(text.splitlines(), 1) if OUTSIDE.search(line)]


def test_no_file_cites_a_document_outside_the_repository() -> None:
    offending = [line for path in _text_files() for line in _offending_lines(path)]
    assert offending == []


def test_every_relative_markdown_link_points_into_the_repository() -> None:
    broken = []
    for path in _text_files():
        if path.suffix != ".md":
            continue
        for target in MARKDOWN_LINK.findall(path.read_text(encoding="utf-8")):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # a URL or an anchor of the same page (checked by test_docs_links.py)
            resolved = (path.parent / target.split("#", 1)[0]).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                broken.append(f"{path.relative_to(ROOT)} -> {target}")
    assert broken == []


# The outside names are assembled here so that this file does not itself cite them.
DESIGN_NOTE = "DESIGN" + ".md"
SHARED_FOLDER = ".." + "/shared"


CITATIONS = [f"see {DESIGN_NOTE} section 4", f"{SHARED_FOLDER}/{DESIGN_NOTE}", SHARED_FOLDER[3:] + "/tools/x.sh"]


@pytest.mark.parametrize("line", CITATIONS)
def test_a_citation_of_an_outside_document_would_be_caught(line: str) -> None:
    assert OUTSIDE.search(line)
