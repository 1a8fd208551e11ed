"""Tokens never cross the network in clear text, and TLS is checked against the system's certificate store."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import sqlite_utils
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from console.accounts.service import AccountError, AccountService
from console.channels.errors import CertificateRefused, Permanent
from console.channels.http import is_loopback, plain_http_refusal, send
from console.ports import MemorySecretStore
from console.runtime import channel_client
from storage.account_admin import AccountAdmin
from storage.accounts import AccountRepo
from tests.fakes.clock import FakeClock
from tests.fakes.http_server import FakeHttpServer

T = TypeVar("T")
Arun = Callable[[Awaitable[T]], T]


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("localhost", True), ("api.localhost", True), ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True),
     ("[::1]", True), ("10.0.0.5", False), ("mastodon.social", False), ("localhost.evil.example", False),
     ("0.0.0.0", False), ("192.168.1.10", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    "url", ["http://mastodon.social/api/v1/notifications", "http://10.0.0.5:3000/x", "http://[fe80::1]/x"]
)
def test_plain_http_to_another_computer_is_refused_before_connecting(url: str, arun: Arun[Any]) -> None:
    async def go() -> None:
        async with httpx.AsyncClient(trust_env=False, timeout=2.0) as client:
            await send(client, "GET", url, host="example", headers={"Authorization": "Bearer secret-token"})

    with pytest.raises(Permanent, match=r"plain http:// .*unencrypted.*https://"):
        arun(go())


def test_plain_http_to_this_computer_still_works(arun: Arun[Any]) -> None:
    with FakeHttpServer() as server:
        server.reply(200, json={"ok": True})

        async def go() -> httpx.Response:
            async with channel_client(server.base_url) as client:
                return await send(client, "GET", f"{server.base_url}/api/v1/instance", host="sandbox")

        assert arun(go()).json() == {"ok": True}
        assert plain_http_refusal(server.base_url) is None and plain_http_refusal("https://mastodon.social") is None


def test_adding_an_account_on_plain_http_is_refused_and_saves_nothing(
    db: sqlite_utils.Database, secrets: MemorySecretStore, clock: FakeClock, arun: Arun[Any]
) -> None:
    async def go() -> None:
        async with httpx.AsyncClient(trust_env=False, timeout=2.0) as client:
            service = AccountService(AccountRepo(db), AccountAdmin(db), secrets, clock, client)
            await service.add("mastodon", handle="care", base_url="http://mastodon.social", secret="token-123456")

    with pytest.raises(AccountError, match="plain http://"):
        arun(go())
    assert AccountRepo(db).list() == []


# ---------------------------------------------------------------------------------------------------- TLS
@dataclass(frozen=True)
class TlsServer:
    base_url: str
    ca_file: Path


class _Ok(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:  # the stdlib's parameter name
        del format, args


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[TlsServer]:
    """An HTTPS server on loopback whose self-signed certificate no certificate store trusts."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Inspecting proxy test CA")])
    start = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=365 * 50))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ok)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield TlsServer(f"https://127.0.0.1:{server.server_port}", cert_file)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _get(client_for: str, url: str) -> Awaitable[httpx.Response]:
    async def go() -> httpx.Response:
        async with channel_client(client_for) as client:
            return await send(client, "GET", url, host="mastodon.example")

    return go()


def test_a_refused_certificate_is_said_plainly(tls_server: TlsServer, arun: Arun[Any]) -> None:
    with pytest.raises(CertificateRefused) as refused:
        arun(_get(tls_server.base_url, f"{tls_server.base_url}/api/v1/instance"))
    message = str(refused.value)
    assert "certificate of mastodon.example was refused" in message and "self-signed" in message
    assert "certificate store" in message and "company proxy" in message


def test_certificates_are_checked_even_on_a_client_made_for_plain_http(tls_server: TlsServer, arun: Arun[Any]) -> None:
    with FakeHttpServer() as loopback, pytest.raises(CertificateRefused):
        arun(_get(loopback.base_url, f"{tls_server.base_url}/api/v1/instance"))


def test_channel_clients_trust_what_the_system_store_trusts(
    tls_server: TlsServer, arun: Arun[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # OpenSSL's system store on Linux honours SSL_CERT_FILE: the way an administrator adds a proxy's CA here.
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_server.ca_file))
    assert arun(_get(tls_server.base_url, f"{tls_server.base_url}/api/v1/instance")).json() == {}
