"""The demo page's server: the static folder `web/` on its own port, so on its own origin.

Every response carries a strict Content-Security-Policy (scripts, styles and images from this
origin only, network calls to the API only, no inline code, no framing, Trusted Types so that no
string can reach an HTML sink). The page learns where the API is from `/config.js`, an ES module
(a script, so `connect-src` can name the API alone); `/config.json` says the same for other tools.
No directory listings; GET and HEAD only.
"""

from __future__ import annotations

import functools
import io
import json
import os
from collections.abc import Callable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any, BinaryIO

CONFIG_PATH = "/config.json"
CONFIG_MODULE_PATH = "/config.js"


def content_security_policy(api_origins: Sequence[str]) -> str:
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            "connect-src " + " ".join(api_origins),
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
            "require-trusted-types-for 'script'",
            "trusted-types 'none'",
        ]
    )


def generated_files(api_url: str, streaming: bool = False) -> dict[str, tuple[bytes, str]]:
    """The files the server writes itself: path -> (body, content type). `"streaming": true` when the
    API has a WebSocket API (the page then asks for stream tickets; without it, it posts messages)."""
    config = json.dumps({"apiUrl": api_url, **({"streaming": True} if streaming else {})})
    return {
        CONFIG_PATH: (config.encode(), "application/json"),
        CONFIG_MODULE_PATH: (f"export default Object.freeze({config});\n".encode(), "text/javascript"),
    }


def static_handler(
    folder: Path, api_url: str, api_origins: Sequence[str], *, streaming: bool = False
) -> Callable[..., BaseHTTPRequestHandler]:
    return functools.partial(
        _StaticHandler,
        directory=str(folder),
        csp=content_security_policy(api_origins),
        generated=generated_files(api_url, streaming),
        folder_exists=folder.is_dir(),
    )


class _StaticHandler(SimpleHTTPRequestHandler):
    server_version = "chatbot-local-web"

    def version_string(self) -> str:
        return self.server_version

    def __init__(
        self, *args: Any, csp: str, generated: dict[str, tuple[bytes, str]], folder_exists: bool, **kwargs: Any
    ) -> None:
        self.csp, self.generated, self.folder_exists = csp, generated, folder_exists
        super().__init__(*args, **kwargs)

    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", self.csp)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def send_head(self) -> io.BytesIO | BinaryIO | None:
        """Headers of GET and HEAD; the body to copy (SimpleHTTPRequestHandler's contract)."""
        generated = self.generated.get(self.path.split("?", 1)[0])
        if generated is not None:
            return self._head(HTTPStatus.OK, *generated)
        if not self.folder_exists:
            return self._head(
                HTTPStatus.NOT_FOUND, b"The demo page is not there yet: web/ does not exist.\n", "text/plain"
            )
        return super().send_head()

    def list_directory(self, path: str | os.PathLike[str]) -> None:
        self.send_error(HTTPStatus.NOT_FOUND, "Not Found")

    def _head(self, status: HTTPStatus, body: bytes, content_type: str) -> io.BytesIO:
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: only API requests are logged."""
