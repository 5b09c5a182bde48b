"""Rule 2: JWKS and discovery fetches are bounded in time and size, follow no redirect, take JSON only."""

from __future__ import annotations

import datetime
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from chatbot_security.identity.http_fetch import MAX_DOCUMENT_BYTES, FetchError, fetch_json

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


# -- name resolution happens inside the deadline, and the name stays the TLS identity ----------------
class BlockedResolver:
    """A resolver that hangs (a DNS server that never answers) until the test lets it go."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.asked: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[tuple[Any, ...]]:
        self.asked.append((host, port))
        self.release.wait(30)
        raise OSError("resolver gave up")


@pytest.fixture
def blocked_resolver() -> Iterator[BlockedResolver]:
    resolver = BlockedResolver()
    yield resolver
    resolver.release.set()


def test_a_resolver_that_never_answers_is_cut_off_at_the_deadline(blocked_resolver: BlockedResolver) -> None:
    # Given a name whose DNS lookup hangs
    started = time.monotonic()
    # When the document is fetched with a budget of 0.3 s
    with pytest.raises(FetchError):
        fetch_json("https://issuer.example.test/jwks.json", 0.3, resolve=blocked_resolver)
    # Then the fetch gives up at the deadline, not when the resolver does
    assert time.monotonic() - started < 1.0
    assert blocked_resolver.asked == [("issuer.example.test", 443)]


def test_resolution_time_counts_against_the_same_budget(serve: Callable[[Respond], str]) -> None:
    # Given a server that answers in 0.2 s, behind a resolver that takes 0.25 s of a 0.4 s budget
    def answer_slowly(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(0.2)
        send(handler, b'{"keys": []}')

    url = serve(answer_slowly)
    port = int(url.split(":")[2].split("/")[0])

    def slow(host: str, port: int) -> list[tuple[Any, ...]]:
        time.sleep(0.25)
        return [(socket.AF_INET, ("127.0.0.1", port))]

    started = time.monotonic()
    with pytest.raises(FetchError):
        fetch_json(f"http://issuer.example.test:{port}/doc.json", 0.4, resolve=slow)
    assert time.monotonic() - started < 0.9


def test_an_empty_answer_from_the_resolver_is_a_fetch_error() -> None:
    with pytest.raises(FetchError):
        fetch_json("https://issuer.example.test/jwks.json", 1.0, resolve=lambda host, port: [])


def test_the_default_resolver_finds_loopback_names(serve: Callable[[Respond], str]) -> None:
    url = serve(lambda h: send(h, b'{"keys": []}')).replace("127.0.0.1", "localhost")
    assert fetch_json(url, 2.0) == {"keys": []}


@dataclass
class TlsServer:
    port: int
    ca: ssl.SSLContext
    server_names: list[str | None]


def _certificate(name: str, issuer_key: Any, issuer_name: x509.Name, key: Any, *, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    """An HTTPS server on loopback whose certificate names issuer.example.test, signed by a test CA."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca_cert = _certificate("Test CA", ca_key, ca_name, ca_key, ca=True)
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _certificate("issuer.example.test", ca_key, ca_name, leaf_key, ca=False)
    folder = tmp_path_factory.mktemp("tls")
    (folder / "leaf.pem").write_bytes(
        leaf.public_bytes(serialization.Encoding.PEM)
        + leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    server_names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "leaf.pem")
    context.sni_callback = lambda sock, name, ctx: server_names.append(name)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.respond = lambda h: send(h, b'{"keys": []}')
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    trust = ssl.create_default_context(cadata=ca_cert.public_bytes(serialization.Encoding.PEM).decode())
    yield TlsServer(server.server_address[1], trust, server_names)
    server.shutdown()
    server.server_close()


def test_the_resolved_address_is_dialled_and_the_name_is_verified(tls_server: TlsServer) -> None:
    # Given issuer.example.test resolving to the loopback server (whose certificate names it)
    def resolve(host: str, port: int) -> list[tuple[Any, ...]]:
        assert host == "issuer.example.test"
        return [(socket.AF_INET, ("127.0.0.1", port))]

    url = f"https://issuer.example.test:{tls_server.port}/jwks.json"
    # When the document is fetched
    document = fetch_json(url, 2.0, resolve=resolve, ssl_context=tls_server.ca)
    # Then it arrives, the connection having asked for the host name (SNI), not the address
    assert document == {"keys": []}
    assert tls_server.server_names[-1] == "issuer.example.test"


def test_a_certificate_for_another_name_is_refused_at_the_resolved_address(tls_server: TlsServer) -> None:
    # Given another name that resolves to the same server: its certificate does not name it
    url = f"https://other.example.test:{tls_server.port}/jwks.json"
    with pytest.raises(FetchError) as caught:
        fetch_json(
            url, 2.0, resolve=lambda host, port: [(socket.AF_INET, ("127.0.0.1", port))], ssl_context=tls_server.ca
        )
    # Then it is the certificate check against the name that refuses it
    assert isinstance(caught.value.__cause__, ssl.SSLCertVerificationError)


def test_the_next_address_is_tried_within_the_budget(serve: Callable[[Respond], str]) -> None:
    # Given a name with two addresses, the first refusing connections
    url = serve(lambda h: send(h, b'{"keys": []}'))
    port = int(url.split(":")[2].split("/")[0])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    addresses = [(socket.AF_INET, ("127.0.0.1", closed)), (socket.AF_INET, ("127.0.0.1", port))]
    assert fetch_json(f"http://issuer.example.test:{port}/doc.json", 2.0, resolve=lambda h, p: addresses) == {
        "keys": []
    }
