"""The OpenAPI document is generated from the route models and committed; CI fails when it drifts."""

from __future__ import annotations

import json
from pathlib import Path

from chat.openapi import main, openapi_document, render

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "openapi.json"
ROUTES = {
    ("post", "/v1/anonymous-sessions"),
    ("post", "/v1/sessions"),
    ("get", "/v1/sessions"),
    ("get", "/v1/sessions/{session_id}"),
    ("delete", "/v1/sessions/{session_id}"),
    ("post", "/v1/sessions/{session_id}/messages"),
    ("get", "/v1/sessions/{session_id}/messages"),
    ("delete", "/v1/admin/users/{subject}"),
}


def test_the_committed_document_is_what_the_code_generates() -> None:
    # If this fails, run `make openapi` and commit docs/openapi.json.
    assert COMMITTED.read_text(encoding="utf-8") == render()


def test_every_route_of_section_3_is_documented() -> None:
    paths = openapi_document()["paths"]
    assert {(method, path) for path, methods in paths.items() for method in methods} == ROUTES


def test_the_message_body_accepts_no_other_field() -> None:
    schema = openapi_document()["components"]["schemas"]["MessageRequest"]
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {"content", "client_message_id"}
    assert "\u202e" in schema["properties"]["content"]["pattern"]  # bidi overrides are excluded


def test_errors_are_documented_with_the_error_body() -> None:
    post = openapi_document()["paths"]["/v1/sessions/{session_id}/messages"]["post"]
    assert set(post["responses"]) >= {"201", "400", "404", "409", "413", "415", "422", "429", "502", "504"}
    assert post["responses"]["409"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }
    assert "content" not in openapi_document()["paths"]["/v1/sessions/{session_id}"]["delete"]["responses"]["204"]


def test_the_anonymous_route_alone_needs_no_bearer_token() -> None:
    paths = openapi_document()["paths"]
    open_routes = [(m, p) for p, methods in paths.items() for m, op in methods.items() if not op.get("security")]
    assert open_routes == [("post", "/v1/anonymous-sessions")]


def test_the_check_mode_reports_drift(tmp_path: Path) -> None:
    target = tmp_path / "openapi.json"
    assert main([str(target)]) == 0
    assert main([str(target), "--check"]) == 0
    document = json.loads(target.read_text())
    document["info"]["version"] = "0"
    target.write_text(json.dumps(document))
    assert main([str(target), "--check"]) == 1
