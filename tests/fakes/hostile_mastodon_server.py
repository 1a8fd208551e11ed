"""A hostile Mastodon-compatible server for the outbox: it ignores ``Idempotency-Key``, and shows every other
status back rewritten (NFC, bidirectional and zero-width controls dropped, mentions without their domain),
the rest exactly as sent.

Only the "was it already posted?" check in the thread then stands between a crash and a double post. Customer
handles can hold anything a real server may hand over: combining accents, right-to-left overrides, ``+``.
"""

from __future__ import annotations

import html
import itertools
import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

from console.ports import Clock
from tests.fakes.channel_server import Answer, FakeChannelServer, RecordedRequest, first

__all__ = ["HostileMastodonServer"]

_STATUS = re.compile(r"/api/v1/statuses/(?P<id>[^/]+)(?P<context>/context)?")
_DROPPED = re.compile("[\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def _rendered(text: str) -> str:
    """What the server stores and shows: NFC, controls dropped, ``@user@domain`` shown as ``@user``."""
    plain = _DROPPED.sub("", unicodedata.normalize("NFC", text))
    return re.sub(r"(?<!\S)@([^\s@]+)@\S+", r"@\1", plain)


class HostileMastodonServer(FakeChannelServer):
    """Statuses kept in memory; ``post_mention`` adds a customer's status, POST /api/v1/statuses our replies."""

    def __init__(self, clock: Clock, *, token: str = "hostile-token", our_handle: str = "care") -> None:
        super().__init__()
        self.clock = clock
        self.token = token
        self.our_handle = our_handle
        self._ids = itertools.count(1000)
        self._statuses: dict[str, dict[str, Any]] = {}
        self._order: list[str] = []

    def post_mention(self, *, author: str, text: str) -> dict[str, Any]:
        """A customer's public status mentioning us; returns its JSON (as the server shows it)."""
        with self.lock:
            return self._add(author, f"@{self.our_handle} {text}", in_reply_to=None)

    def posted_by_us(self) -> list[dict[str, Any]]:
        """Every status we posted, in order (duplicates included: that is what the test counts)."""
        with self.lock:
            return [s for i in self._order if (s := self._statuses[i])["account"]["acct"] == self.our_handle]

    def route(self, request: RecordedRequest) -> Answer:
        if request.headers.get("authorization", "") != f"Bearer {self.token}":
            return Answer(401, {"error": "The access token is invalid"})
        if request.method == "POST" and request.path == "/api/v1/statuses":
            form = request.form
            parent = first(form, "in_reply_to_id") or None
            if parent is not None and parent not in self._statuses:
                return Answer(404, {"error": "Record not found"})
            # Idempotency-Key is ignored on purpose: a retry after a crash posts again unless the client checks.
            return Answer(200, self._add(self.our_handle, first(form, "status"), in_reply_to=parent))
        match = _STATUS.fullmatch(request.path)
        if request.method == "GET" and match is not None:
            status = self._statuses.get(match["id"])
            if status is None:
                return Answer(404, {"error": "Record not found"})
            if not match["context"]:
                return Answer(200, status)
            return Answer(200, {"ancestors": self._ancestors(status), "descendants": self._descendants(status["id"])})
        return Answer(404, {"error": f"not served by the hostile fake: {request.method} {request.path}"})

    def _add(self, acct: str, text: str, *, in_reply_to: str | None) -> dict[str, Any]:
        status_id = str(next(self._ids))
        created = datetime.fromtimestamp(self.clock.now(), UTC)
        status = {
            "id": status_id,
            "uri": f"https://hostile.example/statuses/{status_id}",
            "url": f"https://hostile.example/@{acct}/{status_id}",
            "created_at": created.isoformat().replace("+00:00", "Z"),
            "in_reply_to_id": in_reply_to,
            "visibility": "public",
            "content": f"<p>{html.escape(_rendered(text) if int(status_id) % 2 == 0 else text)}</p>",
            "account": {"id": f"acct-{acct}", "acct": acct, "username": acct.split("@")[0], "display_name": ""},
        }
        self._statuses[status_id] = status
        self._order.append(status_id)
        return status

    def _ancestors(self, status: dict[str, Any]) -> list[dict[str, Any]]:
        chain: list[dict[str, Any]] = []
        parent = status["in_reply_to_id"]
        while parent is not None and parent in self._statuses:
            chain.insert(0, self._statuses[parent])
            parent = self._statuses[parent]["in_reply_to_id"]
        return chain

    def _descendants(self, status_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for child_id in self._order:
            child = self._statuses[child_id]
            if child["in_reply_to_id"] == status_id:
                found.append(child)
                found.extend(self._descendants(child_id))
        return found
