"""The OpenAPI document of the chat API, generated from the route models of the chat API (:mod:`chat.all_routes`).

``python -m tools.openapi docs/openapi.json`` (``make openapi``) writes it; ``--check`` exits 1 when the
committed file differs from what the code generates, and a test does the same in CI.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

from chat.all_routes import app
from chat.data_rights_routes import handle_export_my_data  # noqa: F401  (registers the data-rights routes)
from chatbot_security.conversation.models import HARD_MAX_MESSAGE_CHARS
from chatbot_security.platform.settings import LimitSettings

REF_PREFIX = "#/components/schemas/"
TITLE = "Secure chatbot API"
VERSION = "1"
DESCRIPTION = (
    "Conversations with a model, per signed-in user (OIDC access token) or anonymous visitor "
    "(session token), both sent as `Authorization: Bearer <token>`. Every response of the chat "
    "function carries `Cache-Control: no-store` and `X-Content-Type-Options: nosniff`; errors are "
    '`{"error": {"code", "message", "request_id"}}`. See docs/api.md.'
)
# Short operation ids (the method names of generated clients) and one tag per resource.
OPERATIONS = {
    ("post", "/v1/anonymous-sessions"): ("createAnonymousSession", "anonymous-sessions"),
    ("post", "/v1/sessions"): ("createSession", "sessions"),
    ("get", "/v1/sessions"): ("listSessions", "sessions"),
    ("get", "/v1/sessions/{session_id}"): ("getSession", "sessions"),
    ("delete", "/v1/sessions/{session_id}"): ("deleteSession", "sessions"),
    ("post", "/v1/sessions/{session_id}/messages"): ("postMessage", "messages"),
    ("get", "/v1/sessions/{session_id}/messages"): ("listMessages", "messages"),
    ("delete", "/v1/admin/users/{subject}"): ("eraseUser", "admin"),
    ("get", "/v1/usage"): ("getUsage", "usage"),
    ("post", "/v1/sessions/{session_id}/stream-tickets"): ("createStreamTicket", "streaming"),
    ("get", "/v1/me/export"): ("exportMyData", "me"),
    ("delete", "/v1/me"): ("eraseMyData", "me"),
}
TAGS = [
    {"name": "anonymous-sessions", "description": "Sessions without an account (when the deployment allows them)"},
    {"name": "sessions", "description": "Your conversations"},
    {"name": "messages", "description": "The turns of a conversation"},
    {"name": "admin", "description": "Erasure on request (admin role, MFA)"},
    {"name": "usage", "description": "Your model tokens and daily quota"},
    {"name": "streaming", "description": "Tickets for the WebSocket API that streams answers (docs/streaming.md)"},
    {"name": "me", "description": "Your own data: a copy of everything held about you, and its erasure"},
]
_MESSAGE_CHARS = LimitSettings.model_fields["max_message_chars"]


def openapi_document() -> dict[str, Any]:
    schema = app.get_openapi_json_schema(
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        security_schemes={
            "bearerAuth": HTTPBearer(description="An OIDC access token, or the session_token of an anonymous session")
        },
    )
    document: dict[str, Any] = json.loads(schema)
    document["tags"] = TAGS
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if (method, path) not in OPERATIONS:
                raise KeyError(f"{method.upper()} {path} has no operationId in tools.openapi.OPERATIONS")
            operation["operationId"], tag = OPERATIONS[(method, path)]
            operation["tags"] = [tag]
            if "204" in operation["responses"]:
                operation["responses"]["204"].pop("content", None)  # a 204 has no body
            operation["responses"] = dict(sorted(operation["responses"].items()))
    _drop_unused_schemas(document)
    _state_deployed_limits(document)
    _escape_patterns(document)
    return document


def _state_deployed_limits(document: dict[str, Any]) -> None:
    """The model accepts up to the hard bound; a deployment allows MAX_MESSAGE_CHARS (default 4000)."""
    content = document["components"]["schemas"]["MessageRequest"]["properties"]["content"]
    content["maxLength"] = _MESSAGE_CHARS.default
    content["description"] = (
        f"At most {_MESSAGE_CHARS.default} characters as deployed by default; the deployment's MaxMessageChars "
        f"parameter (MAX_MESSAGE_CHARS) sets the limit, between 1 and {HARD_MAX_MESSAGE_CHARS}. A longer message "
        "is answered 422."
    )


def escaped_pattern(pattern: str) -> str:
    """`pattern` with every character outside printable ASCII written as a regex escape (`\\x1f`,
    `\\u202e`): the same regular expression, but no control or invisible character in the document,
    which YAML-based tools (and readers) cannot take."""
    return "".join(
        char if 0x20 <= ord(char) < 0x7F else (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")
        for char in pattern
    )


def _escape_patterns(node: Any) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                node[key] = escaped_pattern(value)
            else:
                _escape_patterns(value)
    elif isinstance(node, list):
        for item in node:
            _escape_patterns(item)


def _drop_unused_schemas(document: dict[str, Any]) -> None:
    """Powertools adds its own validation-error schemas; this API answers errors with ErrorBody."""
    schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})
    used: set[str] = set()
    pending = [document["paths"]]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(REF_PREFIX) and ref[len(REF_PREFIX) :] not in used:
                used.add(ref[len(REF_PREFIX) :])
                pending.append(schemas.get(ref[len(REF_PREFIX) :], {}))
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    for name in [name for name in schemas if name not in used]:
        del schemas[name]


def render() -> str:
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("path", type=Path, help="where the document lives, e.g. docs/openapi.json")
    parser.add_argument("--check", action="store_true", help="fail when the file differs from the generated one")
    args = parser.parse_args(argv)
    generated = render()
    if args.check:
        current = args.path.read_text(encoding="utf-8") if args.path.exists() else ""
        if current != generated:
            print(f"{args.path} is out of date: run make openapi", file=sys.stderr)
            return 1
        return 0
    args.path.write_text(generated, encoding="utf-8")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
