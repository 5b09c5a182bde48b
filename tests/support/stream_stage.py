"""A loopback WebSocket stage for the stream function's tests: the API Gateway management API
(``POST``/``GET``/``DELETE /@connections/{id}``, 410 GoneException once a connection is closed) and
Lambda's asynchronous invoke (``POST /2015-03-31/functions/{name}/invocations``), reached by the real
boto3 clients. Frames and invocations are recorded; a test may give the stage a worker to run each
invocation in a thread, as Lambda would, or a connection that goes away after some frames."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

INVOKE_PREFIX = "/2015-03-31/functions/"
CONNECTIONS_PREFIX = "/@connections/"


@dataclass
class StreamStage:
    frames: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    closed: set[str] = field(default_factory=set)
    deleted: list[str] = field(default_factory=list)
    invocations: list[dict[str, Any]] = field(default_factory=list)
    # The connection is gone (410) after this many frames were delivered to it.
    gone_after: dict[str, int] = field(default_factory=dict)
    worker: Callable[[dict[str, Any]], Any] | None = None
    invoke_status: int = 202
    # Checks every frame delivered (the AsyncAPI document's schemas); what it refused is kept in ``invalid``.
    check: Callable[[dict[str, Any]], Any] | None = None
    invalid: list[str] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> StreamStage:
        stage = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _answer(self, status: int, body: dict[str, Any] | None = None, error: str | None = None) -> None:
                payload = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                if error:
                    self.send_header("x-amzn-ErrorType", error)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:
                body = self._body()
                if self.path.startswith(INVOKE_PREFIX):
                    self._answer(*stage._invoke(self.path, body, dict(self.headers.items())))
                else:
                    self._answer(*stage._post(self._connection(), body))

            def do_DELETE(self) -> None:
                connection_id = self._connection()
                with stage.lock:
                    gone = connection_id in stage.closed
                    stage.closed.add(connection_id)
                    stage.deleted.append(connection_id)
                self._answer(410, {"message": "gone"}, "GoneException") if gone else self._answer(204)

            def do_GET(self) -> None:
                with stage.lock:
                    gone = self._connection() in stage.closed
                self._answer(410, {"message": "gone"}, "GoneException") if gone else self._answer(200, {})

            def _connection(self) -> str:
                return unquote(self.path.removeprefix(CONNECTIONS_PREFIX).split("?")[0])

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        self.wait_for_workers()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def wait_for_workers(self, timeout: float = 20) -> None:
        for thread in list(self.threads):
            thread.join(timeout)

    def frames_of(self, connection_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.frames.get(connection_id, []))

    def _post(self, connection_id: str, body: bytes) -> tuple[int, dict[str, Any] | None, str | None]:
        with self.lock:
            delivered = self.frames.setdefault(connection_id, [])
            limit = self.gone_after.get(connection_id)
            if limit is not None and len(delivered) >= limit:
                self.closed.add(connection_id)
            if connection_id in self.closed:
                return 410, {"message": "gone"}, "GoneException"
            frame = json.loads(body)
            delivered.append(frame)
        if self.check is not None:
            try:
                self.check(frame)
            except Exception as error:
                self.invalid.append(f"{frame.get('type')}: {error}")
        return 200, None, None

    def _invoke(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any] | None, None]:
        name = unquote(path.removeprefix(INVOKE_PREFIX).split("/")[0])
        invocation = {"function": name, "type": headers.get("X-Amz-Invocation-Type"), "payload": json.loads(body)}
        with self.lock:
            self.invocations.append(invocation)
        if self.invoke_status != 202:
            return self.invoke_status, {"message": "failed"}, None
        if self.worker is not None:
            thread = threading.Thread(target=self.worker, args=(invocation["payload"],), daemon=True)
            self.threads.append(thread)
            thread.start()
        return 202, None, None
