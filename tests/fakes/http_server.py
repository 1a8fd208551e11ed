"""A scripted HTTP server on loopback for connector tests: queued replies, dropped connections, stalls.

Usage::

    with FakeHttpServer() as server:
        server.reply(200, json=[...], headers={"Link": "..."})
        server.reply(503, body=b"<html>down</html>", headers={"Content-Type": "text/html"})
        server.drop()                    # close the connection without answering
        server.stall(5.0)                # hold the request (wakes early on stop) and never answer
        ... point a client at server.base_url ...
        assert server.requests[0].path == "/api/v1/notifications"

Replies are served in order, one per request, whatever the path. When the script runs out the server
answers 500 ``{"error": "fake server: no scripted response"}`` and records the request in ``unscripted``,
so a test can assert that nothing unexpected was asked. Built on :class:`LoopbackServer`, the stdlib
``ThreadingHTTPServer`` bound to ``("127.0.0.1", 0)`` in a daemon thread (STYLE B7), which the stateful
channel fakes (:mod:`tests.fakes.channel_server`) share.
"""

from __future__ import annotations

import abc
import json as jsonlib
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

__all__ = ["FakeHttpServer", "LoopbackServer", "Outgoing", "RecordedRequest", "Reply"]


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes

    @property
    def form(self) -> dict[str, list[str]]:
        """The body parsed as ``application/x-www-form-urlencoded``."""
        return parse_qs(self.body.decode("utf-8"), keep_blank_values=True)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return jsonlib.loads(self.body)


@dataclass(frozen=True)
class Reply:
    """A scripted answer. ``action`` is "respond", "drop" (close without answering) or "stall"."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0  # seconds to wait before acting; stop() cuts the wait short
    action: str = "respond"


#: What a server sends back: status, headers (Content-Type defaults to JSON) and body; None closes the
#: connection without answering.
Outgoing = tuple[int, dict[str, str], bytes] | None

_UNSCRIPTED = Reply(
    500,
    {"Content-Type": "application/json"},
    jsonlib.dumps({"error": "fake server: no scripted response"}).encode(),
)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like a real server; every answer has Content-Length
    timeout = 10  # idle keep-alive connections give their thread back
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        recorded = RecordedRequest(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        outgoing = self.server.owner._answer(recorded)
        if outgoing is None:
            self.close_connection = True
            return
        status, extra_headers, payload = outgoing
        try:
            self.send_response(status)
            headers = {"Content-Type": "application/json; charset=utf-8", **extra_headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            self.close_connection = True

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: LoopbackServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Connection errors after a test gave up are expected; keep them off stderr.
        pass


class LoopbackServer(abc.ABC):
    """An HTTP server on an ephemeral loopback port, served from a daemon thread; subclasses pick the answers.

    Every request is read whole, then :meth:`_answer` (on the server's handler threads) says what to send.
    """

    def __init__(self) -> None:
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @abc.abstractmethod
    def _answer(self, request: RecordedRequest) -> Outgoing:
        """Record ``request`` and say what goes back (None: close the connection without answering)."""

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> Self:
        """Bind to an ephemeral loopback port and serve in a daemon thread."""
        server = _Server(("127.0.0.1", 0), _Handler)
        server.owner = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"


class FakeHttpServer(LoopbackServer):
    """A loopback HTTP server that answers from a script; see the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._script: deque[Reply] = deque()
        self._stopping = threading.Event()
        self.requests: list[RecordedRequest] = []
        self.unscripted: list[RecordedRequest] = []

    def stop(self) -> None:
        """Wake stalled handlers, stop serving and close the socket."""
        self._stopping.set()
        super().stop()

    def _answer(self, request: RecordedRequest) -> Outgoing:
        reply = self._next(request)
        if reply.delay > 0:
            self._stopping.wait(reply.delay)
        if reply.action in ("drop", "stall") or self._stopping.is_set():
            return None
        return reply.status, reply.headers, reply.body

    # -- script ------------------------------------------------------------------------------------

    def reply(
        self,
        status: int = 200,
        *,
        json: Any = None,
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        """Queue an answer: ``json`` is serialised; otherwise ``body`` is sent as is."""
        if body is None:
            data = jsonlib.dumps(json).encode() if json is not None else b""
        else:
            data = body.encode() if isinstance(body, str) else body
        self._push(Reply(status, dict(headers or {}), data, delay))

    def drop(self, *, delay: float = 0.0) -> None:
        """Queue a request that is read and then answered by closing the connection."""
        self._push(Reply(action="drop", delay=delay))

    def stall(self, seconds: float) -> None:
        """Queue a request that gets no answer for ``seconds`` (or until stop), then a closed socket."""
        self._push(Reply(action="stall", delay=seconds))

    def pending(self) -> int:
        """Scripted replies not used yet."""
        with self._lock:
            return len(self._script)

    def _push(self, reply: Reply) -> None:
        with self._lock:
            self._script.append(reply)

    def _next(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            if self._script:
                return self._script.popleft()
            self.unscripted.append(request)
            return _UNSCRIPTED
