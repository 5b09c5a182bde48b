"""Small, bounded HTTPS GET for JSON documents (OIDC discovery and JWKS).

* one wall-clock budget per document: resolving the host name, connecting, the TLS handshake, the
  request and every read share ``timeout_seconds``, so neither a slow DNS server nor a server that
  dribbles bytes can hold the authorizer longer;
* the name is resolved in a worker thread that the fetch waits for only until the deadline (the
  system resolver has no timeout of its own), then each resolved address is dialled in turn with what
  is left of the budget, while the host name stays the TLS identity (SNI and certificate check);
* no redirects (a redirect could leave the configured host or downgrade to http), no proxies;
* certificate and host name verification with the system trust store;
* a size cap, and the document must be a JSON object.

The URL was validated by the settings (https, or http on a loopback host for local runs only).
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import SplitResult, urlsplit

MAX_DOCUMENT_BYTES = 256 * 1024
MAX_ADDRESSES = 8
_READ_CHUNK = 16 * 1024

# (address family, socket address) pairs for a host and port, as getaddrinfo gives them.
Address = tuple[Any, ...]
Resolver = Callable[[str, int], Sequence[Address]]


class FetchError(Exception):
    """The document could not be fetched in time, or is not a JSON object."""


def system_resolver(host: str, port: int) -> list[Address]:
    """The platform's resolver (blocking, with no timeout of its own: see :func:`_resolve`)."""
    return [(family, sockaddr) for family, _, _, _, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def fetch_json(
    url: str,
    timeout_seconds: float,
    *,
    resolve: Resolver = system_resolver,
    ssl_context: ssl.SSLContext | None = None,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_seconds
    parts = urlsplit(url)
    if not parts.hostname:
        raise FetchError("URL without a host")
    if parts.scheme not in ("https", "http"):  # http: loopback only, checked by the settings
        raise FetchError("unsupported URL scheme")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        addresses = _resolve(resolve, parts.hostname, port, deadline)
        connection = _connect(parts, addresses, deadline, ssl_context)
    except (OSError, ValueError) as error:
        raise FetchError("connection failed") from error
    try:
        raw = _get(connection, parts, deadline)
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


def _resolve(resolve: Resolver, host: str, port: int, deadline: float) -> list[Address]:
    """Resolve in a daemon thread and wait for it only until the deadline.

    A lookup still running at the deadline is abandoned (its thread ends when the resolver gives up);
    fetches are rare (one per 30 s at most per container, rule 2), so abandoned lookups cannot pile up.
    """
    outcome: list[Sequence[Address] | BaseException] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            outcome.append(resolve(host, port))
        except BaseException as error:  # handed over to the waiting thread
            outcome.append(error)
        finally:
            done.set()

    threading.Thread(target=lookup, name="http-fetch-resolve", daemon=True).start()
    if not done.wait(_remaining(deadline)) or not outcome:
        raise FetchError("name resolution out of time")
    result = outcome[0]
    if isinstance(result, BaseException):
        raise FetchError("name resolution failed") from result
    addresses = list(result)[:MAX_ADDRESSES]
    if not addresses:
        raise FetchError("name resolution found no address")
    return addresses


def _connect(
    parts: SplitResult, addresses: list[Address], deadline: float, ssl_context: ssl.SSLContext | None
) -> http.client.HTTPConnection:
    """A connection to the first resolved address that answers, each attempt within what is left."""
    host = parts.hostname or ""
    last_error: OSError | None = None
    for family, sockaddr in addresses:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(_remaining(deadline))
            sock.connect(sockaddr)
            if parts.scheme == "https":
                context = ssl_context or ssl.create_default_context()
                sock.settimeout(_remaining(deadline))
                # The host name, not the address, is the TLS identity: SNI and certificate check.
                sock = context.wrap_socket(sock, server_hostname=host)
        except OSError as error:
            sock.close()
            last_error = error
            continue
        connection = http.client.HTTPConnection(host, parts.port)
        connection.sock = sock
        return connection
    raise FetchError("no address accepted the connection") from last_error


def _get(connection: http.client.HTTPConnection, parts: SplitResult, deadline: float) -> bytes:
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
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


def _remaining(deadline: float) -> float:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise FetchError("out of time")
    return remaining


def _tighten(connection: http.client.HTTPConnection, deadline: float) -> None:
    """Give the next socket operation only what is left of the budget."""
    remaining = _remaining(deadline)
    if connection.sock is not None:
        connection.sock.settimeout(remaining)
