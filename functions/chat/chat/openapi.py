"""The OpenAPI document of the chat API, generated from the route models in :mod:`chat.api`.

``python -m chat.openapi docs/openapi.json`` (``make openapi``) writes it; ``--check`` exits 1 when the
committed file differs from what the code generates, and a test does the same in CI.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

from chat.api import app

REF_PREFIX = "#/components/schemas/"
TITLE = "Secure chatbot API"
VERSION = "1"
DESCRIPTION = (
    "Conversations with a model, per signed-in user (OIDC access token) or anonymous visitor "
    "(session token), both sent as `Authorization: Bearer <token>`. Every response of the chat "
    "function carries `Cache-Control: no-store` and `X-Content-Type-Options: nosniff`; errors are "
    '`{"error": {"code", "message", "request_id"}}`. See docs/api.md.'
)


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
    for operations in document["paths"].values():
        for operation in operations.values():
            if "204" in operation["responses"]:
                operation["responses"]["204"].pop("content", None)  # a 204 has no body
            operation["responses"] = dict(sorted(operation["responses"].items()))
    _drop_unused_schemas(document)
    return document


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
