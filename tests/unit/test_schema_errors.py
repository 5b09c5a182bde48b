"""The message of a 422: known fields by name and rule, anything else by count, never a value."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from chatbot_security.conversation.models import MessageRequest
from chatbot_security.conversation.schema_errors import KNOWN_FIELDS, PATTERN_RULES, describe
from tools.openapi import openapi_document


def declared_names() -> set[str]:
    document = openapi_document()
    names: set[str] = set()
    for operations in document["paths"].values():
        for operation in operations.values():
            names.update(parameter["name"] for parameter in operation.get("parameters", []))
    for schema in document["components"]["schemas"].values():
        if schema.get("additionalProperties") is False:  # request bodies
            names.update(schema["properties"])
    return names


def errors_of(body: Any) -> list[dict[str, Any]]:
    try:
        MessageRequest.model_validate(body)
    except ValidationError as error:
        return [{**e, "loc": ("body", *e["loc"])} for e in error.errors()]
    return []


def test_every_declared_field_and_parameter_is_a_known_field() -> None:
    assert declared_names() == KNOWN_FIELDS


def test_every_field_with_a_pattern_has_a_rule_in_words() -> None:
    assert set(PATTERN_RULES) <= KNOWN_FIELDS
    assert "content" in PATTERN_RULES


def test_a_made_up_field_is_counted_even_when_it_is_named_like_a_known_one_elsewhere() -> None:
    errors = [
        {"type": "extra_forbidden", "loc": ("body", "content")},  # e.g. `content` on a route without a body
        {"type": "extra_forbidden", "loc": ("body", "evil")},
    ]

    assert describe(errors) == "2 unknown fields in the body"


def test_a_name_that_is_not_declared_is_never_repeated_whatever_the_error() -> None:
    errors = [{"type": "string_too_long", "loc": ("body", "attacker_name"), "ctx": {"max_length": 3}}]

    assert describe(errors) == "1 unknown field in the body"


def test_an_error_without_a_known_kind_still_names_the_field_only() -> None:
    errors = [{"type": "something_new", "loc": ("query", "limit"), "msg": "value 'secret' is odd"}]

    assert describe(errors) == "limit: invalid value"


@given(
    content=st.one_of(st.text(max_size=40), st.integers(), st.none(), st.lists(st.text(max_size=5), max_size=3)),
    extra=st.dictionaries(st.text(min_size=1, max_size=12), st.text(max_size=12), max_size=3),
    client_message_id=st.one_of(st.none(), st.text(min_size=1, max_size=40)),
)
def test_a_message_never_repeats_a_value_or_an_unknown_name(
    content: Any, extra: dict[str, str], client_message_id: str | None
) -> None:
    body: dict[str, Any] = {**extra, "content": content}
    if client_message_id is not None:
        body["client_message_id"] = client_message_id
    errors = errors_of(body)

    message = describe(errors)

    inputs = [content, client_message_id, *extra, *extra.values()]
    texts = {value for value in inputs if isinstance(value, str) and len(value) >= 4}
    rules_and_names = " ".join([*PATTERN_RULES.values(), *KNOWN_FIELDS, "unknown field", "required", "characters"])
    assert not any(text in message and text not in rules_and_names for text in texts)
