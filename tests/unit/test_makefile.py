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


def test_make_run_takes_the_api_and_demo_ports() -> None:
    dry_run = make("-n", "run", "PORT=3100", "WEB_PORT=8180").stdout.splitlines()

    assert dry_run[-1].endswith("chatbot-local serve --port 3100 --web-port 8180")


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
