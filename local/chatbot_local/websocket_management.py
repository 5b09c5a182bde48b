"""The WebSocket API's management API (`@connections`) and Lambda's asynchronous invoke, as the
functions' AWS SDK calls them locally (`STREAM_CALLBACK_URL`, `AWS_ENDPOINT_URL_LAMBDA`).

    POST   /@connections/{id}   body -> one frame (text when UTF-8); 410 GoneException when closed,
                                413 PayloadTooLargeException over 128 KB
    GET    /@connections/{id}   {"connectedAt", "identity": {"sourceIp", "userAgent"}, "lastActiveAt"}
    DELETE /@connections/{id}   closes the connection (then $disconnect), 204
    POST   /2015-03-31/functions/{name}/invocations   with X-Amz-Invocation-Type: Event: the
                                function's handler runs in a thread of its own, 202 at once

Requests must be SigV4-signed, as in AWS (a page cannot send frames to a connection), and come
from a loopback address: the signature itself is not checked locally, so nobody on the network may
call them. `/{stage}/@connections/{id}` is accepted too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import threading
from collections.abc import Callable, Mapping, MutableMapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSCloseCode, web

from chatbot_local.lambdas import InvocationError, Invoker
from chatbot_local.websocket_connections import Connection

MAX_POST_BYTES = 128 * 1024
_SIGNED = "AWS4-HMAC-SHA256 "


def json_message(status: int, message: str, error_type: str | None = None) -> web.Response:
    """An answer of API Gateway (`{"message": ...}`) or an AWS API's error (its type in the
    `x-amzn-ErrorType` header and in the body's `__type`, where the AWS SDKs look for it)."""
    headers = {"x-amzn-ErrorType": error_type} if error_type else {}
    fields = {"__type": error_type, "message": message} if error_type else {"message": message}
    body = json.dumps(fields, separators=(",", ":"))
    return web.Response(status=status, text=body, content_type="application/json", headers=headers)


class ManagementApi:
    """Handlers for the management API and Lambda's Invoke, over the server's live connections."""

    def __init__(
        self,
        connections: MutableMapping[str, Connection],
        functions: Mapping[str, Invoker],
        function_names: Mapping[str, str],
        log: Callable[[str], None],
    ) -> None:
        self._connections = connections
        self._functions = functions
        # Every name a caller may use: the function's name and its logical id.
        self._names = {**{logical_id: logical_id for logical_id in functions}, **function_names}
        self._log = log

    def add_routes(self, app: web.Application) -> None:
        for prefix in ("", "/{stage}"):
            path = prefix + "/@connections/{connection_id}"
            app.router.add_post(path, self._post)
            app.router.add_get(path, self._get)
            app.router.add_delete(path, self._delete)
        app.router.add_post("/2015-03-31/functions/{function}/invocations", self._invoke)

    # @connections -----------------------------------------------------------------------------

    async def _post(self, request: web.Request) -> web.Response:
        connection = self._target(request)
        if isinstance(connection, web.Response):
            return connection
        data = await request.read()
        if len(data) > MAX_POST_BYTES:
            return json_message(413, "Message too long", "PayloadTooLargeException")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            await connection.socket.send_bytes(data)
        else:
            await connection.socket.send_str(text)
        connection.touch(asyncio.get_running_loop().time())  # data either way keeps a connection from idling
        return web.Response(status=200)

    async def _get(self, request: web.Request) -> web.Response:
        connection = self._target(request)
        if isinstance(connection, web.Response):
            return connection
        handshake = connection.handshake
        body = {
            "connectedAt": _iso(handshake.connected_at),
            "identity": {"sourceIp": handshake.source_ip, "userAgent": handshake.user_agent},
            "lastActiveAt": _iso(connection.last_active_at),
        }
        return web.json_response(body)

    async def _delete(self, request: web.Request) -> web.Response:
        connection = self._target(request)
        if isinstance(connection, web.Response):
            return connection
        await connection.close(WSCloseCode.OK, "")
        return web.Response(status=204)

    def _target(self, request: web.Request) -> Connection | web.Response:
        """The live connection the request names, or the refusal: 403 unsigned, 410 gone."""
        refused = refusal(request, "ForbiddenException")
        if refused is not None:
            return refused
        connection = self._connections.get(request.match_info["connection_id"])
        if connection is None or connection.socket.closed:
            return _gone()
        return connection

    # Lambda Invoke ----------------------------------------------------------------------------

    async def _invoke(self, request: web.Request) -> web.Response:
        refused = refusal(request, "MissingAuthenticationTokenException")
        if refused is not None:
            return refused
        name = _function_name(request.match_info["function"])
        logical_id = self._names.get(name)
        if logical_id is None or logical_id not in self._functions:
            return json_message(404, f"Function not found: {name[:64]}", "ResourceNotFoundException")
        invocation_type = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if invocation_type != "Event":
            message = "the local Lambda endpoint runs asynchronous invocations only (InvocationType Event)"
            return json_message(400, message, "InvalidParameterValueException")
        raw = await request.read()
        try:
            event = json.loads(raw) if raw else {}
        except ValueError:
            return json_message(400, "Could not parse request body into json", "InvalidRequestContentException")
        function = self._functions[logical_id]
        worker = threading.Thread(target=self._run, args=(logical_id, function, event), daemon=True)
        worker.start()
        return web.Response(status=202)

    def _run(self, logical_id: str, function: Invoker, event: Any) -> None:
        try:
            function.invoke(event)
        except InvocationError as error:  # Lambda would retry twice, then drop the event
            self._log(f"{logical_id} (async): {error}")


def refusal(request: web.Request, error_type: str) -> web.Response | None:
    """403 unless the call is SigV4-signed and comes from this machine: the signature is not checked
    locally, so a peer on the network (`--host 0.0.0.0`) must not run functions with events it wrote."""
    if request.headers.get("Authorization", "").startswith(_SIGNED) and _loopback(request.remote):
        return None
    return json_message(403, "Missing Authentication Token", error_type)


def _loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _gone() -> web.Response:
    return json_message(410, "The connection is gone", "GoneException")


def _function_name(text: str) -> str:
    """`name`, `name:qualifier`, or an ARN `arn:aws:lambda:region:account:function:name[:qualifier]`."""
    parts = text.split(":")
    if len(parts) >= 7 and parts[0] == "arn":
        return parts[6]
    return parts[0]


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
