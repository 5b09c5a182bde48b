"""docs/clients.md's streaming examples (`<!-- stream-example: NAME -->` blocks), each run against a live
chatbot-local with its WebSocket port, as a reader would run it (JavaScript in node, Python in the
project's interpreter, with the helper of its language prepended)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_client_examples import CLIENTS_DOC, HELPERS, example_environ, examples, run_example

from tools.local_api import ROOT, RunningApi, running_chatbot_local

pytestmark = pytest.mark.local_api

STREAM_EXAMPLE = re.compile(
    r"<!-- stream-example: (?P<name>[\w-]+) -->\n```(?P<language>\w+)\n(?P<code>.*?)\n```", re.DOTALL
)
EXPECTED = {
    "js-stream": ["You said: Hello!", "stored: You said: Hello!", "deleted"],
    "python-stream": ["You said: Hello!", "stored: You said: Hello!", "deleted"],
}


def stream_examples() -> dict[str, tuple[str, str]]:
    found = [match.groupdict() for match in STREAM_EXAMPLE.finditer(CLIENTS_DOC.read_text())]
    return {example["name"]: (example["language"], example["code"]) for example in found}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    # A short echo delay keeps the examples fast; the answer still streams word by word.
    environ = {"ECHO_WORD_DELAY_MS": "5"}
    with running_chatbot_local(tmp_path_factory.mktemp("stream-clients"), environ) as running:
        yield running


def command(language: str, code: str, folder: Path) -> list[str]:
    if language == "python":
        return [str(ROOT / ".venv" / "bin" / "python"), "-c", code]
    node = shutil.which("node")
    assert node is not None, "node is needed to run the JavaScript examples"
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout
    flags = ["--experimental-websocket"] if int(version.lstrip("v").split(".")[0]) < 22 else []
    script = folder / "example.mjs"
    script.write_text(code)
    return [node, *flags, str(script)]


def test_every_stream_example_of_the_doc_is_run_here() -> None:
    assert set(stream_examples()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_documented_stream_example_works(name: str, api: RunningApi, tmp_path: Path) -> None:
    language, code = stream_examples()[name]
    program = examples()[HELPERS[language]][1] + "\n\n" + code
    environ = example_environ(api)

    run_example(command(language, program, tmp_path), environ, EXPECTED[name])
