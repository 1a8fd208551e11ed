"""What every connector speaks: inbound items, batches with opaque cursors, receipts, the protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

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
class Batch:
    items: list[InboundItem]  # oldest first
    next_cursor: Cursor | None  # None: nothing new, keep the old cursor


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


class Connector(Protocol):
    kind: ClassVar[str]

    async def verify(self) -> Identity: ...

    async def fetch_new(self, cursor: Cursor | None) -> Batch: ...

    async def fetch_thread(self, external_id: str) -> list[InboundItem]: ...

    async def send_reply(
        self, target: ReplyTarget, text: str, *, idempotency_key: str, visibility: str | None = None
    ) -> ReplyReceipt: ...

    async def aclose(self) -> None: ...
