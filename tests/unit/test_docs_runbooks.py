"""Runbooks that security depends on say what to do, in the right order."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def section(page: str, start: str, end: str) -> str:
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    return text.split(start, 1)[1].split(end, 1)[0]


def test_the_rotation_runbook_covers_a_leaked_key() -> None:
    # A single put-secret-value leaves the leaked key valid as AWSPREVIOUS: the compromise case must
    # put a new value, then take AWSPREVIOUS off the leaked version, then replace warm containers
    for page, start, end in (
        ("authentication.md", "### When the signing secret has leaked (compromise)", "\n## "),
        ("infrastructure.md", "- **The session-token signing key leaked (compromise)**", "\n- **"),
    ):
        steps = section(page, start, end)
        new_value = steps.index("put-secret-value")
        off_previous = steps.index("update-secret-version-stage")
        new_containers = steps.index("update-function-configuration")
        assert new_value < off_previous < new_containers, page
        assert "--remove-from-version-id" in steps, page
        assert "AWSPREVIOUS" in steps[off_previous - 200 : off_previous + 200], page
