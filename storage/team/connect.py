"""Reaching the team database: the DSN (never with its password), connections, the pool, and error mapping.

This is the one place where psycopg's errors become the StorageError tree (as storage/driver.py is for SQLite):

    psycopg.Error
     ├── OperationalError (no route, refused, server gone, pool timeout)      ->  TeamUnavailable
     ├── InsufficientPrivilege (a grant, a row-level security policy, 42501)  ->  TeamRefused
     └── anything else (a constraint, a bad query)                            ->  StorageError

Every repository class of storage/team is decorated with :func:`team_repository`; code that talks to the
database outside one uses :func:`converted`.

TLS: off loopback the default ``sslmode`` is ``verify-full``. A server started by ``team host`` has a
self-signed certificate; its sha256 fingerprint travels in the invitation (``fingerprint=`` in the DSN). At join
:func:`pin_certificate` fetches the server's certificate, refuses it unless its fingerprint matches, and stores it
as a PEM file that becomes the DSN's ``sslrootcert``; libpq then checks every connection against that one
certificate (``verify-ca``: a LAN address rarely matches the certificate's name, the pinned certificate is the
proof).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import inspect
import ipaddress
import re
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.conninfo import make_conninfo
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from storage.errors import StorageError, TeamRefused, TeamUnavailable

#: The schema team tables live in unless the DSN names another.
DEFAULT_SCHEMA = "care_console"

#: A schema name we accept: also part of role names (``<schema>_agent``) and notification channels.
SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")

#: Seconds libpq waits for a connection before the team is reported unavailable.
CONNECT_TIMEOUT_S = 5

TeamConnection = AsyncConnection[TupleRow]
TeamPool = AsyncConnectionPool[AsyncConnection[TupleRow]]
#: What a repository works on: the app's pool, or one connection (``team init``/``invite`` from the CLI, tests).
TeamDb = TeamPool | TeamConnection

_SSLMODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})
_LOOPBACK_NAMES = frozenset({"localhost", ""})


def valid_schema(schema: str) -> str:
    """``schema`` when it is a safe team schema name, else ValueError (it is spliced into role names)."""
    if not SCHEMA_NAME.match(schema):
        raise ValueError(f"not a valid team schema name: {schema!r} (lower-case letters, digits and _)")
    return schema


@dataclass(frozen=True)
class TeamDsn:
    """Where the team database is: everything needed to connect except the password (kept in the keyring).

    ``display()`` is the form stored in settings and shown to people; ``parse(display())`` gives it back.
    """

    host: str
    user: str
    port: int = 5432
    dbname: str = "postgres"
    sslmode: str | None = None
    sslrootcert: str | None = None
    #: sha256 (hex) of the server's certificate, from the invitation ``team host``/``team invite`` print.
    fingerprint: str | None = None
    schema: str = DEFAULT_SCHEMA

    def __post_init__(self) -> None:
        valid_schema(self.schema)
        if self.sslmode is not None and self.sslmode not in _SSLMODES:
            raise ValueError(f"unknown sslmode {self.sslmode!r}")
        if self.fingerprint is not None:
            normalised = self.fingerprint.replace(":", "").lower()
            if not re.fullmatch(r"[0-9a-f]{64}", normalised):
                raise ValueError("the certificate fingerprint must be 64 hexadecimal digits (sha256)")
            object.__setattr__(self, "fingerprint", normalised)

    @classmethod
    def parse(cls, text: str) -> TeamDsn:
        """Read a URI (``postgresql://user@host:port/db?sslmode=…&schema=…``) or ``key=value`` pairs.

        A password in ``text`` is dropped, never kept: the caller reads it with :func:`password_in` first and
        stores it in the keyring.

        Raises:
            ValueError: ``text`` names no host or no user, or a value is malformed.
        """
        fields = _fields(text)
        host = fields.pop("host", "")
        user = fields.pop("user", "")
        if not host:
            raise ValueError("the team database address names no host")
        if not user:
            raise ValueError("the team database address names no user")
        port_text = fields.pop("port", "") or "5432"
        try:
            port = int(port_text)
        except ValueError:
            raise ValueError(f"not a port number: {port_text!r}") from None
        return cls(
            host=host,
            user=user,
            port=port,
            dbname=fields.pop("dbname", "") or "postgres",
            sslmode=fields.pop("sslmode", "") or None,
            sslrootcert=fields.pop("sslrootcert", "") or None,
            fingerprint=fields.pop("fingerprint", "") or None,
            schema=fields.pop("schema", "") or DEFAULT_SCHEMA,
        )

    def display(self) -> str:
        """The URI without any password, e.g. ``postgresql://sam@10.0.0.5:5432/care?schema=care_console``."""
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("/") else quote(self.host, safe="")
        query: dict[str, str] = {}
        if self.sslmode:
            query["sslmode"] = self.sslmode
        if self.sslrootcert:
            query["sslrootcert"] = self.sslrootcert
        if self.fingerprint:
            query["fingerprint"] = self.fingerprint
        query["schema"] = self.schema
        return (
            f"postgresql://{quote(self.user, safe='')}@{host}:{self.port}/{quote(self.dbname, safe='')}"
            f"?{urlencode(query)}"
        )

    @property
    def server(self) -> str:
        """``host:port/dbname``: the short form for the health strip."""
        return f"{self.host}:{self.port}/{self.dbname}"

    @property
    def is_loopback(self) -> bool:
        """True for this machine (a loopback address, ``localhost``, or a unix-socket folder)."""
        if self.host.startswith("/") or self.host in _LOOPBACK_NAMES:
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def __repr__(self) -> str:
        return f"TeamDsn({self.display()!r})"

    __str__ = display


def password_in(text: str) -> str | None:
    """The password a pasted URI or ``key=value`` string carries (for the keyring), or None."""
    if text.strip().startswith(("postgresql://", "postgres://")):
        value = urlsplit(text.strip()).password
        return unquote(value) if value else None
    return _key_values(text).get("password") or None


def _fields(text: str) -> dict[str, str]:
    text = text.strip()
    if text.startswith(("postgresql://", "postgres://")):
        parts = urlsplit(text)
        fields = {k: v for k, v in parse_qsl(parts.query, keep_blank_values=True)}
        fields["host"] = unquote(parts.hostname or "") if parts.hostname else fields.get("host", "")
        # urlsplit lower-cases the host; an IPv6 literal or name is case-insensitive anyway.
        try:
            port = parts.port
        except ValueError:
            raise ValueError("the team database address has a malformed port") from None
        if port is not None:
            fields["port"] = str(port)
        if parts.username:
            fields["user"] = unquote(parts.username)
        if parts.path.strip("/"):
            fields["dbname"] = unquote(parts.path.strip("/"))
        fields.pop("password", None)
        return fields
    fields = _key_values(text)
    fields.pop("password", None)
    return fields


_KEY_VALUE = re.compile(r"(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|[^\s']+)")


def _key_values(text: str) -> dict[str, str]:
    """libpq's ``key=value`` form, with single-quoted values (backslash escapes) as libpq reads them."""
    fields: dict[str, str] = {}
    for key, raw in _KEY_VALUE.findall(text):
        value = raw
        if raw.startswith("'"):
            value = re.sub(r"\\(.)", r"\1", raw[1:-1])
        fields[key] = value
    return fields


def conninfo(dsn: TeamDsn, password: str | None) -> str:
    """The libpq connection string for ``dsn`` with ``password``: secret, never log it or put it in an error.

    ``sslmode`` defaults to ``verify-full`` off this machine, ``verify-ca`` when a pinned certificate is the
    root (see the module docstring), and ``prefer`` on loopback or a unix socket.

    Raises:
        TeamRefused: the DSN carries a fingerprint but the certificate was not pinned (no ``sslrootcert``).
    """
    sslmode = dsn.sslmode
    if dsn.fingerprint and not dsn.sslrootcert and not dsn.is_loopback:
        raise TeamRefused(
            "The team server's certificate is not pinned yet: join again so that its fingerprint is checked."
        )
    if sslmode is None:
        if dsn.is_loopback:
            sslmode = "prefer"
        elif dsn.fingerprint and dsn.sslrootcert:
            sslmode = "verify-ca"
        else:
            sslmode = "verify-full"
    params: dict[str, Any] = {
        "host": dsn.host,
        "port": dsn.port,
        "dbname": dsn.dbname,
        "user": dsn.user,
        "sslmode": sslmode,
        "application_name": "care-console",
        "connect_timeout": CONNECT_TIMEOUT_S,
    }
    if dsn.sslrootcert:
        params["sslrootcert"] = dsn.sslrootcert
    if password:
        params["password"] = password
    return make_conninfo("", **params)


# -- errors -----------------------------------------------------------------------------------------------------


def translate(exc: BaseException, what: str) -> StorageError:
    """The StorageError for a psycopg (or pool) error raised while doing ``what``.

    Messages are made of ``what`` and the server's or driver's first line, which never hold the password.
    """
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return TeamRefused(f"{what}: the team database refused it ({first_line})")
    if isinstance(exc, psycopg.OperationalError | OSError):
        return TeamUnavailable(first_line, message=f"{what}: the team database cannot be reached ({first_line})")
    return StorageError(f"{what}: {first_line}")


_CONVERTED = (psycopg.Error, OSError)


@contextlib.asynccontextmanager
async def converted(what: str) -> AsyncIterator[None]:
    """Inside the block a psycopg error is raised as the StorageError :func:`translate` gives."""
    try:
        yield
    except StorageError:
        raise
    except _CONVERTED as exc:
        raise translate(exc, what) from exc


F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
C = TypeVar("C", bound=type)


def says(what: str) -> Callable[[F], F]:
    """Method decorator for an async method: a psycopg error in it reads ``"<what>: <reason>"``."""

    def decorate(method: F) -> F:
        @functools.wraps(method)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return await method(*args, **kwargs)
            except StorageError:
                raise
            except _CONVERTED as exc:
                raise translate(exc, what) from exc

        wrapper.__team_converts__ = True  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]  # same signature, by functools.wraps

    return decorate


def team_repository(cls: C) -> C:
    """Class decorator: every public async method of ``cls`` raises StorageError, never a psycopg error."""
    for name, attr in list(vars(cls).items()):
        if name.startswith("_") or not inspect.iscoroutinefunction(attr):
            continue
        if getattr(attr, "__team_converts__", False):
            continue
        setattr(cls, name, says(f"Could not {name.replace('_', ' ')} ({cls.__name__})")(attr))
    return cls


# -- connections ------------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def borrow(db: TeamDb) -> AsyncIterator[TeamConnection]:
    """A connection of ``db``: one from the pool for the block, or the connection itself."""
    if isinstance(db, AsyncConnection):
        yield db
    else:
        async with db.connection() as conn:
            yield conn


def _search_path(schema: str) -> sql.Composed:
    return sql.SQL("SET search_path TO {}, pg_temp").format(sql.Identifier(valid_schema(schema)))


async def connect(dsn: TeamDsn, password: str | None, *, autocommit: bool = True) -> TeamConnection:
    """One connection with ``search_path`` on the team schema (``team init``, the listener, tests).

    Raises:
        TeamUnavailable: the server cannot be reached or refused the login.
    """
    return await connect_conninfo(conninfo(dsn, password), dsn.schema, autocommit=autocommit)


async def connect_conninfo(info: str, schema: str, *, autocommit: bool = True) -> TeamConnection:
    """Like :func:`connect`, from a libpq connection string (tests and ``team host`` have one)."""
    async with converted("Could not connect to the team database"):
        conn = await AsyncConnection.connect(info, autocommit=True)
        try:
            await conn.execute(_search_path(schema))
            await conn.set_autocommit(autocommit)
        except BaseException:
            await conn.close()
            raise
        return conn


async def listen_connection(dsn: TeamDsn, password: str | None) -> TeamConnection:
    """An autocommit connection for ``LISTEN <schema>_events`` / ``<schema>_claims`` (kept out of the pool)."""
    return await connect(dsn, password, autocommit=True)


def _configure(schema: str) -> Callable[[TeamConnection], Awaitable[None]]:
    statement = _search_path(schema)

    async def configure(conn: TeamConnection) -> None:
        # search_path is set per connection here and not through ``options=``: poolers (pgbouncer) drop options.
        await conn.execute(statement)

    return configure


async def open_pool(
    dsn: TeamDsn, password: str | None, *, min_size: int = 1, max_size: int = 4, wait_s: float = 10.0
) -> TeamPool:
    """An open pool of autocommit connections on the team schema (repositories open transactions themselves).

    Raises:
        TeamUnavailable: no connection could be made within ``wait_s`` seconds.
    """
    return await open_pool_conninfo(
        conninfo(dsn, password), dsn.schema, min_size=min_size, max_size=max_size, wait_s=wait_s
    )


async def open_pool_conninfo(
    info: str, schema: str, *, min_size: int = 1, max_size: int = 4, wait_s: float = 10.0
) -> TeamPool:
    """Like :func:`open_pool`, from a libpq connection string (tests and ``team host``)."""
    pool: TeamPool = AsyncConnectionPool(
        info,
        min_size=min_size,
        max_size=max_size,
        kwargs={"autocommit": True},
        configure=_configure(schema),
        check=AsyncConnectionPool.check_connection,
        timeout=wait_s,
        name="care-console-team",
        open=False,
    )
    async with converted("Could not connect to the team database"):
        try:
            await pool.open(wait=True, timeout=wait_s)
        except BaseException:
            await pool.close()
            raise
    return pool


# -- certificate pinning ----------------------------------------------------------------------------------------

#: The protocol's SSLRequest message: length 8, code 80877103.
_SSL_REQUEST = struct.pack("!ii", 8, 80877103)


def certificate_fingerprint(der: bytes) -> str:
    """The sha256 (hex, lower case) of a DER certificate: what ``team host`` prints and the DSN carries."""
    return hashlib.sha256(der).hexdigest()


async def fetch_server_certificate(host: str, port: int, *, wait_s: float = CONNECT_TIMEOUT_S) -> bytes:
    """The DER certificate a PostgreSQL server presents (SSLRequest, then a TLS handshake that trusts nothing).

    Only for comparing with a fingerprint the member already has: nothing is sent after the handshake.

    Raises:
        TeamUnavailable: the server cannot be reached or does not speak TLS.
    """
    try:
        async with asyncio.timeout(wait_s):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(_SSL_REQUEST)
                await writer.drain()
                answer = await reader.readexactly(1)
                if answer != b"S":
                    raise TeamUnavailable(f"the server at {host}:{port} does not offer TLS")
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                await writer.start_tls(context, server_hostname=host)
                ssl_object = writer.get_extra_info("ssl_object")
                der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
            finally:
                writer.close()
                with contextlib.suppress(OSError, ssl.SSLError):
                    await writer.wait_closed()
    except (OSError, ssl.SSLError, asyncio.IncompleteReadError, TimeoutError) as exc:
        raise TeamUnavailable(f"no TLS answer from {host}:{port} ({exc or type(exc).__name__})") from exc
    if not der:
        raise TeamUnavailable(f"the server at {host}:{port} presented no certificate")
    return bytes(der)


async def pin_certificate(dsn: TeamDsn, folder: Path) -> TeamDsn:
    """Check the server's certificate against ``dsn.fingerprint``, store it in ``folder``, return the pinned DSN.

    Raises:
        TeamRefused: the certificate's fingerprint differs (someone else answers at that address).
        TeamUnavailable: the server cannot be reached.
        ValueError: ``dsn`` carries no fingerprint.
    """
    if not dsn.fingerprint:
        raise ValueError("this team address carries no certificate fingerprint to check")
    der = await fetch_server_certificate(dsn.host, dsn.port)
    found = certificate_fingerprint(der)
    if found != dsn.fingerprint:
        raise TeamRefused(
            f"The server at {dsn.host}:{dsn.port} presented a certificate with another fingerprint ({found[:16]}…, "
            f"expected {dsn.fingerprint[:16]}…): not connecting. Ask the team's owner for a new invitation."
        )
    pem = ssl.DER_cert_to_PEM_cert(der)
    path = folder / f"team-server-{found[:16]}.pem"
    await asyncio.to_thread(_write_text, path, pem)
    return replace(dsn, sslrootcert=str(path))


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="ascii")
