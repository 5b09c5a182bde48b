"""Rule 9 (logs): the redacting formatter is the safety net, and log injection is neutralised."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chatbot_security.platform.observability import logger
from chatbot_security.privacy.redaction import MAX_LOGGED_CHARS, redact_text


def lines(log_output: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log_output.getvalue().splitlines() if line.strip()]


def test_tokens_and_personal_data_are_masked_in_any_field(log_output: Any) -> None:
    jwt_like = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
    logger.info(
        f"user wrote jane@example.com and {jwt_like}",
        extra={
            "note": "card 4111 1111 1111 1111",
            "nested": {"auth": "Bearer abc.def.ghi"},
            "iban": "DE89 3704 0044 0532 0130 00",
        },
    )
    text = log_output.getvalue()
    for value in ("jane@example.com", jwt_like, "4111 1111 1111 1111", "abc.def.ghi", "DE89 3704"):
        assert value not in text


def test_log_injection_cannot_forge_a_line_or_a_field(log_output: Any) -> None:
    forged = 'hello"\n{"level":"ERROR","message":"forged","admin":true}\r\nnext'
    logger.info("user input", extra={"field": forged})
    records = lines(log_output)
    assert len(records) == 1
    assert records[0]["field"].count("\n") == 2  # kept as data inside one JSON string
    assert "admin" not in records[0]


def test_powertools_fields_are_left_readable(log_output: Any) -> None:
    logger.info("plain")
    record = lines(log_output)[0]
    assert record["message"] == "plain"
    assert record["level"] == "INFO"
    assert record["timestamp"][:2] == "20"


def test_ip_addresses_and_ssns_are_masked_too(log_output: Any) -> None:
    logger.info(
        "client 2001:db8::8a2e:370:7334 and 198.51.100.23 sent 078-05-1120", extra={"v6": "fe80::1ff:fe23:4567:890a"}
    )
    text = log_output.getvalue()
    for value in ("2001:db8::8a2e:370:7334", "198.51.100.23", "078-05-1120", "fe80::1ff:fe23:4567:890a"):
        assert value not in text


def test_an_exception_logged_with_its_traceback_is_redacted_in_every_field(log_output: Any) -> None:
    # Powertools puts the exception object itself in stack_trace.value, written as its str()
    try:
        raise ValueError("lookup failed for jane@example.com with card 4111 1111 1111 1111")
    except ValueError:
        logger.exception("lookup failed")
    text = log_output.getvalue()
    assert "jane@example.com" not in text
    assert "4111 1111" not in text
    assert lines(log_output)[0]["exception_name"] == "ValueError"


@pytest.mark.parametrize(
    "value",
    ["4111 1111 1111 1111", "4111-1111-1111-1111", "415 555 2671", "+1 415 555 2671", "DE89 3704 0044 0532 0130 00"],
)
@pytest.mark.parametrize("offset", range(-24, 4))
def test_a_grouped_number_cut_at_the_length_bound_leaves_none_of_its_groups(value: str, offset: int) -> None:
    # Given a log string whose length bound falls anywhere inside (or just around) a grouped number
    prefix = "x " * ((MAX_LOGGED_CHARS + offset) // 2)
    text = prefix + value + " and more words after it " * 20
    # When it is redacted
    redacted = redact_text(text)
    # Then no group of the number that could identify it survives (the last four digits included)
    digits = [group for group in value.replace("-", " ").split() if any(c.isdigit() for c in group)]
    assert not [group for group in digits if len(group) >= 3 and group in redacted], redacted[-80:]
