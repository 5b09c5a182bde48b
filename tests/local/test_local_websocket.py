"""The local WebSocket API, over a real loopback socket with the `websockets` client: the handshake
runs the template's `$connect` authorizer and integration, frames are routed by the selection
expression, API Gateway's limits close connections, and a close is delivered as `$disconnect`."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest
from support.websocket_api import RunningWebSocketApi, received, running_websocket_api, wait_for
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from chatbot_local.websocket_connections import ConnectionLimits


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningWebSocketApi]:
    monkeypatch.setattr(os, "environ", dict(os.environ))
    with running_websocket_api(os.environ) as running:  # type: ignore[arg-type]
        yield running


def open_socket(api: RunningWebSocketApi, query: str = "?ticket=good-alice", path: str = "/") -> ClientConnection:
    return connect(api.url + path + query, open_timeout=10, close_timeout=5)


def refusal(api: RunningWebSocketApi, query: str) -> int:
    with pytest.raises(InvalidStatus) as raised:
        open_socket(api, query)
    return raised.value.response.status_code


def next_frame(socket: ClientConnection) -> dict[str, object]:
    frame = json.loads(socket.recv(timeout=10))
    assert isinstance(frame, dict)
    return frame


# The handshake ------------------------------------------------------------------------------------


def test_an_upgrade_without_the_identity_source_is_401_without_calling_the_authorizer(
    api: RunningWebSocketApi,
) -> None:
    assert refusal(api, "") == 401
    assert refusal(api, "?ticket=") == 401
    assert received("authorizer") == []
    assert received("stream") == []


def test_a_denied_ticket_is_refused_with_403_before_the_connect_integration(api: RunningWebSocketApi) -> None:
    assert refusal(api, "?ticket=forged") == 403
    assert len(received("authorizer")) == 1
    assert received("stream") == []


def test_an_authorizer_raising_unauthorized_is_401(api: RunningWebSocketApi) -> None:
    assert refusal(api, "?ticket=raise") == 401


def test_an_authorizer_answer_without_a_statement_is_500(api: RunningWebSocketApi) -> None:
    assert refusal(api, "?ticket=broken") == 500


def test_a_connect_integration_answering_403_refuses_the_upgrade(api: RunningWebSocketApi) -> None:
    assert refusal(api, "?ticket=good-alice&refuse=1") == 403


def test_the_authorizer_gets_api_gateways_request_event(api: RunningWebSocketApi) -> None:
    with open_socket(api):
        event = wait_for("authorizer")

    context = event["requestContext"]
    assert event["type"] == "REQUEST"
    assert event["methodArn"] == "arn:aws:execute-api:eu-west-1:123456789012:local/v1/$connect"
    assert event["queryStringParameters"] == {"ticket": "good-alice"}
    assert event["multiValueQueryStringParameters"] == {"ticket": ["good-alice"]}
    assert (context["routeKey"], context["eventType"], context["stage"]) == ("$connect", "CONNECT", "v1")
    assert context["connectionId"].endswith("=")
    assert context["identity"]["sourceIp"] == "127.0.0.1"


def test_an_allowed_ticket_connects_with_the_authorizer_context_on_connect(api: RunningWebSocketApi) -> None:
    with open_socket(api):
        connect_event = wait_for("stream", "$connect")

    authorizer = connect_event["requestContext"]["authorizer"]
    assert authorizer["owner"] == "alice"
    assert authorizer["principalId"] == "alice"
    assert authorizer["credential_exp"] == "1900000000"  # context values reach integrations as strings
    assert connect_event["requestContext"]["connectionId"] == wait_for("authorizer")["requestContext"]["connectionId"]


def test_the_stage_path_is_accepted_and_another_path_is_404(api: RunningWebSocketApi) -> None:
    with open_socket(api, path="/v1"):
        pass
    with pytest.raises(InvalidStatus) as raised:
        open_socket(api, path="/v2")
    assert raised.value.response.status_code == 404


# Routing ------------------------------------------------------------------------------------------


def test_a_frame_is_routed_by_its_action_with_the_connections_authorizer_context(api: RunningWebSocketApi) -> None:
    with open_socket(api) as socket:
        socket.send(json.dumps({"action": "sendMessage", "content": "hi"}))
        frame = next_frame(socket)

    event = wait_for("stream", "sendMessage")
    context = event["requestContext"]
    assert frame["route"] == "sendMessage"
    assert frame["owner"] == "alice"
    assert json.loads(str(frame["body"])) == {"action": "sendMessage", "content": "hi"}
    assert (context["eventType"], context["stage"], context["domainName"]) == ("MESSAGE", "v1", "127.0.0.1")
    assert context["requestId"]
    assert context["messageId"]
    assert event["isBase64Encoded"] is False


@pytest.mark.parametrize(
    "frame",
    ["not json", '{"action": "deleteEverything"}', '["sendMessage"]', '{"action": 7}', '{"action": "$connect"}', ""],
)
def test_malformed_frames_and_unknown_actions_go_to_default(api: RunningWebSocketApi, frame: str) -> None:
    with open_socket(api) as socket:
        socket.send(frame)
        answer = next_frame(socket)

    assert answer["route"] == "$default"
    assert answer["body"] == frame


def test_a_route_response_sends_the_integrations_body_back(api: RunningWebSocketApi) -> None:
    with open_socket(api) as socket:
        socket.send('{"action": "echo"}')
        answer = next_frame(socket)

    assert answer == {"route": "echo", "body": '{"action": "echo"}'}


# Limits and closing -------------------------------------------------------------------------------


def test_a_message_over_128_kb_closes_the_connection_with_1009(api: RunningWebSocketApi) -> None:
    with open_socket(api) as socket:
        socket.send("x" * (128 * 1024 + 1))
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=10)

    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
    assert received("stream", "$default") == []


def test_a_message_of_128_kb_is_delivered(api: RunningWebSocketApi) -> None:
    with open_socket(api) as socket:
        socket.send("x" * (128 * 1024))
        assert next_frame(socket) == {"route": "$default", "body": "131072 characters", "owner": "alice"}


def test_closing_delivers_disconnect_with_the_close_code(api: RunningWebSocketApi) -> None:
    with open_socket(api) as socket:
        connection_id = wait_for("stream", "$connect")["requestContext"]["connectionId"]

    event = wait_for("stream", "$disconnect")
    assert event["requestContext"]["eventType"] == "DISCONNECT"
    assert event["requestContext"]["connectionId"] == connection_id
    assert event["requestContext"]["disconnectStatusCode"] == 1000
    assert event["requestContext"]["authorizer"]["owner"] == "alice"
    assert socket.close_code == 1000


def test_an_idle_connection_is_closed_with_1001(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "environ", dict(os.environ))
    limits = ConnectionLimits(idle_seconds=0.3, max_lifetime_seconds=60)
    with running_websocket_api(os.environ, limits) as api, open_socket(api) as socket:  # type: ignore[arg-type]
        with pytest.raises(ConnectionClosed) as closed:
            socket.recv(timeout=10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1001
        assert wait_for("stream", "$disconnect")["requestContext"]["disconnectStatusCode"] == 1001


def keep_talking(socket: ClientConnection) -> None:
    """Send and receive until the server closes the connection."""
    while True:
        socket.send('{"action": "sendMessage"}')
        socket.recv(timeout=10)


def test_a_connection_is_closed_at_its_maximum_lifetime_even_when_active(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "environ", dict(os.environ))
    limits = ConnectionLimits(idle_seconds=60, max_lifetime_seconds=0.5)
    with running_websocket_api(os.environ, limits) as api, open_socket(api) as socket:  # type: ignore[arg-type]
        with pytest.raises(ConnectionClosed) as closed:
            keep_talking(socket)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1001
