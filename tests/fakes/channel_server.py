"""Base for stateful fake channel servers on loopback: routing, recorded requests and injectable faults."""

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

from tests.fakes.http_server import RecordedRequest

__all__ = ["Answer", "FakeChannelServer", "Fault", "RecordedRequest"]


@dataclass(frozen=True)
class Answer:
    """What a route returns: status, JSON body (or raw bytes) and headers."""

    status: int = 200
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass(frozen=True)
class Fault:
    """A one-shot answer for the next request whose path contains ``path`` ("" matches any)."""

    answer: Answer
    path: str = ""
    drop: bool = False  # close the connection without answering


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = RecordedRequest(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        owner = self.server.owner
        fault = owner._take_fault(request)
        if fault is not None and fault.drop:
            self.close_connection = True
            return
        if fault is not None:
            answer = fault.answer
        else:
            try:
                with owner.lock:
                    answer = owner.route(request)
            except Exception as exc:  # a bug in the fake: answer 500 so the test sees it
                answer = Answer(500, {"error": f"fake server error: {type(exc).__name__}: {exc}"})
        payload = answer.body if answer.body is not None else jsonlib.dumps(answer.json).encode()
        try:
            self.send_response(answer.status)
            headers = {"Content-Type": "application/json; charset=utf-8", **answer.headers}
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: FakeChannelServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class FakeChannelServer(abc.ABC):
    """Subclasses implement :meth:`route`; state changes happen under :attr:`lock` (one request at a time)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._faults: deque[Fault] = deque()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.requests: list[RecordedRequest] = []

    @abc.abstractmethod
    def route(self, request: RecordedRequest) -> Answer:
        """The channel's answer to one request (each fake server's API)."""

    def fail_next(
        self, status: int, json: Any = None, *, path: str = "", headers: dict[str, str] | None = None
    ) -> None:
        """Answer the next request on ``path`` with this error instead of the real route."""
        with self.lock:
            self._faults.append(Fault(Answer(status, json, dict(headers or {})), path))

    def drop_next(self, *, path: str = "") -> None:
        """Close the connection of the next request on ``path`` without answering."""
        with self.lock:
            self._faults.append(Fault(Answer(), path, drop=True))

    def _take_fault(self, request: RecordedRequest) -> Fault | None:
        with self.lock:
            self.requests.append(request)
            for fault in self._faults:
                if fault.path in request.path:
                    self._faults.remove(fault)
                    return fault
        return None

    def paths(self) -> list[str]:
        with self.lock:
            return [request.path for request in self.requests]

    def start(self) -> Self:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.owner = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name=type(self).__name__, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
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
            raise RuntimeError("server is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"


def bearer(request: RecordedRequest) -> str:
    """The token of an ``Authorization: Bearer`` header, or ""."""
    value = request.headers.get("authorization", "")
    return value[7:] if value.lower().startswith("bearer ") else ""


def first(query: dict[str, list[str]], name: str, default: str = "") -> str:
    values = query.get(name)
    return values[0] if values else default
