"""The API's HTTP listener: reads requests off the socket and hands them to the Gateway.

Servers bind first and listen later (`bind` then `start`), so a port in use is reported before
anything else starts, and the port accepts connections only once the API can answer.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from chatbot_local.events import HttpRequest, HttpResponse
from chatbot_local.gateway import API_GATEWAY_MAX_BODY_BYTES, Gateway


class PortInUseError(Exception):
    """The requested port cannot be bound."""


class BackgroundServer:
    """A ThreadingHTTPServer bound at construction, listening from `start(handler)` in a daemon thread."""

    def __init__(self, host: str, port: int, name: str) -> None:
        self.name = name
        server_class = _ThreadingServer6 if ":" in host else _ThreadingServer
        try:
            self.server = server_class((host, port), BaseHTTPRequestHandler, bind_and_activate=False)
            self.server.server_bind()
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise PortInUseError(f"port {port} on {host} is already in use ({name}); choose another one") from None
            if error.errno == errno.EACCES:
                raise PortInUseError(f"no permission to listen on {host}:{port} ({name})") from None
            raise PortInUseError(f"cannot listen on {host}:{port} ({name}): {error.strerror}") from None
        self.port: int = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.1,), name=name, daemon=True)

    def start(self, handler: Callable[..., BaseHTTPRequestHandler]) -> None:
        self.server.RequestHandlerClass = handler
        self.server.server_activate()
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self.server.shutdown()
        self.server.server_close()


class _ThreadingServer(ThreadingHTTPServer):
    daemon_threads = True


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


def api_handler(gateway: Gateway) -> Callable[..., BaseHTTPRequestHandler]:
    return functools.partial(_ApiRequestHandler, gateway=gateway)


class _ApiRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "chatbot-local"

    def version_string(self) -> str:
        return self.server_version

    def __init__(self, *args: Any, gateway: Gateway, **kwargs: Any) -> None:
        self.gateway = gateway  # set first: the base class handles the request in __init__
        super().__init__(*args, **kwargs)

    def _handle(self) -> None:
        path, _, query = self.path.partition("?")
        request = HttpRequest(
            method=self.command,
            raw_path=path,
            raw_query=query,
            header_list=tuple(self.headers.items()),
            source_ip=self.client_address[0],
            protocol=self.request_version,
        )
        body = self._read_body(request)
        if body is None:
            response = self.gateway.too_large(request)
            response.headers.append(("connection", "close"))
            self.close_connection = True
            self._write(response, include_body=True)
            return
        request = dataclasses.replace(request, body=body)
        self._write(self.gateway.handle(request), include_body=self.command != "HEAD")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = _handle  # noqa: N815

    def __getattr__(self, name: str) -> Any:
        """Every other method (TRACE, CONNECT, PROPFIND, any token) goes to the Gateway too, which answers
        a method no route has with API Gateway's JSON 404; http.server would answer an HTML 501."""
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    def _read_body(self, request: HttpRequest) -> bytes | None:
        """The body (Content-Length or chunked); None when it is over API Gateway's limit."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if length > API_GATEWAY_MAX_BODY_BYTES:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _read_chunked(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            size = int(size_line or b"0", 16)
            if size == 0:
                while self.rfile.readline(1024).strip():
                    pass
                return b"".join(chunks)
            total += size
            if total > API_GATEWAY_MAX_BODY_BYTES:
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline(8)

    def _write(self, response: HttpResponse, include_body: bool) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("content-length", str(len(response.body)))
        self.end_headers()
        if include_body and response.body:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        """The Gateway logs one line per request itself (no headers, bodies or tokens)."""
