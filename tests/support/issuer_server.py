"""A loopback OIDC issuer (discovery + JWKS) serving a FakeIssuer's keys, counting requests."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from support.tokens import FakeIssuer


class IssuerServer:
    def __init__(self) -> None:
        self.issuer = FakeIssuer(issuer="")
        self.jwks_requests = 0
        self.down = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if server.down:
                    self.send_error(503)
                    return
                if self.path == "/.well-known/openid-configuration":
                    self._json(server.issuer.discovery(jwks_uri=server.url + "/jwks.json"))
                elif self.path == "/jwks.json":
                    server.jwks_requests += 1
                    self._json(server.issuer.jwks())
                else:
                    self.send_error(404)

            def _json(self, document: dict[str, Any]) -> None:
                body = json.dumps(document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self.issuer.issuer = self.url
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def start(self) -> IssuerServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
