"""Strict JSON parsing for input from outside: no NaN or Infinity, no duplicate member names.

Python's parser takes both by default; a duplicate member lets two readers of one document see two
different values. Used for request bodies, WebSocket frames and JWT segments alike.
"""

from __future__ import annotations

import json
from typing import Any


def loads_strict(document: str | bytes) -> Any:
    """Parse ``document``; ValueError (or RecursionError for absurd nesting) when it is not strict JSON."""
    return json.loads(document, parse_constant=_reject_constant, object_pairs_hook=_unique_members)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        raise ValueError("duplicate member name")
    return document
