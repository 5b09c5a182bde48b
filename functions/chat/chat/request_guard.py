"""Checks every request body before any route code or data access runs (docs/contract.md section 6, rule 6).

Order: Content-Type (415), size (413), UTF-8 and JSON (400). The schema (422) is checked next by the
route's pydantic model.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from chatbot_security.conversation.errors import BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError
from chatbot_security.platform.strict_json import loads_strict

JSON_MEDIA_TYPE = "application/json"
MAX_JSON_DEPTH = 32
# The body this request's guard parsed, with its text: the resolver reads it instead of parsing again.
_PARSED: ContextVar[tuple[str, Any] | None] = ContextVar("parsed_body", default=None)


def check_json_body(event: Mapping[str, Any], max_body_bytes: int) -> Any:
    """Raise the matching error when the event's body is not acceptable JSON; no body passes.

    Returns the parsed body (None without one) and keeps it for :func:`parsed_body`, so that the body
    is parsed once per request.
    """
    _PARSED.set(None)
    body = event.get("body")
    if body is None or body == "":
        return None
    headers = event.get("headers") or {}
    content_type = _header(headers, "content-type")
    if not _is_json_utf8(content_type):
        raise UnsupportedMediaTypeError()
    # A base64 body decodes to at most 3/4 of its length: reject obviously oversized ones first.
    if len(body) > (max_body_bytes * 4) // 3 + 4:
        raise PayloadTooLargeError()
    raw = _raw_body(body, bool(event.get("isBase64Encoded")))
    if len(raw) > max_body_bytes:
        raise PayloadTooLargeError()
    try:
        text = raw.decode("utf-8", errors="strict")
        parsed = loads_strict(text)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise BadRequestError() from error
    # Fewer brackets than the limit cannot nest deeper than it: only count when they might.
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _depth(text) > MAX_JSON_DEPTH:
        raise BadRequestError()
    _PARSED.set((text, parsed))
    return parsed


def parsed_body(text: str) -> Any:
    """The resolver's JSON deserializer: the body the guard parsed for this request, or (a body the
    guard has not seen, e.g. in a unit test of the resolver alone) a parse of ``text``."""
    held = _PARSED.get()
    if held is not None and held[0] == text:
        return held[1]
    return json.loads(text)


def _header(headers: Mapping[str, Any], name: str) -> str:
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == name:
            return str(value)
    return ""


def _is_json_utf8(content_type: str) -> bool:
    media_type, _, params = content_type.partition(";")
    if media_type.strip().lower() != JSON_MEDIA_TYPE:
        return False
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return False
    return True


def _raw_body(body: str, is_base64: bool) -> bytes:
    if not is_base64:
        try:
            return body.encode("utf-8", errors="strict")
        except UnicodeEncodeError as error:  # lone surrogates
            raise BadRequestError() from error
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError) as error:
        raise BadRequestError() from error


def _depth(text: str) -> int:
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest
