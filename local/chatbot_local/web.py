"""The demo page's server: the static folder `web/` on its own port, so on its own origin.

Every response carries a strict Content-Security-Policy (scripts and styles from this origin only,
network calls to the API only, no framing, no inline code) and `/config.json` tells the page
where the API is. No directory listings; GET and HEAD only.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

CONFIG_PATH = "/config.json"


def content_security_policy(api_origins: Sequence[str]) -> str:
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src " + " ".join(api_origins),
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def static_handler(folder: Path, api_url: str, api_origins: Sequence[str]) -> Callable[..., BaseHTTPRequestHandler]:
    return functools.partial(
        _StaticHandler,
        directory=str(folder),
        csp=content_security_policy(api_origins),
        config=json.dumps({"apiUrl": api_url}).encode(),
        folder_exists=folder.is_dir(),
    )


class _StaticHandler(SimpleHTTPRequestHandler):
    server_version = "chatbot-local-web"

    def version_string(self) -> str:
        return self.server_version

    def __init__(self, *args: Any, csp: str, config: bytes, folder_exists: bool, **kwargs: Any) -> None:
        self.csp, self.config, self.folder_exists = csp, config, folder_exists
        super().__init__(*args, **kwargs)

    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", self.csp)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] == CONFIG_PATH:
            self._send(HTTPStatus.OK, self.config, "application/json")
        elif not self.folder_exists:
            self._send(HTTPStatus.NOT_FOUND, b"The demo page is not there yet: web/ does not exist.\n", "text/plain")
        else:
            super().do_GET()

    def list_directory(self, path: str | os.PathLike[str]) -> None:
        self.send_error(HTTPStatus.NOT_FOUND, "Not Found")

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: only API requests are logged."""
