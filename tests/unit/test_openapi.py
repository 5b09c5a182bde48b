"""The OpenAPI document is generated from the route models and committed; CI fails when it drifts."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tools.openapi import main, openapi_document, render

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
    ("post", "/v1/sessions/{session_id}/stream-tickets"),
    ("delete", "/v1/admin/users/{subject}"),
    ("get", "/v1/me/export"),
    ("delete", "/v1/me"),
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
    assert "\\u202e" in schema["properties"]["content"]["pattern"]  # bidi overrides are excluded


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


def test_every_operation_has_a_short_operation_id_and_a_tag() -> None:
    operations = [op for methods in openapi_document()["paths"].values() for op in methods.values()]
    assert sorted(op["operationId"] for op in operations) == [
        "createAnonymousSession",
        "createSession",
        "createStreamTicket",
        "deleteSession",
        "eraseMyData",
        "eraseUser",
        "exportMyData",
        "getSession",
        "listMessages",
        "listSessions",
        "postMessage",
    ]
    declared = {tag["name"] for tag in openapi_document()["tags"]}
    assert all(len(op["tags"]) == 1 and op["tags"][0] in declared for op in operations)


def test_the_document_holds_no_control_or_invisible_character() -> None:
    text = COMMITTED.read_text(encoding="utf-8")
    assert all(0x20 <= ord(char) < 0x7F or char == "\n" for char in text)


def test_escaped_patterns_are_the_same_regular_expressions() -> None:
    from chatbot_security.conversation.models import MessageRequest

    original = MessageRequest.model_json_schema()["properties"]["content"]["pattern"]
    escaped = openapi_document()["components"]["schemas"]["MessageRequest"]["properties"]["content"]["pattern"]
    samples = ["Hello", "tab\there", "bell\x07", "c1\x85", "bidi\u202e", "isolate\u2066", "émoji 🙂", "line\nbreak"]
    assert escaped != original
    assert [bool(re.fullmatch(escaped, s)) for s in samples] == [bool(re.fullmatch(original, s)) for s in samples]
    assert not re.fullmatch(escaped, "bidi\u202e")  # bidi overrides are still excluded


def test_openapi_spec_validator_accepts_the_committed_document() -> None:
    from openapi_spec_validator import validate
    from openapi_spec_validator.readers import read_from_filename

    document, _ = read_from_filename(str(COMMITTED))  # read as YAML, like YAML-based tools do
    validate(document)


def test_the_message_limit_states_the_deployed_default() -> None:
    content = openapi_document()["components"]["schemas"]["MessageRequest"]["properties"]["content"]
    assert content["maxLength"] == 4000
    assert "MAX_MESSAGE_CHARS" in content["description"]
