"""A loopback Bedrock runtime that answers ConverseStream in the AWS event-stream encoding.

botocore's Stubber cannot stream events, so this endpoint speaks the wire format itself: each event a
binary message (prelude with lengths and CRC32, string headers ``:event-type``/``:message-type``, a JSON
payload, message CRC32), sent as one HTTP chunk. The real botocore client then decodes and parses it
exactly as it would Bedrock's answer, and timeouts and closed connections are real.
"""

from __future__ import annotations

import json
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def encode_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message; every header is a string (type 7)."""
    encoded = b"".join(
        bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(value.encode())) + value.encode()
        for name, value in headers.items()
    )
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    message = prelude + struct.pack(">I", zlib.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def event(event_type: str, payload: dict[str, Any]) -> bytes:
    headers = {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}
    return encode_message(headers, json.dumps(payload).encode())


def exception_event(exception_type: str, message: str = "failure") -> bytes:
    headers = {":exception-type": exception_type, ":content-type": "application/json", ":message-type": "exception"}
    return encode_message(headers, json.dumps({"message": message}).encode())


def answer_events(
    *chunks: str,
    stop_reason: str = "end_turn",
    usage: tuple[int, int] | None = (12, 3),
    trace: dict[str, Any] | None = None,
) -> list[bytes]:
    """The events of a streamed answer, as Bedrock sends them."""
    events = [event("messageStart", {"role": "assistant"})]
    events += [event("contentBlockDelta", {"delta": {"text": chunk}, "contentBlockIndex": 0}) for chunk in chunks]
    events += [event("contentBlockStop", {"contentBlockIndex": 0}), event("messageStop", {"stopReason": stop_reason})]
    metadata: dict[str, Any] = {"metrics": {"latencyMs": 120}}
    if usage is not None:
        metadata["usage"] = {"inputTokens": usage[0], "outputTokens": usage[1], "totalTokens": sum(usage)}
    if trace is not None:
        metadata["trace"] = trace
    return [*events, event("metadata", metadata)]


@dataclass
class Pause:
    seconds: float


@dataclass
class ScriptedStream:
    """``steps``: encoded events and pauses, in order; or an HTTP error (``status`` with ``error_code``)."""

    steps: Sequence[bytes | Pause] = ()
    status: int = 200
    error_code: str = ""


class BedrockStreamServer:
    def __init__(self) -> None:
        self.script: deque[ScriptedStream] = deque()
        self.requests: list[dict[str, Any]] = []
        self.disconnected = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                server.requests.append({"path": self.path, "json": json.loads(raw or b"null")})
                scripted = server.script.popleft()
                try:
                    if scripted.status != 200:
                        self._error(scripted)
                    else:
                        self._stream(scripted.steps)
                except (BrokenPipeError, ConnectionResetError):
                    server.disconnected.set()

            def _error(self, scripted: ScriptedStream) -> None:
                body = json.dumps({"message": "scripted failure"}).encode()
                self.send_response(scripted.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("x-amzn-ErrorType", scripted.error_code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _stream(self, steps: Sequence[bytes | Pause]) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/vnd.amazon.eventstream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for step in steps:
                    if isinstance(step, Pause):
                        self.wfile.flush()
                        time.sleep(step.seconds)
                        continue
                    self.wfile.write(f"{len(step):x}\r\n".encode() + step + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self) -> BedrockStreamServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
