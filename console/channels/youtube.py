"""YouTube Data API v3 connector: comment threads on the channel's videos, replies, and the daily quota budget."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, NoReturn, Protocol, runtime_checkable
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import httpx

from console.channels.base import (
    AccountRef,
    Backfill,
    Batch,
    Cursor,
    Identity,
    InboundItem,
    Rejected,
    ReplyReceipt,
    ReplyTarget,
    Skips,
    read_secret,
)
from console.channels.errors import AuthExpired, Permanent, RateLimited, Transient
from console.channels.http import (
    DEFAULT_RETRY_SECONDS,
    Params,
    bearer,
    call_json,
    error_json,
    parse_iso,
    raise_for_status,
    refresh_grant,
    str_field,
)
from console.ports import Clock, SecretStore
from storage.rows import MentionKind

__all__ = [
    "DAILY_QUOTA",
    "DEFAULT_BASE_URL",
    "GOOGLE_AUTHORIZE_URL",
    "GOOGLE_TOKEN_URL",
    "SCOPES",
    "MetersQuota",
    "QuotaUsage",
    "ThreadPage",
    "YouTubeConnector",
    "next_quota_reset",
    "parse_comment",
    "parse_comments",
    "parse_threads",
    "quota_day",
]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://www.googleapis.com"
GOOGLE_AUTHORIZE_URL = "https://accounts.google.com/o/oauth2/v2/auth"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
SCOPES = ("https://www.googleapis.com/auth/youtube.force-ssl",)
#: Units per day per Cloud project; list calls cost 1, comments.insert 50 (channels.md §5 "Quota").
DAILY_QUOTA = 10_000
LIST_COST = 1
INSERT_COST = 50
#: The quota resets at midnight Pacific Time: the zone, not a fixed UTC-8 (that is an hour off in daylight time).
_PACIFIC = ZoneInfo("America/Los_Angeles")

# --------------------------------------------------------------------------------------------------------
# Pure parsing
# --------------------------------------------------------------------------------------------------------


def quota_day(epoch: float) -> str:
    """The quota day (Pacific Time date) of an instant, e.g. ``"2026-01-01"``."""
    return datetime.fromtimestamp(epoch, UTC).astimezone(_PACIFIC).date().isoformat()


def next_quota_reset(epoch: float) -> float:
    """When the quota day of ``epoch`` ends: the next midnight in America/Los_Angeles, as epoch seconds."""
    local = datetime.fromtimestamp(epoch, UTC).astimezone(_PACIFIC)
    midnight = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.timestamp()


def parse_comment(comment: object, *, video_id: str = "") -> InboundItem:
    """Turn a ``youtube#comment`` into an item; a reply's parent is its top-level comment.

    Args:
        comment: The comment JSON.
        video_id: The video, when the comment itself does not say (replies from ``comments.list``).

    Returns:
        The item.

    Raises:
        ValueError: A required field is missing.
    """
    if not isinstance(comment, dict):
        raise ValueError("comment is not an object")
    comment_id = str_field(comment, "id")
    snippet = comment.get("snippet")
    if not comment_id or not isinstance(snippet, dict):
        raise ValueError("comment has no id or snippet")
    channel = snippet.get("authorChannelId")
    author_id = str_field(channel, "value") if isinstance(channel, dict) else ""
    name = str_field(snippet, "authorDisplayName")
    if not author_id and not name:
        raise ValueError("comment has no author")
    posted_at = math.floor(parse_iso(snippet.get("publishedAt")))
    video = str_field(snippet, "videoId") or video_id
    parent = str_field(snippet, "parentId") or None
    return InboundItem(
        external_id=comment_id,
        author_id=author_id or name,
        author_handle=name.removeprefix("@") or author_id,
        author_name=name or author_id,
        text=str_field(snippet, "textOriginal") or str_field(snippet, "textDisplay"),
        url=f"https://www.youtube.com/watch?v={video}&lc={comment_id}" if video else "",
        posted_at=posted_at,
        kind=MentionKind.PUBLIC,
        visibility="public",
        parent_external_id=parent,
        raw={"id": comment_id, "videoId": video, "updatedAt": str_field(snippet, "updatedAt")},
    )


@dataclass(frozen=True, slots=True)
class Thread:
    id: str
    top: InboundItem
    video_id: str
    total_replies: int
    replies: list[InboundItem]
    can_reply: bool


@dataclass(frozen=True, slots=True)
class ThreadPage:
    threads: list[Thread] = field(default_factory=list)
    next_page_token: str | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: Each ``skipped`` entry with its raw JSON (the thread, or the reply comment), same order.
    rejected: list[Rejected] = field(default_factory=list)


def _items(payload: object) -> list[Any]:
    """The ``items`` list of a YouTube list response.

    Raises:
        ValueError: The body has no ``items`` list.
    """
    items = payload.get("items") if isinstance(payload, dict) else None
    if not isinstance(items, list):
        raise ValueError("expected {items: [...]}")
    return items


def parse_threads(payload: object) -> ThreadPage:
    """Parse ``commentThreads.list``: each thread's top-level comment, reply count and included replies.

    Raises:
        ValueError: The body has no ``items`` list.
    """
    items = _items(payload)
    threads: list[Thread] = []
    skips = Skips()
    skip = skips.skip

    for entry in items:
        if not isinstance(entry, dict) or not isinstance(entry.get("snippet"), dict):
            skip("?", "thread without snippet", entry)
            continue
        snippet = entry["snippet"]
        thread_id = str_field(entry, "id") or "?"
        video = str_field(snippet, "videoId")
        try:
            top = parse_comment(snippet.get("topLevelComment"), video_id=video)
        except ValueError as exc:
            skip(thread_id, str(exc), entry)
            continue
        replies: list[InboundItem] = []
        part = entry.get("replies")
        comments = part.get("comments") if isinstance(part, dict) else None
        for reply in comments if isinstance(comments, list) else []:
            try:
                replies.append(parse_comment(reply, video_id=video))
            except ValueError as exc:
                skip(thread_id, str(exc), reply)
        total = snippet.get("totalReplyCount")
        threads.append(
            Thread(
                id=str_field(entry, "id") or top.external_id,
                top=top,
                video_id=video,
                total_replies=total if isinstance(total, int) and not isinstance(total, bool) else len(replies),
                replies=replies,
                can_reply=snippet.get("canReply") is not False,
            )
        )
    token = str_field(payload, "nextPageToken") if isinstance(payload, dict) else ""
    return ThreadPage(threads, token or None, skips.skipped, skips.rejected)


def parse_comments(payload: object, *, video_id: str = "") -> tuple[list[InboundItem], str | None]:
    """Parse ``comments.list`` (replies of one thread): the comments and the next page token.

    Raises:
        ValueError: The body has no ``items`` list.
    """
    items = _items(payload)
    out: list[InboundItem] = []
    for entry in items:
        try:
            out.append(parse_comment(entry, video_id=video_id))
        except ValueError:
            continue
    token = str_field(payload, "nextPageToken") if isinstance(payload, dict) else ""
    return out, token or None


def _error_reason(body: object) -> tuple[str, str]:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", ""
    reasons = error.get("errors")
    reason = ""
    if isinstance(reasons, list) and reasons and isinstance(reasons[0], dict):
        reason = str_field(reasons[0], "reason")
    return reason or str_field(error, "status"), str_field(error, "message")


@dataclass(frozen=True, slots=True)
class QuotaUsage:
    """Units spent today (by this app's calls) against the daily budget."""

    day: str
    used: int
    limit: int = DAILY_QUOTA

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


@runtime_checkable
class MetersQuota(Protocol):
    """A connector whose channel counts a daily quota rather than sending rate-limit headers (YouTube)."""

    @property
    def quota(self) -> QuotaUsage: ...


# --------------------------------------------------------------------------------------------------------
# The connector
# --------------------------------------------------------------------------------------------------------


class YouTubeConnector:
    """Comments on one channel's videos and replies to them (channels.md §5).

    Secret ``youtube:<id>``: JSON ``{access_token, refresh_token, expires_at, client_id, client_secret}`` from the
    installed-app OAuth flow. ``account.handle`` is the channel id (``UC…``). The quota spent is tracked per
    Pacific day in the cursor, and a poll is skipped when the rest of the day's budget is needed for replies.
    """

    kind: ClassVar[str] = "youtube"

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        account: AccountRef,
        secrets: SecretStore,
        clock: Clock,
        token_url: str = GOOGLE_TOKEN_URL,
        page_size: int = 100,
        max_pages: int = 5,
        overlap_seconds: float = 600.0,
        reply_reserve: int = 20,
    ) -> None:
        """Wire the connector.

        Args:
            client: A long-lived client owned by the caller.
            account: ``handle`` is the channel id; ``base_url`` the API root.
            secrets: Holds the tokens JSON.
            clock: Time source.
            token_url: Google's token endpoint (loopback in tests).
            page_size: ``maxResults`` (1..100).
            max_pages: Thread pages per poll at most.
            overlap_seconds: Rescan window below the watermark.
            reply_reserve: Replies (50 units each) the daily budget keeps free: polling stops before that.
        """
        self._client = client
        self._account = account
        self._secrets = secrets
        self._clock = clock
        self._token_url = token_url
        self._page_size = max(1, min(100, page_size))
        self._max_pages = max_pages
        self._overlap = overlap_seconds
        self._reserve = reply_reserve * INSERT_COST
        self._base_url = (account.base_url or DEFAULT_BASE_URL).rstrip("/")
        self._host = urlsplit(self._base_url).netloc or self._base_url
        self._key = f"youtube:{account.id}"
        self._tokens: dict[str, Any] | None = None
        self._lock = asyncio.Lock()
        self._quota = QuotaUsage(quota_day(clock.now()), 0)

    @property
    def quota(self) -> QuotaUsage:
        """Units this app spent today, as far as it knows (Google shows the truth only in its console)."""
        today = quota_day(self._clock.now())
        if self._quota.day != today:
            self._quota = QuotaUsage(today, 0)
        return self._quota

    def _spend(self, units: int) -> None:
        usage = self.quota
        self._quota = QuotaUsage(usage.day, usage.used + units)

    # -- auth ----------------------------------------------------------------------------------------

    async def _load(self) -> dict[str, Any]:
        if self._tokens is None:
            text = await read_secret(self._secrets, self._key, unreadable="Could not read the YouTube sign-in")
            try:
                data = json.loads(text) if text else None
            except ValueError:
                data = None
            if not isinstance(data, dict) or not str_field(data, "access_token"):
                raise AuthExpired("No YouTube sign-in stored for this channel; re-authenticate the account.")
            self._tokens = data
        return self._tokens

    async def _refresh(self, stale: dict[str, Any]) -> dict[str, Any]:
        async with self._lock:
            if self._tokens is not None and self._tokens.get("access_token") != stale.get("access_token"):
                return self._tokens
            if not str_field(stale, "refresh_token"):
                raise AuthExpired("The YouTube sign-in expired; re-authenticate the account.")
            form = {
                "grant_type": "refresh_token",
                "refresh_token": str_field(stale, "refresh_token"),
                "client_id": str_field(stale, "client_id"),
            }
            if str_field(stale, "client_secret"):
                form["client_secret"] = str_field(stale, "client_secret")
            grant = await refresh_grant(
                self._client,
                self._token_url,
                host=urlsplit(self._token_url).netloc,
                what="POST token",
                form=form,
                fail=self._fail,
            )
            if grant is None:
                # invalid_grant: revoked, or a "Testing" consent screen's 7-day refresh token ran out.
                self._tokens = None  # read the store again: the agent may sign in anew
                raise AuthExpired("Google refused to renew the YouTube sign-in; re-authenticate the account.")
            tokens = dict(stale)
            tokens["access_token"] = grant.access_token
            if grant.refresh_token:
                tokens["refresh_token"] = grant.refresh_token
            tokens["expires_at"] = self._clock.now() + (3600 if grant.expires_in is None else grant.expires_in)
            try:
                await asyncio.to_thread(self._secrets.set, self._key, json.dumps(tokens))
            except Exception as exc:
                log.warning("Could not save the renewed YouTube token: %s", exc)
            self._tokens = tokens
            return tokens

    async def _call(
        self, method: str, path: str, *, params: Params | None = None, body: Any = None, cost: int = LIST_COST
    ) -> Any:
        tokens = await self._load()
        expires = tokens.get("expires_at")
        if isinstance(expires, int | float) and expires and expires - 60 <= self._clock.now():
            tokens = await self._refresh(tokens)
        return await call_json(
            self._client,
            method,
            self._base_url + path,
            host=self._host,
            what=f"{method} {path}",
            fail=self._fail,
            credential=tokens,
            authorize=lambda current: bearer(str(current["access_token"])),
            renew=self._refresh,
            params=params,
            json=body,
            on_response=lambda _: self._spend(cost),  # invalid requests cost too
        )

    def _fail(self, response: httpx.Response, what: str) -> NoReturn:
        now = self._clock.now()
        reason, message = _error_reason(error_json(response))
        text = f"{reason}: {message}" if reason and message else (reason or message or response.reason_phrase)
        if reason in ("quotaExceeded", "dailyLimitExceeded"):
            raise RateLimited(
                "The YouTube API quota for today is used up; it resets at midnight Pacific Time.",
                retry_at=next_quota_reset(now),
            )
        if reason in ("rateLimitExceeded", "userRateLimitExceeded") or response.status_code == 429:
            raise RateLimited(f"YouTube is rate limiting ({text}).", retry_at=now + DEFAULT_RETRY_SECONDS)
        if reason in ("commentsDisabled", "operationNotSupported", "parentCommentIsPrivate", "commentTextTooLong"):
            raise Permanent(f"YouTube refused {what}: {text}.", status=response.status_code)
        raise_for_status(
            response, host=self._host, what=what, reason=text[:300], retry_at=now + DEFAULT_RETRY_SECONDS, now=now
        )

    # -- Connector protocol ---------------------------------------------------------------------------

    async def verify(self) -> Identity:
        """Check the sign-in and name the channel (``channels.list?mine=true``).

        Raises:
            AuthExpired: The sign-in is not accepted, or the Google account has no channel.
            ChannelError: Any other failure.
        """
        payload = await self._call("GET", "/youtube/v3/channels", params=[("part", "snippet"), ("mine", "true")])
        items = payload.get("items") if isinstance(payload, dict) else None
        if not isinstance(items, list) or not items or not isinstance(items[0], dict):
            raise AuthExpired("This Google account has no YouTube channel.")
        channel = items[0]
        snippet = channel.get("snippet") if isinstance(channel.get("snippet"), dict) else {}
        title = str_field(snippet, "title") if isinstance(snippet, dict) else ""
        return Identity(external_id=str_field(channel, "id"), handle=str_field(channel, "id"), display_name=title)

    async def _thread_replies(self, thread: Thread) -> list[InboundItem]:
        if len(thread.replies) >= thread.total_replies:
            return thread.replies
        out: list[InboundItem] = []
        token: str | None = None
        for _ in range(10):
            params: Params = [
                ("part", "snippet"),
                ("parentId", thread.id),
                ("maxResults", 100),
                ("textFormat", "plainText"),
            ]
            if token:
                params.append(("pageToken", token))
            payload = await self._call("GET", "/youtube/v3/comments", params=params)
            try:
                page, token = parse_comments(payload, video_id=thread.video_id)
            except ValueError as exc:
                raise Transient(f"YouTube returned malformed replies: {exc}.") from exc
            out.extend(page)
            if token is None:
                break
        return out

    def backfill_cursor(self, horizon: int) -> Cursor:
        """A first sync reading comments back to ``horizon`` (epoch seconds), not only the newest page."""
        return {"backfill": int(horizon)}

    async def fetch_new(self, cursor: Cursor | None) -> Batch:
        """New comments and replies since the watermark (channels.md §5 "Cursor semantics").

        A first sync started with :meth:`backfill_cursor` pages down to its horizon (issue 20, sync 1), reading
        up to ten times ``max_pages`` (one quota unit each).

        Threads come newest first; pages are read until a top-level comment is older than
        ``watermark - overlap``. A thread whose ``totalReplyCount`` grew has its replies read (through
        ``comments.list`` when the thread lists only some). The channel's own comments are left out.

        Args:
            cursor: ``{"watermark", "floor", "reply_counts": {thread: n}, "seen": [...], "quota": {"day", "used"}}``
                or None; ``floor`` is the oldest comment of the first sync (older ones are history).

        Returns:
            Items oldest first and the new cursor (which carries the day's quota spend).

        Raises:
            RateLimited: The daily budget (minus the reply reserve) is spent, or YouTube said so.
            AuthExpired, Transient, Permanent: See :mod:`console.channels.errors`.
        """
        watermark = cursor.get("watermark") if cursor else None
        watermark = float(watermark) if isinstance(watermark, int | float) and not isinstance(watermark, bool) else None
        counts_in = cursor.get("reply_counts", {}) if cursor else {}
        counts: dict[str, int] = (
            {k: v for k, v in counts_in.items() if isinstance(v, int)} if isinstance(counts_in, dict) else {}
        )
        seen_in = cursor.get("seen", []) if cursor else []
        seen_list = [s for s in seen_in if isinstance(s, str)] if isinstance(seen_in, list) else []
        seen = set(seen_list)
        floor_in = cursor.get("floor") if cursor else None
        # The first sync reads one page on purpose; anything posted before it is history, not news.
        floor = float(floor_in) if isinstance(floor_in, int | float) and not isinstance(floor_in, bool) else None
        backfill_in = cursor.get("backfill") if cursor and watermark is None else None
        horizon = backfill_in if isinstance(backfill_in, int) and not isinstance(backfill_in, bool) else None
        max_pages = self._max_pages
        if horizon is not None:
            # The first sync reads down to the horizon: as if the watermark lay just above it.
            watermark, floor, max_pages = float(horizon) + self._overlap, float(horizon), 10 * self._max_pages
        reached = False
        quota = cursor.get("quota") if cursor else None
        if isinstance(quota, dict) and quota.get("day") == self.quota.day and isinstance(quota.get("used"), int):
            self._quota = QuotaUsage(self.quota.day, max(self._quota.used, int(quota["used"])))
        if self.quota.used + self._reserve >= self.quota.limit:
            raise RateLimited(
                f"Today's YouTube quota is kept for replies ({self.quota.used} of {self.quota.limit} units used).",
                retry_at=next_quota_reset(self._clock.now()),
            )
        own = self._account.handle
        found: dict[str, InboundItem] = {}
        rejected: list[Rejected] = []
        newest = watermark
        token: str | None = None
        for _ in range(max_pages):
            params: Params = [
                ("part", "snippet,replies"),
                ("allThreadsRelatedToChannelId", own),
                ("order", "time"),
                ("maxResults", self._page_size),
                ("textFormat", "plainText"),
            ]
            if token:
                params.append(("pageToken", token))
            payload = await self._call("GET", "/youtube/v3/commentThreads", params=params)
            try:
                page = parse_threads(payload)
            except ValueError as exc:
                raise Transient(f"YouTube returned malformed comment threads: {exc}.") from exc
            rejected.extend(page.rejected)
            if page.skipped:
                log.warning("Skipped %d malformed YouTube comments: %s", len(page.skipped), page.skipped)
            oldest: float | None = None
            for thread in page.threads:
                top = thread.top
                oldest = top.posted_at if oldest is None else min(oldest, top.posted_at)
                newest = top.posted_at if newest is None else max(newest, top.posted_at)
                recent = (watermark is None or top.posted_at >= watermark - self._overlap) and (
                    floor is None or top.posted_at >= floor
                )
                if recent and top.external_id not in seen and top.author_id != own:
                    found.setdefault(top.external_id, top)
                if thread.total_replies > counts.get(thread.id, 0):
                    for reply in await self._thread_replies(thread):
                        fresh = floor is None or reply.posted_at >= floor
                        if fresh and reply.external_id not in seen and reply.author_id != own:
                            found.setdefault(reply.external_id, reply)
                        newest = reply.posted_at if newest is None else max(newest, reply.posted_at)
                counts[thread.id] = thread.total_replies
            token = page.next_page_token
            reached = reached or (horizon is not None and oldest is not None and oldest < horizon)
            if watermark is None or token is None or (oldest is not None and oldest < watermark - self._overlap):
                break
        items = sorted(found.values(), key=lambda item: (item.posted_at, item.external_id))
        next_seen = ([item.external_id for item in reversed(items)] + [s for s in seen_list if s not in found])[:500]
        if len(counts) > 2000:  # keep the most recent threads only
            counts = dict(list(counts.items())[-2000:])
        if floor is None and watermark is None:
            floor = min((item.posted_at for item in items), default=newest)
        next_cursor: Cursor = {
            "watermark": newest,
            "floor": floor,
            "reply_counts": counts,
            "seen": next_seen,
            "quota": {"day": self.quota.day, "used": self.quota.used},
        }
        backfill = None
        if horizon is not None:
            if not reached and token is not None:
                log.warning("YouTube first sync stopped after %d pages before reaching its horizon", max_pages)
            oldest_item = min((item.posted_at for item in items), default=None)
            backfill = Backfill(horizon=horizon, oldest=oldest_item, done=True, reached_horizon=reached)
        # No rate-limit headers (channels.md §5): the budget is the daily quota, kept by the connector itself.
        return Batch(items=items, next_cursor=next_cursor, backfill=backfill, rejected=tuple(rejected))

    async def fetch_thread(self, external_id: str) -> list[InboundItem]:
        """The top-level comment and its replies (``comments.list``; 1-2 units).

        Raises:
            ChannelError: The call failed.
        """
        top_id = external_id.split(".", 1)[0]
        payload = await self._call("GET", "/youtube/v3/comments", params=[("part", "snippet"), ("id", top_id)])
        try:
            heads, _ = parse_comments(payload)
        except ValueError as exc:
            raise Transient(f"YouTube returned a malformed comment: {exc}.") from exc
        if not heads:
            raise Permanent("The comment was deleted or held for review.", status=404)
        replies = await self._thread_replies(Thread(top_id, heads[0], heads[0].raw.get("videoId", ""), 1, [], True))
        return [heads[0], *sorted(replies, key=lambda item: item.posted_at)]

    async def send_reply(
        self, target: ReplyTarget, text: str, *, idempotency_key: str, visibility: str | None = None
    ) -> ReplyReceipt:
        """Reply under the top-level comment (``comments.insert`` with ``snippet.parentId``; 50 units).

        YouTube threads are one level deep: an answer to a reply goes under its top-level comment.

        Raises:
            RateLimited: Today's quota is spent.
            Permanent: Comments are disabled, the thread cannot be replied to, or the text is too long.
            ChannelError: Any other failure.
        """
        del idempotency_key, visibility
        if not text.strip():
            raise Permanent("The reply is empty.")
        if self.quota.used + INSERT_COST > self.quota.limit:
            raise RateLimited(
                "The YouTube quota for today cannot pay for another reply (50 units).",
                retry_at=next_quota_reset(self._clock.now()),
            )
        parent = target.external_id.split(".", 1)[0]
        payload = await self._call(
            "POST",
            "/youtube/v3/comments",
            params=[("part", "snippet")],
            body={"snippet": {"parentId": parent, "textOriginal": text}},
            cost=INSERT_COST,
        )
        try:
            item = parse_comment(payload)
        except ValueError as exc:
            raise Transient(f"YouTube returned a malformed comment after the reply: {exc}.") from exc
        return ReplyReceipt(external_id=item.external_id, url=item.url, posted_at=item.posted_at)

    async def aclose(self) -> None:
        """Forget cached tokens (the client belongs to the caller)."""
        self._tokens = None
