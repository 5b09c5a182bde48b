"""Pieces of `chatbot-local serve` that run without starting everything."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from chatbot_local import app
from chatbot_local.lambdas import LocalFunction
from chatbot_local.template import FunctionSpec


class _Limits(BaseModel):
    ttl: int = Field(alias="SESSION_TTL_SECONDS", ge=60)


def test_settings_errors_are_reduced_to_their_first_problem() -> None:
    with pytest.raises(ValidationError) as raised:
        _Limits.model_validate({"SESSION_TTL_SECONDS": 5})

    assert app._first_problem(raised.value) == "SESSION_TTL_SECONDS: Input should be greater than or equal to 60"
    assert app._first_problem(ValueError("OIDC_ISSUER must use https\nmore")) == "OIDC_ISSUER must use https"


@pytest.mark.parametrize(
    ("host", "shown"),
    [("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "127.0.0.1"), ("::1", "[::1]"), ("localhost", "localhost")],
)
def test_urls_show_a_host_a_browser_can_open(host: str, shown: str) -> None:
    assert app._display_host(host) == shown


def test_the_token_command_is_relative_to_the_current_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", [str(tmp_path / ".venv" / "bin" / "chatbot-local")])

    assert app._token_command() == ".venv/bin/chatbot-local"


def test_scheduled_functions_run_every_interval_until_stopped(tmp_path: Path) -> None:
    events: list[dict[str, Any]] = []

    def cleanup(event: dict[str, Any], context: Any) -> dict[str, int]:
        events.append(event)
        return {"sessions_removed": 1}

    spec = FunctionSpec("SessionCleanupFunction", tmp_path, "h.f", 300, 256)
    stop, lines = threading.Event(), list[str]()
    app._schedule(LocalFunction(spec, cleanup, "eu-west-1"), 0.05, "eu-west-1", stop, lines.append)
    time.sleep(0.3)
    stop.set()

    assert events
    assert events[0]["detail-type"] == "Scheduled Event"
    assert events[0]["source"] == "aws.events"
    assert lines[0] == "SessionCleanupFunction: sessions_removed=1"
