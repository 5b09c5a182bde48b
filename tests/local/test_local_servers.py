"""The listeners (API front, demo page) over real loopback sockets, and the in-process Lambda runtime."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from local_kit import WEB_ORIGIN, GatewayKit

from chatbot_local.http_front import BackgroundServer, PortInUseError, api_handler
from chatbot_local.lambdas import HandlerImportError, InvocationError, LambdaContext, LocalFunction, import_handler
from chatbot_local.template import FunctionSpec
from chatbot_local.web import CONFIG_MODULE_PATH, CONFIG_PATH, generated_files, static_handler

Build = Callable[..., GatewayKit]


@pytest.fixture
def api(make_gateway: Build) -> Iterator[tuple[BackgroundServer, GatewayKit]]:
    def echo_body(event: dict[str, Any]) -> dict[str, Any]:
        return {"statusCode": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps(event)}

    kit = make_gateway(chat=echo_body)
    server = BackgroundServer("127.0.0.1", 0, "API")
    server.start(api_handler(kit.gateway))
    yield server, kit
    server.stop()


def call(port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response, data


def test_requests_reach_the_gateway_and_back(api: tuple[BackgroundServer, GatewayKit]) -> None:
    server, _ = api
    headers = {"Authorization": "Bearer good-a", "Content-Type": "application/json", "Origin": WEB_ORIGIN}

    response, data = call(server.port, "POST", "/v1/sessions?x=1", b'{"a":1}', headers)

    event = json.loads(data)
    assert response.status == 200
    assert response.getheader("access-control-allow-origin") == WEB_ORIGIN
    assert response.getheader("apigw-requestid")
    assert event["rawQueryString"] == "x=1"
    assert event["body"] == '{"a":1}'
    assert event["headers"]["host"] == f"127.0.0.1:{server.port}"


def test_chunked_bodies_are_read(api: tuple[BackgroundServer, GatewayKit]) -> None:
    server, _ = api
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    headers = {"Authorization": "Bearer good-a", "Content-Type": "text/plain"}

    connection.request("POST", "/v1/sessions", body=iter([b"hel", b"lo"]), headers=headers, encode_chunked=True)

    assert json.loads(connection.getresponse().read())["body"] == "hello"
    connection.close()


def test_bodies_over_api_gateways_limit_are_413_without_reading_them(api: tuple[BackgroundServer, GatewayKit]) -> None:
    server, kit = api
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        raw.sendall(b"POST /v1/sessions HTTP/1.1\r\nHost: x\r\nContent-Length: 10485761\r\n\r\n")
        reply = b"".join(iter(lambda: raw.recv(4096), b"")).decode()

    assert reply.startswith("HTTP/1.1 413")
    assert reply.endswith('{"message":"Request Entity Too Large"}')
    assert kit.chat.events == []


def test_head_gets_headers_without_a_body(api: tuple[BackgroundServer, GatewayKit]) -> None:
    server, _ = api

    response, data = call(server.port, "HEAD", "/nowhere")

    assert response.status == 404
    assert data == b""


# Every method API Gateway's HTTP API accepts without a route for it, and methods nobody defines.
METHODS_WITHOUT_A_ROUTE = ["TRACE", "CONNECT", "PROPFIND", "PUT", "PATCH", "FOO"]


@pytest.mark.parametrize("method", METHODS_WITHOUT_A_ROUTE)
@pytest.mark.parametrize("path", ["/v1/sessions", "/v1/sessions/0b8a4d61-6a3e-4e8e-9c55-1c2b1f8c2a10", "/nowhere"])
def test_a_method_no_route_has_gets_api_gateways_json_404(
    api: tuple[BackgroundServer, GatewayKit], method: str, path: str
) -> None:
    server, kit = api

    response, data = call(server.port, method, path, headers={"Authorization": "Bearer good-a"})

    assert response.status == 404
    assert response.getheader("content-type") == "application/json"
    assert json.loads(data) == {"message": "Not Found"}
    assert kit.chat.events == []


def test_a_method_no_route_has_on_a_routed_path_is_404_for_every_method(
    api: tuple[BackgroundServer, GatewayKit],
) -> None:
    server, _ = api
    routed = {"POST", "GET"}  # the fixture's /v1/sessions routes
    every_method = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT", "LINK", "QUERY"]

    statuses = {method: call(server.port, method, "/v1/sessions")[0].status for method in every_method}

    assert {method for method, status in statuses.items() if status != 404} == routed


def test_a_port_in_use_is_reported_clearly() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(PortInUseError, match=f"port {port} on 127.0.0.1 is already in use"):
            BackgroundServer("127.0.0.1", port, "API")


def test_nothing_listens_before_start() -> None:
    server = BackgroundServer("127.0.0.1", 0, "API")
    try:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
    finally:
        server.stop()


# --- the demo page server ------------------------------------------------------------------------


@pytest.fixture
def web(tmp_path: Path) -> Iterator[BackgroundServer]:
    (tmp_path / "index.html").write_text("<!doctype html><title>demo</title>")
    (tmp_path / "assets").mkdir()
    server = BackgroundServer("127.0.0.1", 0, "demo page")
    server.start(static_handler(tmp_path, "http://127.0.0.1:3000", ["http://127.0.0.1:3000", "http://localhost:3000"]))
    yield server
    server.stop()


def test_demo_page_is_served_with_a_strict_csp(web: BackgroundServer) -> None:
    response, data = call(web.port, "GET", "/")

    csp = response.getheader("Content-Security-Policy")
    assert response.status == 200
    assert b"demo" in data
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp
    assert "connect-src http://127.0.0.1:3000 http://localhost:3000" in csp
    assert "frame-ancestors 'none'" in csp
    assert "img-src 'self';" in csp
    assert "require-trusted-types-for 'script'; trusted-types 'none'" in csp
    assert "unsafe-inline" not in csp
    assert response.getheader("X-Content-Type-Options") == "nosniff"


def test_config_tells_the_page_where_the_api_is(web: BackgroundServer) -> None:
    response, data = call(web.port, "GET", CONFIG_PATH)

    assert response.status == 200
    assert json.loads(data) == {"apiUrl": "http://127.0.0.1:3000"}


def test_config_tells_the_page_to_stream_only_when_the_api_has_a_websocket_api() -> None:
    body, _ = generated_files("http://127.0.0.1:3000", streaming=True)[CONFIG_PATH]

    assert json.loads(body) == {"apiUrl": "http://127.0.0.1:3000", "streaming": True}


def test_the_page_imports_the_api_url_as_a_script_module(web: BackgroundServer) -> None:
    response, data = call(web.port, "GET", CONFIG_MODULE_PATH)

    assert response.status == 200
    assert response.getheader("Content-Type") == "text/javascript; charset=utf-8"
    assert data == b'export default Object.freeze({"apiUrl": "http://127.0.0.1:3000"});\n'


def test_head_of_a_generated_file_sends_its_headers_only(web: BackgroundServer) -> None:
    response, data = call(web.port, "HEAD", CONFIG_PATH)

    assert response.status == 200
    assert data == b""
    assert response.getheader("Content-Length") == str(len(b'{"apiUrl": "http://127.0.0.1:3000"}'))


def test_no_directory_listing(web: BackgroundServer) -> None:
    response, _ = call(web.port, "GET", "/assets/")

    assert response.status == 404
    assert response.getheader("Content-Security-Policy")


def test_missing_web_folder_answers_404_with_an_explanation(tmp_path: Path) -> None:
    server = BackgroundServer("127.0.0.1", 0, "demo page")
    server.start(static_handler(tmp_path / "web", "http://127.0.0.1:3000", ["http://127.0.0.1:3000"]))
    try:
        response, data = call(server.port, "GET", "/")
    finally:
        server.stop()

    assert response.status == 404
    assert b"web/ does not exist" in data


# --- the Lambda runtime --------------------------------------------------------------------------


def spec(tmp_path: Path, handler: str = "handler.lambda_handler", timeout: int = 3) -> FunctionSpec:
    return FunctionSpec("ChatFunction", tmp_path, handler, timeout, 256, "chatbot-local-chat")


def test_context_carries_what_handlers_and_powertools_read(tmp_path: Path) -> None:
    seen: list[LambdaContext] = []
    function = LocalFunction(spec(tmp_path), lambda event, context: seen.append(context), "eu-west-1")

    function.invoke({})
    function.invoke({})

    first, second = seen
    assert first.function_name == "chatbot-local-chat"
    assert first.memory_limit_in_mb == 256
    assert first.invoked_function_arn == "arn:aws:lambda:eu-west-1:123456789012:function:chatbot-local-chat"
    assert first.aws_request_id != second.aws_request_id
    assert first.log_group_name == "/aws/lambda/chatbot-local-chat"
    assert 2_900 < first.get_remaining_time_in_millis() <= 3_000


def test_remaining_time_runs_down_to_zero() -> None:
    context = LambdaContext("f", 128, "arn", "id", timeout_seconds=1, _started=time.monotonic() - 5)

    assert context.get_remaining_time_in_millis() == 0


def test_handlers_get_a_json_copy_of_the_event(tmp_path: Path) -> None:
    event = {"a": [1]}

    def mutate(received: dict[str, Any], context: Any) -> dict[str, Any]:
        received["a"].append(2)
        return received

    assert LocalFunction(spec(tmp_path), mutate, "eu-west-1").invoke(event) == {"a": [1, 2]}
    assert event == {"a": [1]}


def test_handler_exceptions_and_non_json_results_are_invocation_errors(tmp_path: Path) -> None:
    def boom(event: dict[str, Any], context: Any) -> Any:
        raise ValueError("secret detail")

    with pytest.raises(InvocationError, match=r"ChatFunction raised ValueError$"):
        LocalFunction(spec(tmp_path), boom, "eu-west-1").invoke({})
    with pytest.raises(InvocationError, match="not JSON"):
        LocalFunction(spec(tmp_path), lambda event, context: {1, 2}, "eu-west-1").invoke({})


def test_handlers_are_imported_from_the_templates_handler_string(tmp_path: Path, monkeypatch: Any) -> None:
    (tmp_path / "local_fake_handler_module.py").write_text("def lambda_handler(event, context):\n    return 7\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    handler = import_handler(spec(tmp_path, "local_fake_handler_module.lambda_handler"))

    assert handler({}, None) == 7


def test_a_handler_that_cannot_be_imported_is_reported(tmp_path: Path) -> None:
    with pytest.raises(HandlerImportError, match=r"cannot import no_such_module\.lambda_handler for ChatFunction"):
        import_handler(spec(tmp_path, "no_such_module.lambda_handler"))
