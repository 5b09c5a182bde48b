"""Small, bounded HTTPS GET for JSON documents (OIDC discovery and JWKS).

* one wall-clock budget per document: connecting, the TLS handshake, the request and every read
  share ``timeout_seconds``, so a server that dribbles bytes cannot hold the authorizer longer;
* no redirects (a redirect could leave the configured host or downgrade to http), no proxies;
* certificate and host name verification with the system trust store;
* a size cap, and the document must be a JSON object.

The URL was validated by the settings (https, or http on a loopback host for local runs only).
"""

from __future__ import annotations

import http.client
import json
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

MAX_DOCUMENT_BYTES = 256 * 1024
_READ_CHUNK = 16 * 1024


class FetchError(Exception):
    """The document could not be fetched in time, or is not a JSON object."""


def fetch_json(url: str, timeout_seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_seconds
    connection = _connect(url, timeout_seconds)
    try:
        raw = _get(connection, url, deadline)
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise FetchError("fetch failed") from error
    finally:
        connection.close()
    try:
        document = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise FetchError("not JSON") from error
    if not isinstance(document, dict):
        raise FetchError("not a JSON object")
    return document


def _connect(url: str, timeout_seconds: float) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    if not parts.hostname:
        raise FetchError("URL without a host")
    if parts.scheme == "https":
        return http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout_seconds, context=ssl.create_default_context()
        )
    if parts.scheme == "http":  # loopback only, checked by the settings
        return http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout_seconds)
    raise FetchError("unsupported URL scheme")


def _get(connection: http.client.HTTPConnection, url: str, deadline: float) -> bytes:
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection.connect()
    _tighten(connection, deadline)
    connection.request("GET", target, headers={"Accept": "application/json", "Connection": "close"})
    _tighten(connection, deadline)
    response = connection.getresponse()
    if response.status != 200:
        raise FetchError("unexpected status")
    declared = response.getheader("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_DOCUMENT_BYTES:
        raise FetchError("document too large")
    body = bytearray()
    while True:
        _tighten(connection, deadline)
        chunk = response.read1(_READ_CHUNK)
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > MAX_DOCUMENT_BYTES:
            raise FetchError("document too large")


def _tighten(connection: http.client.HTTPConnection, deadline: float) -> None:
    """Give the next socket operation only what is left of the budget."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FetchError("out of time")
    if connection.sock is not None:
        connection.sock.settimeout(remaining)
