"""What clients and operators rely on beyond the security rules: documented alarms, readable Retry-After."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def test_every_alarm_is_explained_in_the_operations_page(raw: dict[str, Any]) -> None:
    page = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    alarms = [name for name, body in raw["Resources"].items() if body.get("Type") == "AWS::CloudWatch::Alarm"]
    assert alarms, "the template defines alarms"
    missing = [name for name in alarms if f"`{name}`" not in page]
    assert missing == []


def test_cors_lets_browsers_read_retry_after(raw: dict[str, Any]) -> None:
    # Without it a front end on another origin cannot tell the user how long to wait after a 429.
    cors = raw["Resources"]["ChatApi"]["Properties"]["CorsConfiguration"]["Fn::If"][1]
    assert "retry-after" in [header.lower() for header in cors["ExposeHeaders"]]
