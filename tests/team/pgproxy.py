"""A small TCP proxy between the soak's agents and PostgreSQL that can cut one agent off and let it back.

Each agent connects to its own route (a loopback port); the proxy forwards the bytes to the server unchanged
(PostgreSQL's protocol, TLS or not, passes through). ``cut(name)`` takes one agent off the network while the
others carry on:

- ``reset`` (the default): its connections are aborted (a TCP reset) and new ones are closed at once, as when a
  laptop's Wi-Fi drops and the operating system says so;
- ``silent``: nothing is forwarded any more and nothing is said: new connections are accepted and never answered,
  open ones go quiet, as behind a dead router. Only the agent's own timeouts notice. At ``restore`` the
  connections held during the cut are aborted (TCP would have given up on them by then).

The proxy runs its own asyncio loop on a daemon thread, so the test's synchronous code drives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

T = TypeVar("T")
CutMode = Literal["reset", "silent"]


@dataclass
class _Route:
    name: str
    server: asyncio.Server
    port: int
    cut: CutMode | None = None
    #: Live forwarded connections: (client writer, upstream writer).
    pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = field(default_factory=set)
    #: Connections accepted while cut silently: held without an answer.
    held: set[asyncio.StreamWriter] = field(default_factory=set)
    connections: int = 0
    refused: int = 0

    def silent(self) -> bool:
        """Cut silently now (a method, not a narrowed attribute: the cut changes while a coroutine waits)."""
        return self.cut == "silent"

    def down(self) -> bool:
        return self.cut is not None


class PgProxy:
    """Routes by name to one upstream ``host:port``; ``cut`` and ``restore`` one route at a time."""

    def __init__(self, upstream_port: int, *, upstream_host: str = "127.0.0.1") -> None:
        self._upstream = (upstream_host, upstream_port)
        self._routes: dict[str, _Route] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="pgproxy", daemon=True)
        self._thread.start()

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def route(self, name: str) -> int:
        """The loopback port of ``name``'s route (opened on first use)."""
        return self._call(self._route(name))

    async def _route(self, name: str) -> int:
        existing = self._routes.get(name)
        if existing is not None:
            return existing.port
        server = await asyncio.start_server(lambda r, w: self._accept(name, r, w), "127.0.0.1", 0)
        port = int(server.sockets[0].getsockname()[1])
        self._routes[name] = _Route(name, server, port)
        return port

    def cut(self, name: str, mode: CutMode = "reset") -> None:
        """Take ``name`` off the network until ``restore``."""
        self._call(self._cut(name, mode))

    async def _cut(self, name: str, mode: CutMode) -> None:
        route = self._routes[name]
        route.cut = mode
        if mode == "reset":
            for client, upstream in list(route.pairs):
                _abort(client)
                _abort(upstream)
            route.pairs.clear()

    def restore(self, name: str) -> None:
        """Let ``name`` connect again; connections held by a silent cut are aborted."""
        self._call(self._restore(name))

    async def _restore(self, name: str) -> None:
        route = self._routes[name]
        if route.cut == "silent":
            for client, upstream in list(route.pairs):
                _abort(client)
                _abort(upstream)
            route.pairs.clear()
            for writer in list(route.held):
                _abort(writer)
            route.held.clear()
        route.cut = None

    def is_cut(self, name: str) -> bool:
        return self._routes[name].cut is not None

    def stats(self) -> dict[str, dict[str, int]]:
        """Per route: connections forwarded, connections refused or held while cut, connections open now."""
        return {
            name: {"connections": r.connections, "refused": r.refused, "open": len(r.pairs)}
            for name, r in list(self._routes.items())
        }

    def close(self) -> None:
        """Close every route and connection and stop the proxy's loop."""
        with contextlib.suppress(Exception):
            self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()

    async def _close(self) -> None:
        for route in self._routes.values():
            route.server.close()
            await route.server.wait_closed()
            for client, upstream in route.pairs:
                _abort(client)
                _abort(upstream)
            for writer in route.held:
                _abort(writer)
        self._routes.clear()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _accept(self, name: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        route = self._routes.get(name)
        if route is None:
            _abort(writer)
            return
        if route.cut == "reset":
            route.refused += 1
            _abort(writer)
            return
        if route.cut == "silent":
            route.refused += 1
            route.held.add(writer)
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            _abort(writer)  # the server is down (a restart): the client sees its connection refused
            return
        if route.down():  # cut while connecting
            _abort(writer)
            _abort(up_writer)
            return
        pair = (writer, up_writer)
        route.pairs.add(pair)
        route.connections += 1
        try:
            await asyncio.gather(self._pump(route, reader, up_writer), self._pump(route, up_reader, writer))
        finally:
            route.pairs.discard(pair)
            _abort(writer)
            _abort(up_writer)

    @staticmethod
    async def _pump(route: _Route, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy bytes one way until either side ends; under a silent cut, read nothing and send nothing."""
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while True:
                while route.silent():
                    await asyncio.sleep(0.05)
                    if writer.is_closing():
                        return
                data = await reader.read(65536)
                if not data or writer.is_closing():
                    break
                if route.silent():
                    continue  # cut while this read waited: the bytes are lost, as on a dead network
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(OSError):
            if not writer.is_closing():
                writer.close()


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close at once with a TCP reset (no goodbye): what a dropped network looks like to the other side."""
    transport = writer.transport
    if not transport.is_closing():
        transport.abort()
    else:
        with contextlib.suppress(Exception):
            transport.abort()
