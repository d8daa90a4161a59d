"""The guarded client's own rules with real sockets: pinning (no second DNS lookup), TLS still
verified for the URL's host name, redirects, streamed caps."""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lti_tool import outbound
from lti_tool.outbound import (
    AllowList,
    OutboundClient,
    OutboundPolicy,
    OutboundRefused,
    OutboundTimeout,
    OutboundTooLarge,
)
from testkit.lti import SlowServer


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/loop"):
            self.send_response(302)
            self.send_header("Location", "/loop")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = self.headers.get("Host", "").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _client(allow: str, **policy: object) -> OutboundClient:
    return OutboundClient(OutboundPolicy(allow=AllowList.parse(allow), **policy))


def test_the_checked_address_is_the_one_connected_to(server, monkeypatch):
    """A rebinding name answers 127.0.0.1 to the check and 127.0.0.2 afterwards: the call
    reaches 127.0.0.1, and the name is looked up once."""
    port = server.server_address[1]
    real = socket.getaddrinfo
    lookups: list[str] = []

    def rebinding(host, *args, **kwargs):
        if host == "lms.rebind.test":
            lookups.append(host)
            host = "127.0.0.1" if len(lookups) == 1 else "127.0.0.2"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    reply = _client(f"127.0.0.1:{port}").request("GET", f"http://lms.rebind.test:{port}/")
    assert reply.status_code == 200
    assert reply.content == f"lms.rebind.test:{port}".encode()  # the Host header is the name
    assert lookups == ["lms.rebind.test"]


def _certificate(tmp_path: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_is_verified_for_the_urls_host_name_while_connecting_to_the_pinned_address(
        tmp_path, monkeypatch):
    cert, key = _certificate(tmp_path, "lms.tls.test")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    port = httpd.server_address[1]
    real = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", lambda host, *a, **k: real(
        "127.0.0.1" if host in ("lms.tls.test", "other.tls.test") else host, *a, **k))
    try:
        client = _client(f"127.0.0.1:{port}")
        client.session.verify = str(cert)
        reply = client.request("GET", f"https://lms.tls.test:{port}/")
        assert reply.status_code == 200 and reply.content == f"lms.tls.test:{port}".encode()
        with pytest.raises(requests.exceptions.SSLError):  # same address, wrong name
            client.request("GET", f"https://other.tls.test:{port}/")
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_redirect_loop_on_the_same_host_is_cut(server):
    port = server.server_address[1]
    with pytest.raises(OutboundRefused) as err:
        _client(f"127.0.0.1:{port}").request("GET", f"http://127.0.0.1:{port}/loop")
    assert "more than 3 redirects" in err.value.message


def test_a_drip_is_cut_at_the_total_deadline():
    with SlowServer(drip=True) as slow, pytest.raises(OutboundTimeout):
        _client("127.0.0.1", deadline=0.5).request("GET", slow.url)


def test_a_declared_length_over_the_cap_is_refused_before_reading(server):
    port = server.server_address[1]
    with pytest.raises(OutboundTooLarge):
        _client("127.0.0.1", max_bytes=5).request("GET", f"http://127.0.0.1:{port}/")


def test_a_client_bound_to_hosts_refuses_others_before_resolving(monkeypatch):
    monkeypatch.setattr(outbound, "resolve", lambda *a: pytest.fail("resolved"))
    client = OutboundClient(OutboundPolicy()).for_hosts(["lms.example.edu"])
    with pytest.raises(OutboundRefused) as err:
        client.request("GET", "https://evil.example/x")
    assert "evil.example is not one of the hosts recorded" in err.value.message


def test_urls_with_credentials_or_other_schemes_are_refused():
    for url in ("https://user:pw@lms.example.edu/", "ftp://lms.example.edu/",
                "file:///etc/passwd"):
        with pytest.raises(OutboundRefused):
            outbound.check_target(url, OutboundPolicy())
