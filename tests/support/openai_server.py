"""A loopback OpenAI-compatible endpoint: scripted answers, recorded requests.

Runs standalone too (`python tests/support/openai_server.py PORT`), which the local API tests use
to give a real chatbot-local an OpenAI-compatible model that can succeed, fail or hang.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Scripted:
    status: int = 200
    body: Any = None  # a dict is sent as JSON, bytes as they are
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    #: A streamed answer: server-sent event lines (str) and pauses in seconds (float), sent as they come.
    events: list[str | float] | None = None


def completion(text: str, finish_reason: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }


def stream_events(
    *chunks: str, usage: tuple[int, int] | None = (5, 2), finish_reason: str = "stop"
) -> list[str | float]:
    """A streamed completion as an OpenAI-compatible endpoint sends it: one ``data:`` event per chunk, the
    finish reason, the usage in a last event without choices (when asked for), then ``[DONE]``."""

    def data(payload: dict[str, Any]) -> str:
        return f"data: {json.dumps({'id': 'chatcmpl-test', 'object': 'chat.completion.chunk', **payload})}\n\n"

    events: list[str | float] = [data({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})]
    events += [data({"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}) for text in chunks]
    events.append(data({"choices": [{"index": 0, "delta": {}, "finish_reason": finish_reason}]}))
    if usage is not None:
        usage_body = {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}
        events.append(data({"choices": [], "usage": usage_body}))
    return [*events, "data: [DONE]\n\n"]


class OpenAiServer:
    """Answers POST /v1/chat/completions from its script; with an empty script it echoes the last message
    (streamed word by word when the request asks for a stream),
    except that a message containing ``fail-502`` gets a 500 and one containing ``hang`` gets no timely answer."""

    def __init__(self, port: int = 0) -> None:
        self.script: deque[Scripted] = deque()
        self.requests: list[dict[str, Any]] = []
        self.disconnected = threading.Event()  # a streaming client went away mid-answer
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                server.requests.append({"path": self.path, "headers": dict(self.headers.items()), "json": body})
                answer = server.script.popleft() if server.script else server.default(body)
                if answer.delay:
                    time.sleep(answer.delay)
                if answer.events is not None:
                    self._stream(answer.events)
                    return
                payload = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
                try:
                    self.send_response(answer.status)
                    for name, value in {"Content-Type": "application/json", **answer.headers}.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def _stream(self, events: list[str | float]) -> None:
                """Server-sent events until the last one, then the connection closes (HTTP/1.0)."""
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    for step in events:
                        if isinstance(step, float):
                            self.wfile.flush()
                            time.sleep(step)
                        else:
                            self.wfile.write(step.encode())
                            self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    server.disconnected.set()

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @staticmethod
    def default(body: Any) -> Scripted:
        messages = (body or {}).get("messages") or [{}]
        text = str(messages[-1].get("content", ""))
        if "fail-502" in text:
            return Scripted(status=500, body={"error": {"message": "upstream failure"}})
        if "hang" in text:
            return Scripted(body=completion("too late"), delay=60)
        if (body or {}).get("stream"):
            words = f"Model says: {text}".split(" ")
            return Scripted(events=stream_events(*(word + " " for word in words[:-1]), words[-1]))
        return Scripted(body=completion(f"Model says: {text}"))

    def start(self) -> OpenAiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


if __name__ == "__main__":
    OpenAiServer(int(sys.argv[1])).start()
    print("ready", flush=True)
    threading.Event().wait()
