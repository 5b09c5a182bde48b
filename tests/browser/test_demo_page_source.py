"""The demo page's source keeps to what its Content-Security-Policy and docs/contract.md section 5 require
(no browser needed: these run in every test run)."""

from __future__ import annotations

import re
import struct
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
SCRIPTS = sorted(WEB.glob("*.js"))


class _Inline(HTMLParser):
    """Collects whatever a strict CSP would block: inline scripts, styles and event handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        self._in_script = tag == "script"
        if tag == "style":
            self.problems.append("<style> element")
        if tag == "script" and "src" not in names:
            self.problems.append("inline <script>")
        self.problems += [f"{name} attribute on <{tag}>" for name in names if name == "style" or name.startswith("on")]

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.problems.append("inline script code")


def test_the_page_has_no_inline_script_style_or_event_handler() -> None:
    parser = _Inline()
    parser.feed((WEB / "index.html").read_text())

    assert parser.problems == []


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_scripts_never_build_html_from_strings(script: Path) -> None:
    code = script.read_text()

    sinks = re.findall(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|setHTML", code)

    assert sinks == []


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_scripts_keep_the_session_in_session_storage_only(script: Path) -> None:
    assert "localStorage" not in script.read_text()
    assert "document.cookie" not in script.read_text()


def test_the_readme_shows_the_committed_screenshot() -> None:
    data = (ROOT / "docs" / "demo.png").read_bytes()

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1000, 700)
    assert "](docs/demo.png)" in (ROOT / "README.md").read_text()
