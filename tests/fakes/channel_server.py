"""Base for stateful fake channel servers on loopback: routing, recorded requests and injectable faults."""

from __future__ import annotations

import abc
import json as jsonlib
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.http_server import LoopbackServer, Outgoing, RecordedRequest

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


class FakeChannelServer(LoopbackServer):
    """Subclasses implement :meth:`route`; state changes happen under :attr:`lock` (one request at a time)."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.RLock()
        self._faults: deque[Fault] = deque()
        self.requests: list[RecordedRequest] = []
        #: Headers added to every routed answer, over the route's own (e.g. the channel's rate-limit budget).
        self.headers: dict[str, str] = {}

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

    def _answer(self, request: RecordedRequest) -> Outgoing:
        fault = self._take_fault(request)
        if fault is not None and fault.drop:
            return None
        if fault is not None:
            answer = fault.answer
        else:
            try:
                with self.lock:
                    answer = self.route(request)
                    if self.headers:
                        answer = Answer(answer.status, answer.json, {**answer.headers, **self.headers}, answer.body)
            except Exception as exc:  # a bug in the fake: answer 500 so the test sees it
                answer = Answer(500, {"error": f"fake server error: {type(exc).__name__}: {exc}"})
        payload = answer.body if answer.body is not None else jsonlib.dumps(answer.json).encode()
        return answer.status, answer.headers, payload

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


def bearer(request: RecordedRequest) -> str:
    """The token of an ``Authorization: Bearer`` header, or ""."""
    value = request.headers.get("authorization", "")
    return value[7:] if value.lower().startswith("bearer ") else ""


def first(query: dict[str, list[str]], name: str, default: str = "") -> str:
    values = query.get(name)
    return values[0] if values else default
