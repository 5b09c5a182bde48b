"""The local WebSocket API of the fixture template (tests/local/fixtures/websocket-template.yaml),
served in this process on a free loopback port with its test handlers imported as the template says
(the local tests, and the browser tests of the demo page's streaming)."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatbot_local import environment
from chatbot_local.events import ApiIdentity
from chatbot_local.lambdas import LocalFunction, add_to_path, import_handler
from chatbot_local.template import ACCOUNT_ID, SERVERLESS_FUNCTION, Template
from chatbot_local.websocket_connections import ConnectionLimits
from chatbot_local.websocket_server import WebSocketServer
from chatbot_local.websocket_template import websocket_api

WEBSOCKET_TEMPLATE = Path(__file__).resolve().parents[1] / "local" / "fixtures" / "websocket-template.yaml"
REGION = "eu-west-1"
# The AWS SDK of the test handlers: dummy credentials, and every endpoint but the local ones refused.
SDK_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "NO_PROXY": "127.0.0.1,localhost",
}


@dataclass
class ConsoleLines:
    """The server's console lines, with a way to wait for one."""

    lines: list[str] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def __call__(self, line: str) -> None:
        with self._changed:
            self.lines.append(line)
            self._changed.notify_all()

    def wait_for(self, line: str, timeout: float = 10) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: line in self.lines, timeout), self.lines


@dataclass
class RunningWebSocketApi:
    server: WebSocketServer
    console: ConsoleLines

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.server.port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.server.port}"


def received(function: str | None = None, route: str | None = None) -> list[dict[str, Any]]:
    """The events the fixture's handlers have received so far (optionally of one function or route)."""
    from ws_fixture import RECEIVED

    return [
        item["event"]
        for item in list(RECEIVED)
        if (function is None or item["function"] == function)
        and (route is None or item["event"].get("requestContext", {}).get("routeKey") == route)
    ]


def wait_for(function: str, route: str | None = None, timeout: float = 10) -> dict[str, Any]:
    """The first event of `function` (and `route`), waiting until it has arrived."""
    from ws_fixture import ARRIVED

    with ARRIVED:
        if not ARRIVED.wait_for(lambda: received(function, route), timeout):
            raise AssertionError(f"{function} got no {route or 'event'}")
    return received(function, route)[0]


@contextlib.contextmanager
def running_websocket_api(
    environ: dict[str, str], limits: ConnectionLimits | None = None
) -> Iterator[RunningWebSocketApi]:
    """`environ` is the process environment the handlers read (os.environ, patched by the caller)."""
    template = Template.load(WEBSOCKET_TEMPLATE)
    base = template.resolver(environ, REGION)
    specs = [template.function(logical_id, base) for logical_id in template.logical_ids(SERVERLESS_FUNCTION)]
    names = {spec.logical_id: spec.function_name for spec in specs}
    resolver = template.resolver(environ, REGION, refs=names)
    console = ConsoleLines()
    server = WebSocketServer("127.0.0.1", 0, identity=ApiIdentity(REGION, ACCOUNT_ID), limits=limits, log=console)
    environ.update(SDK_ENVIRONMENT)
    environment.use_stream_endpoints(environ, "127.0.0.1", server.port)
    environment.apply_function_variables(environ, template, resolver)
    add_to_path(spec.code_dir for spec in specs)
    functions = {spec.logical_id: LocalFunction(spec, import_handler(spec), REGION) for spec in specs}
    from ws_fixture import RECEIVED

    RECEIVED.clear()
    server.start(websocket_api(template, resolver), functions, {spec.function_name: spec.logical_id for spec in specs})
    try:
        yield RunningWebSocketApi(server, console)
    finally:
        server.stop()
