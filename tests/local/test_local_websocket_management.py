"""The management API (`@connections`) and Lambda's async invoke on the WebSocket API's port, called
with boto3 as the functions call them: frames reach the client, a closed connection is 410
GoneException, and `InvocationType=Event` runs the named function's handler in the background."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aiohttp.test_utils import make_mocked_request
from support.websocket_api import RunningWebSocketApi, running_websocket_api, wait_for
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from chatbot_local.websocket_management import refusal


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningWebSocketApi]:
    monkeypatch.setattr(os, "environ", dict(os.environ))
    with running_websocket_api(os.environ) as running:  # type: ignore[arg-type]
        yield running


def open_socket(api: RunningWebSocketApi) -> tuple[ClientConnection, str]:
    socket = connect(api.url + "/?ticket=good-alice", open_timeout=10, close_timeout=5)
    return socket, wait_for("stream", "$connect")["requestContext"]["connectionId"]


def management(api: RunningWebSocketApi) -> Any:
    return boto3.client("apigatewaymanagementapi", endpoint_url=api.http)


def test_post_to_connection_sends_the_body_as_a_text_frame(api: RunningWebSocketApi) -> None:
    socket, connection_id = open_socket(api)
    with socket:
        management(api).post_to_connection(ConnectionId=connection_id, Data=b'{"type": "delta", "text": "Hi"}')

        assert socket.recv(timeout=10) == '{"type": "delta", "text": "Hi"}'


def test_post_to_a_closed_connection_is_410_gone(api: RunningWebSocketApi) -> None:
    socket, connection_id = open_socket(api)
    with socket:
        pass
    wait_for("stream", "$disconnect")
    client = management(api)

    with pytest.raises(client.exceptions.GoneException) as raised:
        client.post_to_connection(ConnectionId=connection_id, Data=b"late")

    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410
    assert raised.value.response["Error"]["Code"] == "GoneException"


def test_a_gone_answer_names_gone_exception_in_its_body(api: RunningWebSocketApi) -> None:
    headers = {"Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/eu-west-1/execute-api/aws4_request"}
    request = urllib.request.Request(f"{api.http}/@connections/Gone0000000000=", data=b"x", headers=headers)
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)

    assert raised.value.code == 410
    assert raised.value.headers["x-amzn-ErrorType"] == "GoneException"
    assert json.loads(raised.value.read())["__type"] == "GoneException"


def test_post_to_an_unknown_connection_is_410_gone(api: RunningWebSocketApi) -> None:
    client = management(api)

    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId="NoSuchConnect1=", Data=b"x")


def test_post_over_128_kb_is_refused_and_the_connection_stays(api: RunningWebSocketApi) -> None:
    socket, connection_id = open_socket(api)
    client = management(api)
    with socket:
        with pytest.raises(client.exceptions.PayloadTooLargeException):
            client.post_to_connection(ConnectionId=connection_id, Data=b"x" * (128 * 1024 + 1))
        client.post_to_connection(ConnectionId=connection_id, Data=b"still here")

        assert socket.recv(timeout=10) == "still here"


def test_get_connection_describes_it(api: RunningWebSocketApi) -> None:
    socket, connection_id = open_socket(api)
    with socket:
        answer = management(api).get_connection(ConnectionId=connection_id)

    assert answer["Identity"]["SourceIp"] == "127.0.0.1"
    assert answer["ConnectedAt"] <= answer["LastActiveAt"]


def test_delete_connection_closes_it_and_delivers_disconnect(api: RunningWebSocketApi) -> None:
    socket, connection_id = open_socket(api)
    client = management(api)
    with socket:
        client.delete_connection(ConnectionId=connection_id)
        with pytest.raises(ConnectionClosed):
            socket.recv(timeout=10)

    assert wait_for("stream", "$disconnect")["requestContext"]["connectionId"] == connection_id
    with pytest.raises(client.exceptions.GoneException):
        client.get_connection(ConnectionId=connection_id)


def test_unsigned_management_calls_are_refused(api: RunningWebSocketApi) -> None:
    socket, connection_id = open_socket(api)
    request = urllib.request.Request(f"{api.http}/@connections/{connection_id}", data=b"forged", method="POST")
    with socket, pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)

    assert raised.value.code == 403


def test_the_stage_prefixed_callback_path_is_accepted(api: RunningWebSocketApi) -> None:
    socket, connection_id = open_socket(api)
    with socket:
        client = boto3.client("apigatewaymanagementapi", endpoint_url=f"{api.http}/v1")
        client.post_to_connection(ConnectionId=connection_id, Data=b"via the stage")

        assert socket.recv(timeout=10) == "via the stage"


# Lambda's async invoke ----------------------------------------------------------------------------


def test_an_async_invoke_runs_the_named_handler_which_reaches_the_client(api: RunningWebSocketApi) -> None:
    socket, _ = open_socket(api)
    with socket:
        socket.send('{"action": "work"}')
        frame = json.loads(socket.recv(timeout=10))

    assert frame == {"route": "worker", "function": "chatbot-local-stream-worker"}
    assert os.environ["STREAM_WORKER_FUNCTION"] == "chatbot-local-stream-worker"  # the template's Ref, resolved


@pytest.mark.parametrize(
    "name", ["StreamWorkerFunction", "arn:aws:lambda:eu-west-1:123456789012:function:StreamWorkerFunction"]
)
def test_an_async_invoke_answers_202_at_once_by_name_logical_id_or_arn(api: RunningWebSocketApi, name: str) -> None:
    client = boto3.client("lambda", endpoint_url=api.http)

    answer = client.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"connection_id": "gone="}')

    assert answer["StatusCode"] == 202
    assert wait_for("worker") == {"connection_id": "gone="}
    api.console.wait_for("StreamWorkerFunction (async): StreamWorkerFunction raised GoneException")


def test_an_unknown_function_is_404(api: RunningWebSocketApi) -> None:
    client = boto3.client("lambda", endpoint_url=api.http)

    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName="nope", InvocationType="Event", Payload=b"{}")


def test_a_synchronous_invoke_is_refused(api: RunningWebSocketApi) -> None:
    client = boto3.client("lambda", endpoint_url=api.http)

    with pytest.raises(client.exceptions.InvalidParameterValueException):
        client.invoke(FunctionName="StreamWorkerFunction", Payload=b"{}")


class PeerTransport:
    """The one thing a request asks its transport here: the peer's address."""

    def __init__(self, address: str) -> None:
        self.address = address

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return (self.address, 40000) if name == "peername" else default


@pytest.mark.parametrize(("peer", "allowed"), [("127.0.0.1", True), ("::1", True), ("192.0.2.7", False)])
def test_management_and_invoke_answer_signed_calls_from_this_machine_only(peer: str, allowed: bool) -> None:
    headers = {"Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/eu-west-1/lambda/aws4_request"}
    request = make_mocked_request("POST", "/@connections/x=", headers, transport=PeerTransport(peer))

    answer = refusal(request, "ForbiddenException")

    assert (answer is None) == allowed
