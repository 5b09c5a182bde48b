"""Streaming end to end over chatbot-local's WebSocket API: a real stream ticket from the HTTP API, the
real `$connect` authorizer at the handshake, the stream function and its worker (run by the local
Lambda async invoke), frames pushed through the local management API, the echo model streaming word by
word. The attacks of the stream that belong to its functions, over a real socket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tools.local_api import RunningApi, running_chatbot_local

pytestmark = pytest.mark.local_api
SECRET = "zebra-quartz mail jane.doe@example.com card 4111 1111 1111 1111"


@pytest.fixture(scope="module")
def running_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApi]:
    environ = {"ECHO_WORD_DELAY_MS": "20", "RATE_LIMIT_PER_MINUTE": "30"}
    with running_chatbot_local(
        tmp_path_factory.mktemp("streaming"), environ=environ, arguments=["--cleanup-interval", "0"]
    ) as api:
        yield api


def anonymous_session(api: RunningApi) -> tuple[str, str]:
    status, created, _ = api.call("POST", "/v1/anonymous-sessions")
    assert status == 201
    return created["session_token"], created["session_id"]


def ticket_url(api: RunningApi, token: str, session_id: str) -> str:
    status, ticket, _ = api.call("POST", f"/v1/sessions/{session_id}/stream-tickets", token)
    assert status == 201, ticket
    url: str = ticket["url"]
    assert url.startswith(api.stream)
    return url


def open_stream(api: RunningApi, token: str, session_id: str) -> ClientConnection:
    return connect(ticket_url(api, token, session_id), open_timeout=15, close_timeout=5)


def until_end(socket: ClientConnection) -> list[dict[str, Any]]:
    """Frames up to and including the turn's done or error frame."""
    frames: list[dict[str, Any]] = []
    while not frames or frames[-1]["type"] == "delta":
        frames.append(json.loads(socket.recv(timeout=20)))
    return frames


def test_an_answer_streams_in_deltas_then_the_stored_turn(running_api: RunningApi) -> None:
    token, session_id = anonymous_session(running_api)

    with open_stream(running_api, token, session_id) as socket:
        socket.send(json.dumps({"action": "sendMessage", "content": "tell me about the weather today"}))
        frames = until_end(socket)

    deltas, done = frames[:-1], frames[-1]
    assert len(deltas) >= 2  # the answer arrives progressively
    assert done["type"] == "done"
    assert "".join(frame["text"] for frame in deltas) == done["turn"]["assistant_message"]["content"]
    status, page, _ = running_api.call("GET", f"/v1/sessions/{session_id}/messages", token)
    assert status == 200
    assert page["messages"] == [done["turn"]["user_message"], done["turn"]["assistant_message"]]


def test_personal_data_never_reaches_the_socket_unmasked(running_api: RunningApi) -> None:
    token, session_id = anonymous_session(running_api)

    with open_stream(running_api, token, session_id) as socket:
        socket.send(json.dumps({"action": "sendMessage", "content": SECRET}))
        frames = until_end(socket)

    assert frames[-1]["type"] == "done"
    text = json.dumps(frames)
    assert [value for value in ("jane.doe", "example.com", "4111") if value in text] == []


def test_a_second_message_while_one_streams_is_busy_and_the_first_turn_completes(running_api: RunningApi) -> None:
    token, session_id = anonymous_session(running_api)

    with open_stream(running_api, token, session_id) as socket:
        socket.send(json.dumps({"action": "sendMessage", "content": " ".join(["word"] * 40)}))
        first = json.loads(socket.recv(timeout=20))
        socket.send(json.dumps({"action": "sendMessage", "content": "me too"}))
        frames = [first, *until_end(socket)]
        while frames[-1]["type"] == "error":  # the busy refusal may arrive between two deltas
            frames += until_end(socket)

    errors = [frame["error"]["code"] for frame in frames if frame["type"] == "error"]
    assert errors == ["busy"]
    assert frames[-1]["type"] == "done"
    assert frames[-1]["turn"]["user_message"]["content"] == " ".join(["word"] * 40)


def test_malformed_frames_and_unknown_actions_get_error_frames_and_the_connection_stays_open(
    running_api: RunningApi,
) -> None:
    token, session_id = anonymous_session(running_api)

    with open_stream(running_api, token, session_id) as socket:
        socket.send("{not json")
        malformed = json.loads(socket.recv(timeout=20))
        socket.send(json.dumps({"action": "deleteEverything"}))
        unknown = json.loads(socket.recv(timeout=20))
        socket.send(json.dumps({"action": "sendMessage", "content": SECRET, "owner": "someone else"}))
        unknown_field = json.loads(socket.recv(timeout=20))
        socket.send(json.dumps({"action": "sendMessage", "content": "still here"}))
        answer = until_end(socket)

    assert malformed["error"]["code"] == "bad_request"
    assert unknown["error"]["code"] == "validation_error"
    assert unknown_field["error"]["message"] == "1 unknown field in the body"
    assert answer[-1]["type"] == "done"


def test_a_connection_whose_session_was_deleted_gets_not_found_and_is_closed(running_api: RunningApi) -> None:
    token, session_id = anonymous_session(running_api)

    with open_stream(running_api, token, session_id) as socket:
        assert running_api.call("DELETE", f"/v1/sessions/{session_id}", token)[0] == 204
        socket.send(json.dumps({"action": "sendMessage", "content": "anyone?"}))
        refused = json.loads(socket.recv(timeout=20))
        with pytest.raises(ConnectionClosed):
            socket.recv(timeout=20)

    assert refused["error"]["code"] == "not_found"


def test_a_used_ticket_is_refused_at_the_handshake(running_api: RunningApi) -> None:
    token, session_id = anonymous_session(running_api)
    url = ticket_url(running_api, token, session_id)
    with connect(url, open_timeout=15):
        pass

    with pytest.raises(InvalidStatus) as refused, connect(url, open_timeout=15):
        pass

    assert refused.value.response.status_code == 403


def test_the_local_logs_hold_no_content_ticket_or_token(running_api: RunningApi) -> None:
    token, session_id = anonymous_session(running_api)
    url = ticket_url(running_api, token, session_id)
    with connect(url, open_timeout=15) as socket:
        socket.send(json.dumps({"action": "sendMessage", "content": SECRET}))
        until_end(socket)
        socket.send(json.dumps({"action": "sendMessage", "content": SECRET, SECRET: 1}))
        socket.recv(timeout=20)

    output = running_api.output()
    ticket = url.split("ticket=", 1)[1]
    assert [value for value in ("zebra-quartz", "jane.doe", "4111", ticket, token) if value in output] == []
