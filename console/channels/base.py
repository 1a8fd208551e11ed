"""What every connector speaks: inbound items, batches with opaque cursors, receipts, the protocol.

A fetch says everything sync needs in the :class:`Batch` it returns (issue 21 item 1): the items, the cursor,
the channel's request budget (:class:`RateLimitInfo`), the entries it could not read (:class:`Rejected`, for
the quarantine), whether more pages are waiting, and an error met after some pages were read. Sync never asks
the connector object anything else.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

from console.channels.errors import AuthExpired, ChannelError
from console.ports import SecretStore
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
class RateLimitInfo:
    """A channel's request budget from its latest response's rate-limit headers (channels.md "Headers")."""

    limit: int
    remaining: int
    reset_at: float | None  # epoch seconds; None if the reset header was missing or unreadable

    @property
    def should_throttle(self) -> bool:
        """True when at most 10 % of the budget is left (channels.md §0 "Rate limits")."""
        return self.remaining <= self.limit // 10


@dataclass(frozen=True, slots=True)
class Rejected:
    """An entry of a fetched page that could not be read: kept aside for the quarantine, never failing the page."""

    external_id: str  # the channel's id of the entry, or "?" when it has none
    reason: str  # why it could not be read (the parse error)
    raw: object = None  # the entry's JSON exactly as received


@dataclass(slots=True)
class Skips:
    """What a page parser leaves out: ``skipped`` as ``(external id or "?", reason)`` for the log, and the same
    entries in ``rejected`` with their raw JSON for the quarantine, in the same order."""

    skipped: list[tuple[str, str]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)

    def skip(self, external_id: str, reason: str, raw: object) -> None:
        """Leave out one entry: logged with ``reason``, quarantined with ``raw``."""
        self.skipped.append((external_id, reason))
        self.rejected.append(Rejected(external_id, reason, raw))


@dataclass(frozen=True, slots=True)
class Batch:
    """What one fetch returns; every field is filled by every connector that has something to say in it."""

    items: list[InboundItem]  # oldest first
    next_cursor: Cursor | None  # None: nothing new, keep the old cursor
    #: Set while, and when, a first sync reads back to its horizon (connectors that can, see :class:`Backfills`).
    backfill: Backfill | None = None
    #: The request budget after this fetch (None: the channel sent no rate-limit headers). A reading of the
    #: moment, not content: two batches with the same items and cursor are equal whatever the budget.
    rate_limit: RateLimitInfo | None = field(default=None, compare=False)
    #: Malformed entries left out of ``items``, raw, with the reason (the poller quarantines them).
    rejected: tuple[Rejected, ...] = ()
    #: The fetch stopped at its page limit with more waiting: the poller asks again at once.
    has_more: bool = False
    #: Some pages were read (they are in ``items`` and the cursor), then this error stopped the fetch.
    partial_error: ChannelError | None = None


async def read_secret(secrets: SecretStore, key: str, *, unreadable: str) -> str | None:
    """``secrets.get(key)`` off the event loop (a keyring backend can block on an unlock prompt, STYLE B2).

    Raises:
        AuthExpired: The store could not be read: ``unreadable``, a colon, and the store's error.
    """
    try:
        return await asyncio.to_thread(secrets.get, key)
    except Exception as exc:
        raise AuthExpired(f"{unreadable}: {exc}") from exc


async def carrying_budget(fetch: Awaitable[Batch], budget: Callable[[], RateLimitInfo | None]) -> Batch:
    """Await a connector's fetch so that what it returns and what it raises carry the request budget the
    channel's last answer left (``budget()``, read once the fetch is over): ``Batch.rate_limit``, or
    ``ChannelError.rate_limit`` on a failure.

    Raises:
        ChannelError: What the fetch raised, with its ``rate_limit`` set.
    """
    try:
        batch = await fetch
    except ChannelError as exc:
        exc.rate_limit = budget()
        raise
    return dataclasses.replace(batch, rate_limit=budget())


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


@dataclass(frozen=True, slots=True)
class OwnPost:
    """One of the brand account's own posts that answers something: a reply posted from anywhere (another
    install, a colleague, the channel's own app), found on the channel (issue #22 item 5)."""

    external_id: str
    parent_external_id: str  # the post it answers
    text: str  # plain text
    url: str
    posted_at: int  # UTC epoch seconds
    visibility: str
    client: str = ""  # the app that posted it, when the channel says ("Mastodon for iOS"); "" when unknown


@dataclass(frozen=True, slots=True)
class OwnPostsBatch:
    """What one read of the account's own posts returns."""

    posts: list[OwnPost]  # oldest first; replies only
    next_cursor: Cursor | None  # None: nothing new, keep the old cursor
    #: A full page came back: more may be waiting (the next poll reads on; one request per poll).
    has_more: bool = False


@runtime_checkable
class SeesOwnPosts(Protocol):
    """A connector that can list the brand account's own recent replies, cheaply: one request per poll.

    Mastodon (``GET /api/v1/accounts/:id/statuses``), Bluesky (``app.bsky.feed.getAuthorFeed`` with
    ``posts_with_replies``) and Discourse (the user's posts) implement it; the others have no such list yet.
    """

    async def fetch_own_posts(self, cursor: Cursor | None, *, since: int | None) -> OwnPostsBatch:
        """The account's own replies newer than ``cursor``.

        Args:
            cursor: Where the previous read stopped; None on the first read.
            since: On the first read, how far back to look (epoch seconds: the oldest open item), read in a
                few pages at most; None reads the newest page only. Ignored once there is a cursor.

        Raises:
            ChannelError: The list could not be read.
        """
        ...


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
