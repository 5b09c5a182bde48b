"""docs/clients.md: every example runs against a live chatbot-local, as a reader would run it (curl in
bash, JavaScript in node, Python in the project's interpreter), so the docs cannot drift from the API."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tools.local_api import ROOT, RunningApi, running_chatbot_local

pytestmark = pytest.mark.local_api

CLIENTS_DOC = ROOT / "docs" / "clients.md"
EXAMPLE = re.compile(r"<!-- example: (?P<name>[\w-]+) -->\n```(?P<language>\w+)\n(?P<code>.*?)\n```", re.DOTALL)
# What each example must print; the helpers are prepended to the examples of their language.
HELPERS = {"bash": "shell-helper", "javascript": "js-helper", "python": "python-helper"}
EXPECTED = {
    "curl-anonymous": ["You said: Hello!", '"content":"Hello!"', "deleted: 204"],
    "curl-oidc": ["You said: Hello!", '"sessions":[{"session_id":', '"tokens_limit":200000', "deleted: 204"],
    "js-anonymous": ["You said: Hello!", "user: Hello!", "assistant: You said: Hello!", "deleted"],
    "js-oidc": ["You said: Hello!", "live sessions: 1", "deleted"],
    "python-anonymous": ["You said: Hello!", "user: Hello!", "assistant: You said: Hello!", "deleted"],
    "python-oidc": ["You said: Hello!", "live sessions: 1", "deleted"],
    "curl-my-data": ['"sessions":[{"session_id":', '"content":"Hello!"', "erased: 204"],
    "python-my-data": ["exported messages: 2", "erased; live sessions: 0"],
}


def examples() -> dict[str, tuple[str, str]]:
    """name -> (language, code) of every marked code block of docs/clients.md."""
    found = [match.groupdict() for match in EXAMPLE.finditer(CLIENTS_DOC.read_text())]
    return {example["name"]: (example["language"], example["code"]) for example in found}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    with running_chatbot_local(tmp_path_factory.mktemp("clients")) as running:
        yield running


def command(language: str, code: str, folder: Path) -> list[str]:
    if language == "bash":
        return ["bash", "-euo", "pipefail", "-c", code]
    if language == "python":
        return [str(ROOT / ".venv" / "bin" / "python"), "-c", code]
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI"):
            pytest.fail("node is needed to run the JavaScript examples")
        pytest.skip("node not found")
    script = folder / "example.mjs"
    script.write_text(code)
    return [node, str(script)]


def example_environ(api: RunningApi) -> dict[str, str]:
    """What an example runs with: the API's URL, and no proxy between it and the local API."""
    return {**api.environ, "API": api.base, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


def run_example(argv: list[str], environ: dict[str, str], expected: Sequence[str]) -> None:
    """Run an example program; it must succeed and print each of the expected texts."""
    finished = subprocess.run(argv, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60, check=False)

    assert finished.returncode == 0, finished.stderr
    for text in expected:
        assert text in finished.stdout


def test_every_example_of_the_doc_is_run_here() -> None:
    found = examples()

    assert set(found) == set(EXPECTED) | set(HELPERS.values())
    assert {language for language, _ in found.values()} == set(HELPERS)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_documented_example_works(name: str, api: RunningApi, tmp_path: Path) -> None:
    found = examples()
    language, code = found[name]
    program = found[HELPERS[language]][1] + "\n\n" + code
    environ = example_environ(api)
    if name.endswith(("-oidc", "-my-data")) and language != "bash":  # the shell example mints its own token
        environ["TOKEN"] = api.token(f"clients-{name}")

    run_example(command(language, program, tmp_path), environ, EXPECTED[name])
