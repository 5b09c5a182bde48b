"""The pre-commit configuration runs the project's own gates offline: local hooks only, each one a
make target that exists or a tool of the locked dev dependencies in .venv."""

from __future__ import annotations

import re
import shlex
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def hooks() -> list[dict[str, Any]]:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    return [hook | {"repo": repo["repo"]} for repo in config["repos"] for hook in repo["hooks"]]


def dev_dependencies() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {re.split(r"[\[=<>~!]", requirement)[0] for requirement in project["dependency-groups"]["dev"]}


def test_every_hook_is_local_and_runs_on_the_system() -> None:
    assert hooks()
    for hook in hooks():
        assert (hook["repo"], hook["language"]) == ("local", "system"), hook["id"]


def test_every_make_hook_names_an_existing_target() -> None:
    targets = [shlex.split(hook["entry"])[1] for hook in hooks() if shlex.split(hook["entry"])[0] == "make"]
    assert targets
    for target in targets:
        dry_run = subprocess.run(
            ["make", "--no-print-directory", "-n", target],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert dry_run.returncode == 0, (target, dry_run.stderr)


def test_every_tool_hook_runs_a_locked_dev_dependency_from_the_venv() -> None:
    tools = [shlex.split(hook["entry"])[0] for hook in hooks() if shlex.split(hook["entry"])[0] != "make"]
    assert tools
    for tool in tools:
        assert tool.startswith(".venv/bin/"), tool
        assert tool.removeprefix(".venv/bin/") in dev_dependencies(), tool


def test_the_hooks_cover_ruff_mypy_and_the_layer_pins() -> None:
    entries = [hook["entry"] for hook in hooks()]

    assert any(entry.startswith(".venv/bin/ruff check") for entry in entries)
    assert any(entry.startswith(".venv/bin/ruff format --check") for entry in entries)
    assert "make typecheck" in entries
    assert "make check-layer-requirements" in entries
