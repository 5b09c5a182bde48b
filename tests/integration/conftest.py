from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _anonymous_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOW_ANONYMOUS", "true")
