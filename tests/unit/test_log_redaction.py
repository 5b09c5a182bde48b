"""Rule 9 (logs): the redacting formatter is the safety net, and log injection is neutralised."""

from __future__ import annotations

import json
from typing import Any

from chatbot_security.observability import logger


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
