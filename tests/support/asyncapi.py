"""Validate WebSocket frames against docs/asyncapi.yaml: the committed AsyncAPI document is the contract
of the streaming protocol, and every frame a test sees can be checked against it."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.yaml"
SERVER_MESSAGES = ("delta", "done", "error")
CLIENT_MESSAGES = ("sendMessage",)


@functools.cache
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(DOCUMENT.read_text(encoding="utf-8"))
    return loaded


def payload_validator(message: str) -> jsonschema.protocols.Validator:
    """A JSON Schema validator of one message's payload, resolving ``#/components/...`` in the document."""
    payload = document()["components"]["messages"][message]["payload"]
    schema = {**payload, "components": document()["components"]}
    validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    validator_class.check_schema(schema)
    validator: jsonschema.protocols.Validator = validator_class(schema)
    return validator


def validate_frame(frame: str | bytes | dict[str, Any], messages: tuple[str, ...] = SERVER_MESSAGES) -> str:
    """The name of the one message of ``messages`` the frame is; raises ``ValidationError`` otherwise."""
    parsed = json.loads(frame) if isinstance(frame, str | bytes) else frame
    matches = [name for name in messages if payload_validator(name).is_valid(parsed)]
    if len(matches) != 1:
        errors = {name: [e.message for e in payload_validator(name).iter_errors(parsed)] for name in messages}
        raise jsonschema.ValidationError(f"frame matches {matches or 'no message'}: {errors}")
    return matches[0]
