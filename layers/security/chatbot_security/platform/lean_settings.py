"""Settings for the functions that must start without pydantic (the WebSocket ``$connect`` authorizer).

With :mod:`chatbot_security.platform.settings` the only place that reads the environment. It reads the
few names such a function needs, with the same names and meaning as :class:`Settings`, validated by
hand, once per container. Importing pydantic and the full settings model costs a cold start several
hundred milliseconds that a handshake should not wait for.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass

# DynamoDB table names: 3 to 255 of these characters.
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")


@dataclass(frozen=True)
class LeanSettings:
    table_name: str


@functools.cache
def get_lean_settings() -> LeanSettings:
    """``TABLE_NAME`` from the environment; a missing or malformed value fails with its variable name."""
    table_name = os.environ.get("TABLE_NAME", "").strip()
    if not _TABLE_NAME.fullmatch(table_name):
        raise RuntimeError("TABLE_NAME is not configured")
    return LeanSettings(table_name=table_name)
