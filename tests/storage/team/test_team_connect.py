"""Reaching the team database: the DSN (never with its password), libpq settings, errors, certificate pinning."""

from __future__ import annotations

import asyncio
import datetime
import socket
import ssl
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from psycopg.conninfo import conninfo_to_dict

from storage.errors import StorageError, TeamRefused, TeamUnavailable
from storage.team.connect import (
    TeamDsn,
    certificate_fingerprint,
    connect,
    conninfo,
    open_pool,
    password_in,
    pin_certificate,
    translate,
)
from tests.team_pg import TeamPg

FP = "ab" * 32


def test_parse_uri_and_key_values_agree() -> None:
    uri = TeamDsn.parse(f"postgresql://sam:s3cret@10.0.0.5:6543/care?sslmode=verify-ca&schema=acme&fingerprint={FP}")
    kv = TeamDsn.parse(f"host=10.0.0.5 port=6543 dbname=care user=sam password='s3 cret' schema=acme fingerprint={FP}")
    assert (uri.host, uri.port, uri.dbname, uri.user, uri.schema, uri.fingerprint) == (
        "10.0.0.5",
        6543,
        "care",
        "sam",
        "acme",
        FP,
    )
    assert uri.sslmode == "verify-ca" and kv.sslmode is None
    assert (kv.host, kv.port, kv.dbname, kv.user, kv.schema) == ("10.0.0.5", 6543, "care", "sam", "acme")
    assert TeamDsn.parse(uri.display()) == uri
    assert TeamDsn.parse("postgresql://kim@db.example").port == 5432
    assert TeamDsn.parse("postgresql://kim@db.example").schema == "care_console"


def test_password_is_never_held_or_shown() -> None:
    text = "postgresql://sam:s3cret@db.example:5432/care?schema=acme"
    dsn = TeamDsn.parse(text)
    assert password_in(text) == "s3cret"
    assert password_in("host=db.example user=sam password='s3 cret'") == "s3 cret"
    assert password_in("postgresql://sam@db.example/care") is None
    for shown in (dsn.display(), repr(dsn), str(dsn), dsn.server):
        assert "s3cret" not in shown
    assert not hasattr(dsn, "password")
    assert dsn.server == "db.example:5432/care"


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://db.example/care",
        "user=sam",
        "postgresql://sam@db.example/care?schema=Bad-Name",
        "host=h user=u port=x",
    ],
)
def test_malformed_addresses_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"host|user|schema|port"):
        TeamDsn.parse(text)


def test_sslmode_defaults() -> None:
    def mode(dsn: TeamDsn) -> str:
        return conninfo_to_dict(conninfo(dsn, "pw"))["sslmode"]  # type: ignore[return-value]

    assert mode(TeamDsn(host="db.example", user="sam")) == "verify-full"
    assert mode(TeamDsn(host="127.0.0.1", user="sam")) == "prefer"
    assert mode(TeamDsn(host="::1", user="sam")) == "prefer"
    assert mode(TeamDsn(host="/var/run/postgresql", user="sam")) == "prefer"
    pinned = TeamDsn(host="10.0.0.5", user="sam", fingerprint=FP, sslrootcert="/x/team.pem")
    assert mode(pinned) == "verify-ca"
    assert conninfo_to_dict(conninfo(pinned, "pw"))["sslrootcert"] == "/x/team.pem"
    assert mode(TeamDsn(host="db.example", user="sam", sslmode="require")) == "require"
    with pytest.raises(TeamRefused, match="not pinned"):
        conninfo(TeamDsn(host="10.0.0.5", user="sam", fingerprint=FP), "pw")
    assert conninfo_to_dict(conninfo(TeamDsn(host="db.example", user="sam"), "pw"))["password"] == "pw"


def test_errors_are_classified() -> None:
    assert isinstance(translate(psycopg.OperationalError("connection refused"), "Could not x"), TeamUnavailable)
    assert isinstance(translate(psycopg.errors.InsufficientPrivilege("permission denied"), "Could not x"), TeamRefused)
    other = translate(psycopg.errors.UniqueViolation("duplicate key"), "Could not x")
    assert type(other) is StorageError and str(other) == "Could not x: duplicate key"


def test_unreachable_server_is_unavailable_without_the_password(arun: Any) -> None:
    async def go() -> None:
        # a port nothing listens on (bound, never accepted): refused at once
        dsn = TeamDsn(host="127.0.0.1", port=_closed_port(), user="sam")
        await open_pool(dsn, "hunter2-secret", wait_s=2)

    with pytest.raises(TeamUnavailable) as caught:
        arun(go())
    assert "hunter2-secret" not in str(caught.value)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connect_sets_search_path(team_pg: TeamPg, arun: Any) -> None:
    params = conninfo_to_dict(team_pg.conninfo)

    async def go() -> str:
        dsn = TeamDsn(
            host=str(params.get("host", "127.0.0.1")),
            port=int(params.get("port", 5432) or 5432),
            dbname=str(params.get("dbname", "postgres")),
            user=str(params.get("user", "postgres")),
            schema=team_pg.schema,
        )
        conn = await connect(dsn, str(params["password"]) if params.get("password") else None)
        try:
            cur = await conn.execute("SHOW search_path")
            row = await cur.fetchone()
            return str(row[0]) if row else ""
        finally:
            await conn.close()

    assert arun(go()).startswith(team_pg.schema)


# -- certificate pinning against a loopback server that answers PostgreSQL's SSLRequest ------------------------


def _certificate(tmp: Path) -> tuple[ssl.SSLContext, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "team.example")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    return context, cert.public_bytes(serialization.Encoding.DER)


async def _tls_front(context: ssl.SSLContext) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readexactly(8)  # SSLRequest
            writer.write(b"S")
            await writer.drain()
            await writer.start_tls(context)
            await reader.read(1)
        except (OSError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def test_pin_certificate_checks_the_fingerprint(tmp_path: Path, arun: Any) -> None:
    context, der = _certificate(tmp_path)

    async def go() -> tuple[TeamDsn, str]:
        server = await _tls_front(context)
        port = int(server.sockets[0].getsockname()[1])
        try:
            good = TeamDsn(host="127.0.0.1", port=port, user="sam", fingerprint=certificate_fingerprint(der))
            pinned = await pin_certificate(good, tmp_path / "data")
            wrong = TeamDsn(host="127.0.0.1", port=port, user="sam", fingerprint=FP)
            try:
                await pin_certificate(wrong, tmp_path / "data2")
            except TeamRefused as exc:
                refusal = str(exc)
            else:
                refusal = ""
            return pinned, refusal
        finally:
            server.close()
            await server.wait_closed()

    pinned, refusal = arun(go())
    assert pinned.sslrootcert is not None
    stored = ssl.PEM_cert_to_DER_cert(Path(pinned.sslrootcert).read_text())
    assert stored == der
    assert conninfo_to_dict(conninfo(pinned, None))["sslrootcert"] == pinned.sslrootcert
    assert "another fingerprint" in refusal
    assert not (tmp_path / "data2").exists()
