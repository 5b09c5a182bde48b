"""docs/asyncapi.yaml, the streaming protocol as an AsyncAPI 3 document: well formed, consistent with the
HTTP API's schemas in docs/openapi.json, and its schemas accept the frames the product builds and refuse
malformed ones."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from support.asyncapi import CLIENT_MESSAGES, SERVER_MESSAGES, document, payload_validator, validate_frame

from chat.http_responses import error_body
from chatbot_security.conversation.errors import ChatbotError, NotFoundError, RateLimitedError, SchemaError
from chatbot_security.conversation.models import Message, Turn

OPENAPI = json.loads((Path(__file__).resolve().parents[2] / "docs" / "openapi.json").read_text(encoding="utf-8"))


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def resolve(pointer: str) -> Any:
    assert pointer.startswith("#/"), pointer
    node: Any = document()
    for part in pointer[2:].split("/"):
        node = node[part]
    return node


def turn(**assistant_flags: bool) -> Turn:
    return Turn(
        user_message=Message(message_id=str(uuid.uuid4()), role="user", content='Say "<b>hi</b>"\n\t🙂',
                             created_at="2026-11-29T18:40:00.120Z"),
        assistant_message=Message(message_id=str(uuid.uuid4()), role="assistant", content="<b>hi</b> [EMAIL]",
                                  created_at="2026-11-29T18:40:01.480Z"),
    )  # fmt: skip


# ------------------------------------------------------------------ the document


def test_the_document_is_asyncapi_3_with_info_servers_channels_operations_and_components() -> None:
    doc = document()
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"]
    assert doc["info"]["version"]
    assert doc["defaultContentType"] == "application/json"
    assert {server["protocol"] for server in doc["servers"].values()} == {"wss", "ws"}
    assert set(doc) <= {"asyncapi", "id", "info", "servers", "defaultContentType", "channels", "operations",
                        "components"}  # fmt: skip


def test_every_reference_resolves_inside_the_document() -> None:
    found = list(refs(document()))
    assert found
    for pointer in found:
        assert resolve(pointer) is not None, pointer


def test_the_channel_carries_the_client_and_server_messages() -> None:
    (channel,) = document()["channels"].values()
    assert set(channel["messages"]) == {*CLIENT_MESSAGES, *SERVER_MESSAGES}
    query = channel["bindings"]["ws"]["query"]
    assert query["required"] == ["ticket"]


def test_the_client_sends_send_message_and_receives_delta_done_and_error() -> None:
    sent: set[str] = set()
    received: set[str] = set()
    for operation in document()["operations"].values():
        assert operation["channel"] == {"$ref": "#/channels/session"}
        names = {message["$ref"].rsplit("/", 1)[1] for message in operation["messages"]}
        for message in operation["messages"]:
            assert message["$ref"].startswith("#/channels/session/messages/")
        (sent if operation["action"] == "send" else received).update(names)
        assert operation["action"] in ("send", "receive")
    assert sent == set(CLIENT_MESSAGES)
    assert received == set(SERVER_MESSAGES)


def test_the_ticket_travels_in_the_query_string_as_43_base64url_characters() -> None:
    scheme = document()["components"]["securitySchemes"]["streamTicket"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("httpApiKey", "query", "ticket")
    assert document()["components"]["schemas"]["Ticket"]["pattern"] == "^[A-Za-z0-9_-]{43}$"


def test_every_schema_is_a_valid_json_schema() -> None:
    for message in (*CLIENT_MESSAGES, *SERVER_MESSAGES):
        payload_validator(message)  # check_schema raises on an invalid schema


# ------------------------------------------------------------------ consistent with the HTTP API


def test_the_message_schema_is_the_http_apis_message_plus_the_stream_flags() -> None:
    http = OPENAPI["components"]["schemas"]["Message"]
    stream = document()["components"]["schemas"]["Message"]
    assert stream["required"] == http["required"]
    for name, spec in http["properties"].items():
        assert stream["properties"][name]["type"] == spec["type"], name
        assert stream["properties"][name].get("enum") == spec.get("enum"), name
    assert set(stream["properties"]) - set(http["properties"]) <= {"interrupted", "moderated"}


@pytest.mark.parametrize("name", ["Turn", "ErrorDetail"])
def test_the_turn_and_error_schemas_have_the_http_apis_fields(name: str) -> None:
    http = OPENAPI["components"]["schemas"][name]
    stream = document()["components"]["schemas"][name]
    assert stream["required"] == http["required"]
    assert set(stream["properties"]) == set(http["properties"])


def test_the_client_frame_takes_the_http_message_requests_fields_and_action() -> None:
    http = OPENAPI["components"]["schemas"]["MessageRequest"]
    frame = document()["components"]["schemas"]["SendMessageFrame"]
    assert set(frame["properties"]) == {"action", *http["properties"]}
    assert frame["properties"]["content"]["pattern"] == http["properties"]["content"]["pattern"]
    assert frame["additionalProperties"] is False


# ------------------------------------------------------------------ frames


def test_a_done_frame_with_the_turn_the_http_api_returns_is_valid() -> None:
    frame = {"type": "done", "turn": json.loads(turn().model_dump_json())}
    assert validate_frame(frame) == "done"


def test_a_done_frame_of_an_interrupted_or_moderated_answer_is_valid() -> None:
    frame = {"type": "done", "turn": json.loads(turn().model_dump_json())}
    frame["turn"]["assistant_message"].update({"interrupted": True, "moderated": True})
    assert validate_frame(frame) == "done"


ERRORS = [NotFoundError(), RateLimitedError(retry_after_seconds=30), SchemaError("content: at most 4000 characters")]


@pytest.mark.parametrize("error", [*ERRORS, ChatbotError()], ids=["not-found", "rate-limited", "schema", "internal"])
def test_an_error_frame_with_the_http_apis_error_body_is_valid(error: ChatbotError) -> None:
    frame = {"type": "error", **json.loads(error_body(error, "Yx1a2Fb3IAMFs4w="))}
    assert validate_frame(frame) == "error"


def test_a_busy_error_frame_is_valid() -> None:
    frame = {"type": "error", "error": {"code": "busy", "message": "Wait for the answer.", "request_id": "r-1"}}
    assert validate_frame(frame) == "error"


def test_a_delta_frame_is_valid() -> None:
    assert validate_frame(json.dumps({"type": "delta", "text": "Hello, "})) == "delta"


def test_a_send_message_frame_is_valid_with_or_without_a_client_message_id() -> None:
    with_id = {"action": "sendMessage", "content": "Hi\nthere", "client_message_id": str(uuid.uuid4())}
    for frame in ({"action": "sendMessage", "content": "Hi"}, with_id):
        assert validate_frame(frame, CLIENT_MESSAGES) == "sendMessage"


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "delta", "text": ""},
        {"type": "delta", "text": "x", "html": "<b>x</b>"},
        {"type": "delta"},
        {"type": "done", "turn": {"user_message": {}}},
        {"type": "error", "error": {"code": "busy"}},
        {"type": "error", "error": {"code": "busy", "message": "m", "request_id": "r", "trace": "..."}},
        {"type": "progress", "text": "x"},
        {"text": "x"},
    ],
    ids=["empty-delta", "extra-field", "no-text", "incomplete-turn", "incomplete-error", "error-extra-field",
         "unknown-type", "no-type"],
)  # fmt: skip
def test_a_malformed_server_frame_is_refused(frame: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate_frame(frame)


@pytest.mark.parametrize(
    "frame",
    [
        {"action": "sendMessage"},
        {"action": "sendMessage", "content": ""},
        {"action": "sendMessage", "content": "x" * 4001},
        {"action": "sendMessage", "content": "a\x00b"},
        {"action": "sendMessage", "content": "a\u202eb"},
        {"action": "sendMessage", "content": "x", "client_message_id": "not-a-uuid"},
        {"action": "sendMessage", "content": "x", "client_message_id": str(uuid.uuid1())},
        {"action": "sendMessage", "content": "x", "session_id": str(uuid.uuid4())},
        {"action": "deleteSession", "content": "x"},
        {"action": "sendMessage", "content": 42},
    ],
    ids=["no-content", "empty", "too-long", "nul", "bidi-override", "bad-uuid", "uuid-v1", "other-session",
         "unknown-action", "not-a-string"],
)  # fmt: skip
def test_a_malformed_client_frame_is_refused(frame: dict[str, Any]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        validate_frame(frame, CLIENT_MESSAGES)


def test_every_example_of_the_document_is_valid_for_its_message() -> None:
    for name, message in document()["components"]["messages"].items():
        assert message["examples"], name
        for example in message["examples"]:
            payload_validator(name).validate(example["payload"])
