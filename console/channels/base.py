"""What every connector speaks: inbound items, batches with opaque cursors, receipts, the protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from storage.rows import MentionKind

#: An opaque, JSON-serialisable per-account cursor (channels.md §0).
Cursor = dict[str, Any]


@dataclass(frozen=True, slots=True)
class AccountRef:
    id: int
    kind: str
    handle: str
    base_url: str


@dataclass(frozen=True, slots=True)
class InboundItem:
    """One customer message, parsed from a channel's JSON into plain values."""

    external_id: str
    author_id: str
    author_handle: str  # without a leading "@"; "user@domain" for remote Mastodon accounts
    author_name: str
    text: str  # plain text, never HTML
    url: str
    posted_at: int  # UTC epoch seconds, the customer's post time
    kind: MentionKind
    visibility: str  # the channel's own word ("public", "unlisted", "private", "direct")
    parent_external_id: str | None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Backfill:
    """How far a first sync has gone back in time (issue 20, sync 1): it reads back to a horizon, page by page."""

    horizon: int  # epoch seconds the first sync goes back to
    oldest: int | None  # post time of the oldest item read so far; None before any
    done: bool  # nothing more to read back
    #: Done because an item older than the horizon was met; done without it means the server had nothing older.
    reached_horizon: bool = False


@dataclass(frozen=True, slots=True)
class Batch:
    items: list[InboundItem]  # oldest first
    next_cursor: Cursor | None  # None: nothing new, keep the old cursor
    #: Set while, and when, a first sync reads back to its horizon (connectors that can, see :class:`Backfills`).
    backfill: Backfill | None = None


@dataclass(frozen=True, slots=True)
class ReplyReceipt:
    external_id: str
    url: str
    posted_at: int


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the credential belongs to (``verify()``)."""

    external_id: str
    handle: str
    display_name: str


@dataclass(frozen=True, slots=True)
class ReplyTarget:
    """What a connector needs to answer a message in its thread."""

    external_id: str
    author_handle: str
    visibility: str


@runtime_checkable
class Backfills(Protocol):
    """A connector whose API pages back in time: its first sync reads back to a horizon, not the newest page."""

    def backfill_cursor(self, horizon: int) -> Cursor:
        """The cursor that starts a first sync reading back to ``horizon`` (epoch seconds)."""
        ...


class Connector(Protocol):
    kind: ClassVar[str]

    async def verify(self) -> Identity: ...

    async def fetch_new(self, cursor: Cursor | None) -> Batch: ...

    async def fetch_thread(self, external_id: str) -> list[InboundItem]: ...

    async def send_reply(
        self, target: ReplyTarget, text: str, *, idempotency_key: str, visibility: str | None = None
    ) -> ReplyReceipt: ...

    async def aclose(self) -> None: ...
