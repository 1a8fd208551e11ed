"""A hostile HTTP server on loopback: answers that trickle, answers that never end, JSON nested without end.

Usage::

    with HostileServer() as server:
        server.trickle(b'[{"id": "1"}]', every=0.1)     # headers at once, then one byte every 0.1 s
        server.endless(chunk=1 << 20)                 # 200 OK, then megabytes until the client hangs up
        server.answer(200, b"[...]")                  # a plain answer
        ... point a client at server.base_url ...
        server.requests                               # paths requested, in order
        server.bytes_sent                             # what the server managed to push out

Answers are served in order, one per request, whatever the path; when the script runs out the last answer is
repeated (a poll that comes back meets the same hostile server). Waits use an Event, so ``stop`` ends them
at once. Built on the stdlib ``ThreadingHTTPServer`` in a daemon thread, like :mod:`tests.fakes.http_server`.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

__all__ = ["HostileServer", "deep_json"]


def deep_json(depth: int) -> bytes:
    """``depth`` nested JSON arrays: ``[[[...]]]``."""
    return b"[" * depth + b"]" * depth


@dataclass(frozen=True)
class _Answer:
    kind: str  # "plain", "trickle" or "endless"
    status: int = 200
    body: bytes = b""
    every: float = 0.0
    chunk: int = 1 << 20


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        owner = self.server.owner
        answer = owner._next(self.path)
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            if answer.kind == "endless":
                self.send_header("Connection", "close")
                self.end_headers()
                block = b" " * answer.chunk
                while not owner._stopping.is_set():
                    self.wfile.write(block)
                    owner._sent(len(block))
                return
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if answer.kind == "plain":
                self.wfile.write(answer.body)
                owner._sent(len(answer.body))
                return
            for i in range(len(answer.body)):
                if owner._stopping.wait(answer.every):
                    return
                self.wfile.write(answer.body[i : i + 1])
                self.wfile.flush()
                owner._sent(1)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: HostileServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class HostileServer:
    """See the module docstring."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._script: deque[_Answer] = deque()
        self._last: _Answer | None = None
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.requests: list[str] = []
        self.bytes_sent = 0

    def answer(self, status: int, body: bytes) -> None:
        """Queue a plain answer."""
        self._push(_Answer("plain", status, body))

    def trickle(self, body: bytes, *, every: float) -> None:
        """Queue an answer whose headers (with the full Content-Length) come at once, then one byte per ``every``."""
        self._push(_Answer("trickle", 200, body, every=every))

    def endless(self, *, chunk: int = 1 << 20) -> None:
        """Queue a 200 with no length that sends ``chunk``-byte blocks until the client hangs up."""
        self._push(_Answer("endless", 200, chunk=chunk))

    def _push(self, answer: _Answer) -> None:
        with self._lock:
            self._script.append(answer)

    def _next(self, path: str) -> _Answer:
        with self._lock:
            self.requests.append(path)
            if self._script:
                self._last = self._script.popleft()
            if self._last is None:
                return _Answer("plain", 500, b'{"error": "hostile server: nothing scripted"}')
            return self._last

    def _sent(self, n: int) -> None:
        with self._lock:
            self.bytes_sent += n

    def start(self) -> Self:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.owner = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="HostileServer", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
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
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("HostileServer is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"
