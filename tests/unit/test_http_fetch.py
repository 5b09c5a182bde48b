"""Rule 2: JWKS and discovery fetches are bounded in time and size, follow no redirect, take JSON only."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chatbot_security.http_fetch import MAX_DOCUMENT_BYTES, FetchError, fetch_json

Respond = Callable[[BaseHTTPRequestHandler], None]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    respond: Respond


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self.server.respond(self)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def serve() -> Iterator[Callable[[Respond], str]]:
    servers: list[_Server] = []

    def start(respond: Respond) -> str:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.respond = respond
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/doc.json"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def send(handler: BaseHTTPRequestHandler, body: bytes, status: int = 200, **headers: str) -> None:
    handler.send_response(status)
    for name, value in {"Content-Length": str(len(body)), **headers}.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(body)


def test_a_json_object_is_returned(serve: Callable[[Respond], str]) -> None:
    url = serve(lambda h: send(h, json.dumps({"keys": []}).encode()))
    assert fetch_json(url, 2.0) == {"keys": []}


def test_a_server_that_dribbles_bytes_is_cut_off_at_the_deadline(serve: Callable[[Respond], str]) -> None:
    def dribble(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        for _ in range(1000):  # one byte every 0.1 s: each read is quick, the whole would take 100 s
            handler.wfile.write(b" ")
            handler.wfile.flush()
            time.sleep(0.1)

    url = serve(dribble)
    started = time.monotonic()
    with pytest.raises(FetchError):
        fetch_json(url, 0.5)
    assert time.monotonic() - started < 1.5


def test_a_server_that_never_answers_times_out(serve: Callable[[Respond], str]) -> None:
    url = serve(lambda h: time.sleep(3))
    started = time.monotonic()
    with pytest.raises(FetchError):
        fetch_json(url, 0.3)
    assert time.monotonic() - started < 1.5


def test_redirects_are_not_followed(serve: Callable[[Respond], str]) -> None:
    target = serve(lambda h: send(h, b'{"keys": []}'))
    url = serve(lambda h: send(h, b"", status=302, Location=target))
    with pytest.raises(FetchError):
        fetch_json(url, 2.0)


def test_documents_over_the_size_cap_are_refused(serve: Callable[[Respond], str]) -> None:
    big = b'{"pad": "' + b"x" * MAX_DOCUMENT_BYTES + b'"}'
    with pytest.raises(FetchError):
        fetch_json(serve(lambda h: send(h, big)), 2.0)


def test_an_oversized_body_without_a_declared_length_is_refused(serve: Callable[[Respond], str]) -> None:
    def chunked(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(b'{"pad": "' + b"x" * (MAX_DOCUMENT_BYTES + 10) + b'"}')

    with pytest.raises(FetchError):
        fetch_json(serve(chunked), 2.0)


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"text"', b"\xff\xfe{}"])
def test_only_a_json_object_is_accepted(serve: Callable[[Respond], str], body: bytes) -> None:
    with pytest.raises(FetchError):
        fetch_json(serve(lambda h: send(h, body)), 2.0)


def test_an_error_status_is_a_fetch_error(serve: Callable[[Respond], str]) -> None:
    with pytest.raises(FetchError):
        fetch_json(serve(lambda h: send(h, b"{}", status=503)), 2.0)


def test_a_closed_port_is_a_fetch_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FetchError):
        fetch_json(f"http://127.0.0.1:{port}/jwks.json", 1.0)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/jwks.json", "file:///etc/passwd", "https:///no-host"])
def test_other_schemes_and_hostless_urls_are_refused(url: str) -> None:
    with pytest.raises(FetchError):
        fetch_json(url, 1.0)
