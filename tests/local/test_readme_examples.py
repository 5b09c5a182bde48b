"""The README's shell examples run as written against a live chatbot-local and print readable output:
one JSON document per block of lines, never two run together."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest

from tools.local_api import ROOT, RunningApi, running_chatbot_local

README = ROOT / "README.md"


def bash_block_after(marker: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(marker)
    block = re.search(r"```bash\n(.*?)\n```", text[start:], re.DOTALL)
    assert block is not None, marker
    return block.group(1)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    with running_chatbot_local(tmp_path_factory.mktemp("readme"), arguments=["--cleanup-interval", "0"]) as api:
        yield api


def run_bash(server: RunningApi, script: str) -> str:
    script = script.replace("http://127.0.0.1:3000", server.base)
    finished = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env=server.environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return finished.stdout


def test_the_getting_started_conversation_prints_one_readable_document_per_answer(server: RunningApi) -> None:
    printed = run_bash(server, bash_block_after("In another terminal:"))

    assert "}{" not in printed
    assert printed.count('"content": "You said: Hello!"') == 2  # the post's answer, then the history
    assert all(len(line) < 200 for line in printed.splitlines())


def test_the_invoke_examples_print_one_response_each(server: RunningApi) -> None:
    printed = run_bash(server, bash_block_after("Without Docker, `chatbot-local invoke`"))

    assert "}{" not in printed
    assert '"statusCode": 201' in printed
    assert '{"isAuthorized": true' in printed
    assert '"sessions_removed"' in printed
