"""Rule 6: Content-Type, size, UTF-8 and JSON are checked, in that order, before anything else."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from chat.request_guard import check_json_body
from chatbot_security.conversation.errors import BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError


def event(body: str | None, content_type: str | None = "application/json", b64: bool = False) -> dict[str, Any]:
    headers = {"content-type": content_type} if content_type else {}
    return {"body": body, "headers": headers, "isBase64Encoded": b64}


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded",
                                          "application/json; charset=latin-1", "application/jsonp"])  # fmt: skip
def test_other_content_types_are_415(content_type: str | None) -> None:
    with pytest.raises(UnsupportedMediaTypeError):
        check_json_body(event('{"content": "hi"}', content_type), 1024)


def test_json_with_utf8_charset_passes() -> None:
    check_json_body(event('{"content": "hi"}', "Application/JSON; charset=UTF-8"), 1024)


def test_content_type_is_checked_before_size() -> None:
    with pytest.raises(UnsupportedMediaTypeError):
        check_json_body(event("x" * 5000, "text/plain"), 1024)


def test_body_over_the_limit_is_413() -> None:
    with pytest.raises(PayloadTooLargeError):
        check_json_body(event('{"content": "' + "a" * 2000 + '"}'), 1024)


def test_size_counts_bytes_not_characters() -> None:
    with pytest.raises(PayloadTooLargeError):
        check_json_body(event('{"content": "' + "é" * 600 + '"}'), 1024)


@pytest.mark.parametrize("body", ['{"content": ', "[1,]", '{"a": NaN}', '{"a": 1, "a": 2}', "\ud800"])
def test_malformed_json_is_400(body: str) -> None:
    with pytest.raises(BadRequestError):
        check_json_body(event(body), 1024)


def test_invalid_utf8_in_a_base64_body_is_400() -> None:
    with pytest.raises(BadRequestError):
        check_json_body(event(base64.b64encode(b'{"content": "\xff\xfe"}').decode(), b64=True), 1024)


def test_deeply_nested_json_is_400() -> None:
    with pytest.raises(BadRequestError):
        check_json_body(event("[" * 100 + "]" * 100), 4096)


def test_no_body_passes() -> None:
    check_json_body(event(None, None), 1024)


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    check_json_body(event('{"content": "' + "[{" * 40 + '\\" still a string ' + "}]" * 40 + '"}'), 4096)


def test_nesting_deeper_than_the_limit_is_400_even_with_strings_inside() -> None:
    body = '{"a": "x\\"y", "b": ' + "[" * 40 + '"[deep]"' + "]" * 40 + "}"
    with pytest.raises(BadRequestError):
        check_json_body(event(body), 4096)
