"""The message of a 422: each failing known field with its rule, never the value; anything else by count.

A field the API declares is named with the rule it broke (``content: at most 4000 characters``). A
name the caller made up (an unknown JSON field or query parameter) is attacker input: it is only
counted (``2 unknown fields in the body``). Rules are written here from the error's kind and the
limits of the declaration, never from the input or from the validator's own text (which may quote it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

# Every field and parameter the API declares (a test compares them with the OpenAPI document).
KNOWN_FIELDS = frozenset({"content", "client_message_id", "limit", "cursor", "session_id", "subject"})
# What a field's pattern means, for the fields that have one.
PATTERN_RULES = {
    "content": "no control characters other than newline and tab, no bidirectional controls",
    "cursor": "must be a next_cursor of this listing",
    "subject": "no control characters",
}
WHERE = {"body": "in the body", "query": "in the query", "path": "in the path"}


def _plural(count: object, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


# The rule of each kind of error, from the limits of the declaration (pydantic's ``ctx``).
_RULES: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "missing": lambda _: "required",
    "string_too_long": lambda limits: "at most " + _plural(limits.get("max_length"), "character"),
    "string_too_short": lambda limits: "at least " + _plural(limits.get("min_length"), "character"),
    "string_type": lambda _: "must be a string",
    "string_unicode": lambda _: "must be a string",
    "int_parsing": lambda _: "must be an integer",
    "int_type": lambda _: "must be an integer",
    "int_from_float": lambda _: "must be an integer",
    "greater_than_equal": lambda limits: f"at least {limits.get('ge')}",
    "less_than_equal": lambda limits: f"at most {limits.get('le')}",
    "uuid_parsing": lambda _: "must be a UUID",
    "uuid_type": lambda _: "must be a UUID",
    "uuid_version": lambda limits: f"must be a UUIDv{limits.get('expected_version')}",
    "model_attributes_type": lambda _: "must be a JSON object",
    "model_type": lambda _: "must be a JSON object",
    "dict_type": lambda _: "must be a JSON object",
    "json_invalid": lambda _: "must be valid JSON",
}


def rule_of(error: Mapping[str, Any], field: str) -> str:
    """The rule an error says was broken, in the API's words."""
    kind = str(error.get("type", ""))
    limits = error.get("ctx") or {}
    if kind == "string_pattern_mismatch":
        return PATTERN_RULES.get(field, "invalid format")
    if kind == "value_error" and isinstance(limits.get("error"), ValueError):
        return _our_rule(limits["error"])
    rule = _RULES.get(kind)
    return rule(limits) if rule else "invalid value"


def describe(errors: Iterable[Mapping[str, Any]]) -> str:
    """One message for all of a request's schema errors, known fields first, in a stable order."""
    rules: dict[str, list[str]] = {}
    unknown: dict[str, int] = {}
    for error in errors:
        location = tuple(error.get("loc") or ())
        where = str(location[0]) if location else "body"
        field = location[1] if len(location) > 1 else None
        if error.get("type") == "extra_forbidden" or (isinstance(field, str) and field not in KNOWN_FIELDS):
            unknown[where] = unknown.get(where, 0) + 1
            continue
        name = field if isinstance(field, str) else where
        rule = rule_of(error, name)
        if rule not in rules.setdefault(name, []):
            rules[name].append(rule)
    parts = [f"{name}: {', '.join(found)}" for name, found in rules.items()]
    parts += [unknown_fields(count, where) for where, count in unknown.items()]
    return "; ".join(parts) or "The request does not match the API schema."


def unknown_fields(count: int, where: str) -> str:
    """``1 unknown field in the body``: how many, never which."""
    return f"{count} unknown field{'' if count == 1 else 's'} {WHERE.get(where, 'in the request')}"


def _our_rule(error: ValueError) -> str:
    """The text of one of our own validators (``must not be blank``), which never quotes the input."""
    text = str(error).strip()
    return text if text and len(text) <= 120 and text.isprintable() else "invalid value"
