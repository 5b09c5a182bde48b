"""The local WebSocket API: the template's `WEBSOCKET` API, its management API and Lambda's async
invoke, on one port, served by aiohttp (WebSocket and plain HTTP routes in one asyncio server).

    upgrade without the identity source  -> 401 (authorizer not called)
    authorizer: Deny / Unauthorized      -> 403 / 401; fails -> 500
    $connect integration: not 2xx        -> that status; fails -> 500
    otherwise                            -> 101, then every frame is routed by the selection
                                            expression (non-JSON or no match: $default)
    message over 128 KB                  -> close 1009
    idle 10 minutes, or 2 hours          -> close 1001
    close, either side                   -> $disconnect

Integrations run in worker threads (the handlers block on AWS calls); the connections, their
frames and the management API live on the server's event loop, in its own thread.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import json
import socket
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from chatbot_local.cloudformation import TemplateError
from chatbot_local.events import ApiIdentity
from chatbot_local.gateway import INTERNAL_ERROR, new_request_id
from chatbot_local.http_front import PortInUseError
from chatbot_local.lambdas import InvocationError, Invoker
from chatbot_local.websocket_connections import Connection, ConnectionLimits
from chatbot_local.websocket_events import (
    Handshake,
    PolicyDecision,
    missing_identity,
    new_connection_id,
    read_policy,
    refused,
    unauthorized_exception,
)
from chatbot_local.websocket_management import ManagementApi, json_message
from chatbot_local.websocket_template import CONNECT, DISCONNECT, WebSocketApiSpec, WebSocketAuthorizerSpec

Log = Callable[[str], None]


class WebSocketServer:
    """Bound at construction (a port in use fails first), listening from `start()`."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        identity: ApiIdentity,
        limits: ConnectionLimits | None = None,
        log: Log | None = None,
    ) -> None:
        self.api: WebSocketApiSpec | None = None
        self.limits = limits or ConnectionLimits()
        self._functions: Mapping[str, Invoker] = {}
        self._function_names: Mapping[str, str] = {}
        self._identity = identity
        self._log = log or (lambda line: None)
        self.connections: dict[str, Connection] = {}
        self._socket = _bind(host, port)
        self.port: int = self._socket.getsockname()[1]
        self._executor = ThreadPoolExecutor(max_workers=32, thread_name_prefix="websocket-integration")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), name="WebSocket API", daemon=True)

    # Lifecycle --------------------------------------------------------------------------------

    def start(
        self, api: WebSocketApiSpec | None, functions: Mapping[str, Invoker], function_names: Mapping[str, str]
    ) -> None:
        """Listen: `api` (None: the template has none; callbacks and Lambda invoke only), the functions
        by logical id, and `function_names` (each function's name -> its logical id)."""
        if api is not None:
            missing = api.function_ids - set(functions)
            if missing:
                raise TemplateError(f"no function loaded for {', '.join(sorted(missing))}")
        self.api, self._functions, self._function_names = api, functions, function_names
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the WebSocket API did not start")

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(10)
        self._socket.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        app = web.Application(client_max_size=8 * 1024 * 1024)
        ManagementApi(self.connections, self._functions, self._function_names, self._log).add_routes(app)
        app.router.add_get("/", self._websocket)
        app.router.add_get("/{stage}", self._websocket)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.SockSite(runner, self._socket).start()
        self._ready.set()
        await self._stopping.wait()
        for connection in list(self.connections.values()):
            await connection.close(WSCloseCode.GOING_AWAY, "Going away")
        await runner.cleanup()

    # The handshake ----------------------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        api = self.api
        stage = request.match_info.get("stage")
        if api is None or (stage is not None and stage != api.stage):
            return json_message(404, "Not Found")
        socket_response = web.WebSocketResponse(max_msg_size=self.limits.max_message_bytes, autoping=True)
        if not socket_response.can_prepare(request).ok:
            return json_message(426, "Upgrade Required")
        handshake = Handshake(
            connection_id=new_connection_id(),
            header_list=tuple(request.headers.items()),
            query=tuple(request.query.items()),
            source_ip=request.remote or "127.0.0.1",
            connected_at=time.time(),
            domain_name=(request.host or "localhost").rsplit(":", 1)[0],
            api=self._identity,
            stage=api.stage,
        )
        started = time.monotonic()
        decision = await self._admit(api, handshake)
        elapsed_ms = (time.monotonic() - started) * 1000
        if decision.error is not None:
            self._log(f"WS $connect {decision.error[0]} {elapsed_ms:.0f}ms")
            return json_message(*decision.error)
        handshake = replace(handshake, authorizer=dict(decision.context or {}))
        await socket_response.prepare(request)
        self._log(f"WS $connect 101 {elapsed_ms:.0f}ms")
        return await self._converse(api, handshake, socket_response)

    async def _admit(self, api: WebSocketApiSpec, handshake: Handshake) -> PolicyDecision:
        route = api.routes.get(CONNECT)
        decision = PolicyDecision(True, context={})
        if route is not None and route.authorizer is not None:
            decision = await self._authorize(route.authorizer, handshake)
            if decision.error is not None:
                return decision
            handshake = replace(handshake, authorizer=dict(decision.context or {}))
        if route is None or route.function_id is None:
            return decision
        try:
            result = await self._call(route.function_id, handshake.connect_event(new_request_id(), time.time()))
        except InvocationError as error:
            self._log(f"{route.function_id}: {error}")
            return refused(INTERNAL_ERROR)
        status = result.get("statusCode", 200) if isinstance(result, dict) else 200
        if isinstance(status, int) and not isinstance(status, bool) and not 200 <= status <= 299:
            return refused((status if 400 <= status <= 599 else 500, "Forbidden" if status == 403 else "Refused"))
        return decision

    async def _authorize(self, authorizer: WebSocketAuthorizerSpec, handshake: Handshake) -> PolicyDecision:
        headers = {name.lower(): value for name, value in handshake.header_list}
        query = dict(handshake.query)
        for source in authorizer.identity_sources:
            value = headers.get(source.name.lower()) if source.kind == "header" else query.get(source.name)
            if not value:
                return missing_identity()
        started = time.monotonic()
        try:
            result = await self._call(authorizer.function_id, handshake.authorizer_event(new_request_id(), time.time()))
        except InvocationError as error:
            if unauthorized_exception(error):
                return refused((401, "Unauthorized"))
            self._log(f"{authorizer.function_id}: {error}")
            return refused(INTERNAL_ERROR)
        return read_policy(result, handshake.method_arn(), int((time.monotonic() - started) * 1000))

    # The connection ---------------------------------------------------------------------------

    async def _converse(
        self, api: WebSocketApiSpec, handshake: Handshake, socket_response: web.WebSocketResponse
    ) -> web.WebSocketResponse:
        loop = asyncio.get_running_loop()
        connection = Connection(handshake, socket_response, loop.time(), loop.time())
        self.connections[handshake.connection_id] = connection
        watchdog = asyncio.create_task(self._watch(connection))
        try:
            async for message in socket_response:
                if message.type is WSMsgType.TEXT:
                    body, is_base64 = message.data, False
                elif message.type is WSMsgType.BINARY:
                    body, is_base64 = base64.b64encode(message.data).decode(), True
                else:
                    break  # an error: aiohttp has closed the connection (1009 for a message too big)
                connection.touch(loop.time())
                await self._route(api, connection, body, is_base64)
        finally:
            watchdog.cancel()
            del self.connections[handshake.connection_id]
        code = connection.close_code or socket_response.close_code or WSCloseCode.ABNORMAL_CLOSURE
        self._log(f"WS $disconnect {code}")
        await self._disconnect(api, connection, int(code))
        return socket_response

    async def _route(self, api: WebSocketApiSpec, connection: Connection, body: str, is_base64: bool) -> None:
        route = api.select(None if is_base64 else _json_or_none(body))
        handshake = connection.handshake
        if route is None or route.function_id is None:
            await _send_gateway_frame(connection, "Forbidden", new_request_id())
            return
        event = handshake.message_event(route.route_key, body, is_base64, time.time())
        started = time.monotonic()
        try:
            result = await self._call(route.function_id, event)
        except InvocationError as error:
            self._log(f"{route.function_id}: {error}")
            await _send_gateway_frame(connection, "Internal server error", event["requestContext"]["requestId"])
            return
        self._log(f"WS {route.route_key} {(time.monotonic() - started) * 1000:.0f}ms")
        if route.two_way and isinstance(result, dict) and isinstance(result.get("body"), str):
            await connection.socket.send_str(result["body"])

    async def _disconnect(self, api: WebSocketApiSpec, connection: Connection, code: int) -> None:
        route = api.routes.get(DISCONNECT)
        if route is None or route.function_id is None or self._stopping is None or self._stopping.is_set():
            return
        event = connection.handshake.disconnect_event(code, connection.close_reason, time.time())
        try:
            await self._call(route.function_id, event)
        except InvocationError as error:
            self._log(f"{route.function_id}: {error}")

    async def _watch(self, connection: Connection) -> None:
        """Close at API Gateway's idle timeout or connection lifetime, whichever comes first."""
        loop = asyncio.get_running_loop()
        end_of_life = connection.started + self.limits.max_lifetime_seconds
        while True:
            deadline = min(end_of_life, connection.last_active + self.limits.idle_seconds)
            if deadline <= loop.time():
                await connection.close(WSCloseCode.GOING_AWAY, "Going away")
                return
            await asyncio.sleep(deadline - loop.time())

    async def _call(self, function_id: str, event: dict[str, Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(
            self._executor, self._functions[function_id].invoke, event
        )


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


async def _send_gateway_frame(connection: Connection, message: str, request_id: str) -> None:
    """A frame API Gateway sends itself (no route, or the integration failed)."""
    body = {"message": message, "connectionId": connection.handshake.connection_id, "requestId": request_id}
    if not connection.socket.closed:
        await connection.socket.send_str(json.dumps(body, separators=(",", ":")))


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    bound = socket.socket(family, socket.SOCK_STREAM)
    bound.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        bound.bind((host, port))
    except OSError as error:
        bound.close()
        if error.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"port {port} on {host} is already in use (WebSocket API); choose another one"
            ) from None
        raise PortInUseError(f"cannot listen on {host}:{port} (WebSocket API): {error.strerror}") from None
    return bound
