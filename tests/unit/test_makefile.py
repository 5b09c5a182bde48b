"""The Makefile's developer entry points: ports for `make run`, what `make setup` says about Chromium,
and why `make audit` fails where the vulnerability service is unreachable."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def make(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_make_run_takes_the_api_demo_and_websocket_ports() -> None:
    dry_run = make("-n", "run", "PORT=3100", "WEB_PORT=8180", "WS_PORT=3101").stdout.splitlines()

    assert dry_run[-1].endswith("chatbot-local serve --port 3100 --web-port 8180 --ws-port 3101")


def test_make_setup_says_what_to_install_when_chromium_is_missing(tmp_path: Path) -> None:
    finished = make("setup", f"CHROMIUM_PATH={tmp_path / 'no-chromium'}")

    assert finished.returncode == 0
    assert "Chromium not found" in finished.stdout
    assert "apt-get install chromium" in finished.stdout


def test_make_audit_explains_that_it_needs_the_vulnerability_service() -> None:
    finished = make("audit", "AUDIT_SERVICE=http://127.0.0.1:9/unreachable")

    assert finished.returncode != 0
    assert "cannot reach the vulnerability service" in finished.stdout
    assert "pip-audit" in finished.stdout


def test_make_test_needs_neither_the_sam_cli_nor_checkov(tmp_path: Path) -> None:
    # Given a machine where no tool has been installed under .tools yet
    dry_run = make("-n", "test", f"TOOLS={tmp_path / 'tools'}").stdout

    # Then make test would install the locked .venv and run pytest, and nothing else
    assert "aws-sam-cli" not in dry_run
    assert "checkov" not in dry_run
    assert "build-python" not in dry_run
    assert dry_run.splitlines()[-1].endswith("/pytest")


def test_make_setup_still_installs_the_sam_cli_and_checkov_for_make_check(tmp_path: Path) -> None:
    dry_run = make("-n", "setup", f"TOOLS={tmp_path / 'tools'}").stdout

    assert f"aws-sam-cli=={make_variable('SAM_VERSION')}" in dry_run
    assert f"checkov=={make_variable('CHECKOV_VERSION')}" in dry_run


def make_variable(name: str) -> str:
    for line in (ROOT / "Makefile").read_text().splitlines():
        if line.startswith(f"{name} ") and ":=" in line:
            return line.split(":=", 1)[1].strip()
    raise AssertionError(f"{name} is not set in the Makefile")
