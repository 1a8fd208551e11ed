"""Discourse connector: the brand user's notifications (mentions, replies, watched categories, PMs) and replies."""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar, NoReturn
from urllib.parse import quote, urlsplit

import httpx

from console.channels.base import (
    AccountRef,
    Backfill,
    Batch,
    Cursor,
    Identity,
    InboundItem,
    OwnPost,
    OwnPostsBatch,
    Rejected,
    ReplyReceipt,
    ReplyTarget,
    read_secret,
)
from console.channels.errors import AuthExpired, Permanent, Transient
from console.channels.http import (
    DEFAULT_RETRY_SECONDS,
    Params,
    call_json,
    error_json,
    parse_iso,
    parse_retry_after,
    raise_for_status,
    str_field,
)
from console.channels.mastodon import html_to_text
from console.ports import Clock, SecretStore
from storage.rows import MentionKind

__all__ = [
    "MESSAGE_TYPES",
    "PRIVATE_TYPES",
    "DiscourseConnector",
    "NotificationRef",
    "parse_notifications",
    "parse_post",
    "parse_topic_posts",
    "post_key",
    "split_post_key",
]

log = logging.getLogger(__name__)

#: notification_type values that carry a customer's post (channels.md §4 "List (brand as user)"):
#: mentioned, replied, quoted, private_message, invited_to_private_message, posted (watched topic),
#: group_mentioned, watching_first_post (a watched category).
MESSAGE_TYPES = frozenset({1, 2, 3, 6, 7, 9, 15, 17})
PRIVATE_TYPES = frozenset({6, 7})
#: ``user_actions`` filter of the replies a user posted (Discourse's UserAction::REPLY).
REPLY_ACTION = 5
#: A first read of the user's own replies goes back at most this many pages (30 entries each).
OWN_POSTS_FIRST_PAGES = 3
#: The own-posts cursor is a time (the list pages by offset, newest first): replies created this long before
#: the newest one read are read again, so none is lost to a late write. Storing is idempotent.
OWN_POSTS_OVERLAP = 300
#: Staff-only whispers must never be answered in public (channels.md §4 pitfalls).
WHISPER = 4
PAGE_LIMIT = 60  # Discourse's maximum

# --------------------------------------------------------------------------------------------------------
# Pure parsing
# --------------------------------------------------------------------------------------------------------


def post_key(topic_id: int, post_number: int) -> str:
    """A post's external id: ``"<topic_id>#<post_number>"`` (stable, and all a reply needs)."""
    return f"{topic_id}#{post_number}"


def split_post_key(key: str) -> tuple[int, int]:
    """Inverse of :func:`post_key`.

    Raises:
        ValueError: ``key`` is not ``"<int>#<int>"``.
    """
    topic, sep, number = key.partition("#")
    if not sep or not topic.isdigit() or not number.isdigit():
        raise ValueError(f"not a Discourse post key: {key!r}")
    return int(topic), int(number)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class NotificationRef:
    """A notification that points at a customer's post, before the post is fetched."""

    id: int
    notification_type: int
    topic_id: int
    post_number: int
    post_id: int | None  # ``data.original_post_id`` when present
    private: bool
    created_at: float | None = None  # the notification's time (epoch seconds), when readable


@dataclass(frozen=True, slots=True)
class NotificationPage:
    refs: list[NotificationRef] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)  # every notification id on the page
    size: int = 0
    oldest_at: float | None = None  # the oldest readable ``created_at`` on the page, any type


def parse_notifications(payload: object) -> NotificationPage:
    """Parse ``GET /notifications.json``; keep the types that carry a customer's post.

    Args:
        payload: ``{"notifications": [...], ...}``.

    Returns:
        The refs (page order, newest first) and every id seen (for the cursor).

    Raises:
        ValueError: There is no notifications list.
    """
    entries = payload.get("notifications") if isinstance(payload, dict) else None
    if not isinstance(entries, list):
        raise ValueError("expected {notifications: [...]}")
    refs: list[NotificationRef] = []
    ids: list[int] = []
    oldest_at: float | None = None
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        nid = _int(entry.get("id"))
        if nid is None:
            continue
        ids.append(nid)
        try:
            created_at: float | None = parse_iso(entry.get("created_at"))
        except ValueError:
            created_at = None
        if created_at is not None:
            oldest_at = created_at if oldest_at is None else min(oldest_at, created_at)
        kind = _int(entry.get("notification_type"))
        topic, number = _int(entry.get("topic_id")), _int(entry.get("post_number"))
        if kind not in MESSAGE_TYPES or topic is None or number is None:
            continue
        data = entry.get("data")
        post_id = _int(data.get("original_post_id")) if isinstance(data, dict) else None
        refs.append(NotificationRef(nid, kind, topic, number, post_id, kind in PRIVATE_TYPES, created_at))
    return NotificationPage(refs, ids, len(entries), oldest_at)


def parse_post(post: object, *, base_url: str, private: bool = False) -> InboundItem:
    """Turn a Discourse post (``GET /posts/{id}.json`` or a topic's ``post_stream`` entry) into an item.

    ``parent_external_id`` is the post it answers (``reply_to_post_number``), or the topic's first post
    for any later post, so a conversation in one topic stays one thread.

    Args:
        post: The post JSON.
        base_url: The forum, for the permalink.
        private: The post is in a private message (a DM).

    Returns:
        The item; text is ``raw`` (markdown) when present, else the text of ``cooked``.

    Raises:
        ValueError: A required field is missing.
    """
    if not isinstance(post, dict):
        raise ValueError("post is not an object")
    topic, number = _int(post.get("topic_id")), _int(post.get("post_number"))
    username = str_field(post, "username")
    if topic is None or number is None or not username:
        raise ValueError("post has no topic_id, post_number or username")
    created = post.get("created_at")
    posted_at = math.floor(parse_iso(created))
    raw = str_field(post, "raw")
    text = raw.strip() if raw.strip() else html_to_text(str_field(post, "cooked"))
    reply_to = _int(post.get("reply_to_post_number"))
    parent = post_key(topic, reply_to) if reply_to else (post_key(topic, 1) if number > 1 else None)
    path = str_field(post, "post_url") or (f"/t/{str_field(post, 'topic_slug') or '-'}/{topic}/{number}")
    author_id = _int(post.get("user_id"))
    return InboundItem(
        external_id=post_key(topic, number),
        author_id=str(author_id) if author_id is not None else username,
        author_handle=username,
        author_name=str_field(post, "name") or str_field(post, "display_username") or username,
        text=text,
        url=base_url.rstrip("/") + path if path.startswith("/") else path,
        posted_at=posted_at,
        kind=MentionKind.DIRECT if private else MentionKind.PUBLIC,
        visibility="private_message" if private else "public",
        parent_external_id=parent,
        raw={
            key: post.get(key)
            for key in ("id", "topic_id", "post_number", "post_type", "version", "updated_at", "deleted_at")
        },
    )


def parse_user_actions(payload: object, *, base_url: str) -> tuple[list[OwnPost], list[int]]:
    """Parse ``GET /user_actions.json?filter=5`` (the user's replies, newest first).

    A reply without ``reply_to_post_number`` answers the topic, i.e. its first post (as :func:`parse_post`
    threads it). The text is the list's excerpt (the list carries no full post).

    Returns:
        The replies, newest first, and the creation time of every readable entry.

    Raises:
        ValueError: ``payload`` has no ``user_actions`` list.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("user_actions"), list):
        raise ValueError("expected an object with a user_actions list")
    replies: list[OwnPost] = []
    times: list[int] = []
    for entry in payload["user_actions"]:
        if not isinstance(entry, dict):
            continue
        topic, number = _int(entry.get("topic_id")), _int(entry.get("post_number"))
        try:
            posted_at = math.floor(parse_iso(entry.get("created_at")))
        except ValueError:
            log.warning("Skipped a Discourse user action without a readable time: %s", entry.get("post_id"))
            continue
        times.append(posted_at)
        if topic is None or number is None or number < 2 or entry.get("action_type", REPLY_ACTION) != REPLY_ACTION:
            continue
        reply_to = _int(entry.get("reply_to_post_number"))
        slug = str_field(entry, "slug") or "-"
        replies.append(
            OwnPost(
                external_id=post_key(topic, number),
                parent_external_id=post_key(topic, reply_to or 1),
                text=html_to_text(str_field(entry, "excerpt")),
                url=f"{base_url.rstrip('/')}/t/{slug}/{topic}/{number}",
                posted_at=posted_at,
                visibility="public",
            )
        )
    return replies, times


def parse_topic_posts(payload: object, *, base_url: str) -> list[InboundItem]:
    """The posts of ``GET /t/{id}.json`` (``post_stream.posts``), skipping whispers and malformed ones.

    Raises:
        ValueError: There is no post stream.
    """
    stream = payload.get("post_stream") if isinstance(payload, dict) else None
    posts = stream.get("posts") if isinstance(stream, dict) else None
    if not isinstance(posts, list):
        raise ValueError("expected post_stream.posts")
    private = isinstance(payload, dict) and payload.get("archetype") == "private_message"
    items = []
    for post in posts:
        if isinstance(post, dict) and post.get("post_type") == WHISPER:
            continue
        try:
            items.append(parse_post(post, base_url=base_url, private=private))
        except ValueError:
            continue
    return items


def _errors(body: object) -> str:
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            return "; ".join(str(e) for e in errors)[:300]
        for key in ("error", "message"):
            if isinstance(body.get(key), str):
                return str(body[key])[:300]
    return ""


# --------------------------------------------------------------------------------------------------------
# The connector
# --------------------------------------------------------------------------------------------------------


class DiscourseConnector:
    """The brand user's notifications on one forum, and replies in the topic (channels.md §4).

    Secret ``discourse:<id>``: an admin API key (sent with ``Api-Username: <handle>``), or the JSON
    ``{"user_api_key": "...", "client_id": "..."}`` of a User API key.
    """

    kind: ClassVar[str] = "discourse"

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        account: AccountRef,
        secrets: SecretStore,
        clock: Clock,
        max_pages: int = 10,
        page_limit: int = PAGE_LIMIT,
        max_posts: int = 15,
    ) -> None:
        """Wire the connector; nothing is read or sent until the first call.

        Args:
            client: A long-lived client owned by the caller.
            account: ``handle`` is the brand's username; ``base_url`` the forum.
            secrets: Where the API key lives.
            clock: Time source.
            max_pages: Notification pages per :meth:`fetch_new` at most.
            page_limit: Notifications per page (≤ 60).
            max_posts: Posts fetched per poll at most (User API keys allow 20 requests a minute); the
                cursor then stops at the last one fetched and the rest follow on the next poll.
        """
        self._client = client
        self._account = account
        self._secrets = secrets
        self._clock = clock
        self._max_pages = max_pages
        self._page_limit = page_limit
        self._max_posts = max_posts
        self._base_url = account.base_url.rstrip("/")
        self._host = urlsplit(self._base_url).netloc or self._base_url
        self._headers: dict[str, str] | None = None

    async def _auth_headers(self) -> dict[str, str]:
        if self._headers is None:
            secret = await read_secret(
                self._secrets,
                f"discourse:{self._account.id}",
                unreadable=f"Could not read the API key for {self._host}",
            )
            if not secret:
                raise AuthExpired(f"No API key stored for {self._account.handle} on {self._host}; add it again.")
            self._headers = _headers_for(secret, self._account.handle)
        return self._headers

    async def _call(
        self, method: str, path: str, *, params: Params | None = None, body: Any = None, auth_403: bool = False
    ) -> Any:
        return await call_json(
            self._client,
            method,
            self._base_url + path,
            host=self._host,
            what=f"{method} {path}",
            fail=lambda response, what: self._fail(response, what, auth_403=auth_403),
            credential=await self._auth_headers(),
            authorize=lambda headers: {"Accept": "application/json", **headers},
            params=params,
            json=body,
        )

    def _fail(self, response: httpx.Response, what: str, *, auth_403: bool) -> NoReturn:
        now = self._clock.now()
        body = error_json(response)
        retry_at = parse_retry_after(response.headers.get("Retry-After"), now=now)
        extras = body.get("extras") if isinstance(body, dict) else None
        if retry_at is None and isinstance(extras, dict) and isinstance(extras.get("wait_seconds"), int | float):
            retry_at = now + float(extras["wait_seconds"])
        if retry_at is None:
            retry_at = now + DEFAULT_RETRY_SECONDS
        invalid_key = isinstance(body, dict) and body.get("error_type") == "invalid_access"
        if response.status_code == 403 and (auth_403 or invalid_key):
            self._headers = None
        reason = _errors(body) or response.reason_phrase
        raise_for_status(
            response,
            host=self._host,
            what=what,
            reason=reason,
            retry_at=retry_at,
            now=now,
            auth_statuses=(401, 403) if auth_403 or invalid_key else (401,),
        )

    # -- Connector protocol ---------------------------------------------------------------------------

    async def verify(self) -> Identity:
        """Check the key (``GET /session/current.json``).

        Returns:
            The user's id, username and name.

        Raises:
            AuthExpired: The key was refused.
            ChannelError: Any other failure.
        """
        payload = await self._call("GET", "/session/current.json", auth_403=True)
        user = payload.get("current_user") if isinstance(payload, dict) else None
        if not isinstance(user, dict) or not str_field(user, "username"):
            raise AuthExpired(f"{self._host} did not recognise the API key (no current user).")
        return Identity(
            external_id=str(user.get("id", "")),
            handle=str_field(user, "username"),
            display_name=str_field(user, "name") or str_field(user, "username"),
        )

    async def _post(self, ref: NotificationRef) -> dict[str, Any] | None:
        if ref.post_id is not None:
            path = f"/posts/{ref.post_id}.json"
        else:
            path = f"/posts/by_number/{ref.topic_id}/{ref.post_number}.json"
        try:
            post = await self._call("GET", path)
        except Permanent as exc:
            if exc.status in (403, 404):  # deleted, or moved to a topic we cannot see
                log.info("Discourse post for notification %s is gone: %s", ref.id, exc)
                return None
            raise
        return post if isinstance(post, dict) else None

    async def fetch_own_posts(self, cursor: Cursor | None, *, since: int | None) -> OwnPostsBatch:
        """The account's own replies on the forum, posted from anywhere (``GET /user_actions.json`` with
        ``filter=5``): one request per call once there is a cursor.

        The list pages by offset, newest first, so the cursor is ``{"since": newest creation time read}`` and
        each read takes the newest page and keeps what was created since then (less ``OWN_POSTS_OVERLAP``). A
        first read goes back to ``since`` in at most ``OWN_POSTS_FIRST_PAGES`` pages.

        Raises:
            ChannelError: The list could not be read.
        """
        read_since = cursor.get("since") if cursor else None
        floor: int | None
        if isinstance(read_since, int) and not isinstance(read_since, bool):
            floor = read_since - OWN_POSTS_OVERLAP
        else:
            read_since, floor = None, since
        pages = 1 if read_since is not None else OWN_POSTS_FIRST_PAGES
        collected: list[OwnPost] = []
        newest = read_since
        offset = 0
        more = False
        for _page in range(pages):
            params: Params = [("username", self._account.handle), ("filter", REPLY_ACTION), ("offset", offset)]
            payload = await self._call("GET", "/user_actions.json", params=params)
            try:
                replies, times = parse_user_actions(payload, base_url=self._base_url)
            except ValueError as exc:
                raise Transient(f"{self._host} returned malformed data for GET /user_actions.json: {exc}.") from exc
            if times:
                newest = max(newest or 0, *times)
            collected += [post for post in replies if floor is None or post.posted_at >= floor]
            more = bool(times) and floor is not None and all(t >= floor for t in times)
            if not more:
                break
            offset += len(payload["user_actions"])
        collected.sort(key=lambda post: (post.posted_at, post.external_id))
        return OwnPostsBatch(collected, {"since": newest if newest is not None else (since or 0)}, has_more=more)

    def backfill_cursor(self, horizon: int) -> Cursor:
        """A first sync reading notifications back to ``horizon`` (epoch seconds), not only the newest page."""
        return {"backfill": int(horizon)}

    async def fetch_new(self, cursor: Cursor | None) -> Batch:
        """Fetch posts behind notifications newer than the cursor.

        A first sync started with :meth:`backfill_cursor` pages down to its horizon (issue 20, sync 1); its posts
        are fetched ``max_posts`` a poll, oldest first, as for any backlog.

        Notifications are offset-paged newest first, and ids are monotonic, so pages are read until one
        reaches an id at or below ``max_id`` (duplicates from shifting offsets are dropped by id). With no
        cursor only the newest page is read. Each post is then fetched (``/posts/{id}.json``).

        Args:
            cursor: ``{"max_id": <notification id>}`` or None.

        Returns:
            Posts oldest first (whispers, deleted posts and the brand's own posts left out) and the new cursor.

        Raises:
            AuthExpired, RateLimited, Transient, Permanent: See :mod:`console.channels.errors`.
        """
        start = cursor.get("max_id") if cursor else None
        max_id = start if isinstance(start, int) and not isinstance(start, bool) else None
        backfill_in = cursor.get("backfill") if cursor and max_id is None else None
        horizon = backfill_in if isinstance(backfill_in, int) and not isinstance(backfill_in, bool) else None
        refs: dict[int, NotificationRef] = {}
        ids: list[int] = []
        offset = 0
        reached = ended = False
        for _ in range(self._max_pages * (10 if horizon is not None else 1)):
            params: Params = [("limit", self._page_limit), ("offset", offset)]
            payload = await self._call("GET", "/notifications.json", params=params, auth_403=True)
            try:
                page = parse_notifications(payload)
            except ValueError as exc:
                raise Transient(f"{self._host} returned malformed notifications: {exc}.") from exc
            ids.extend(page.ids)
            for ref in page.refs:
                if horizon is not None and ref.created_at is not None and ref.created_at < horizon:
                    continue
                if max_id is None or ref.id > max_id:
                    refs.setdefault(ref.id, ref)
            offset += page.size
            ended = page.size < self._page_limit or not page.ids
            if horizon is not None:
                reached = page.oldest_at is not None and page.oldest_at < horizon
                if reached or ended:
                    break
                continue
            if max_id is None or ended or min(page.ids) <= max_id:
                break
        items: list[tuple[int, InboundItem]] = []
        rejected: list[Rejected] = []
        seen: set[str] = set()
        ordered = sorted(refs.values(), key=lambda r: r.id)
        stopped_at: int | None = None
        for index, ref in enumerate(ordered):
            if index >= self._max_posts:
                stopped_at = ordered[index - 1].id  # resume after the last post fetched
                break
            post = await self._post(ref)
            if post is None or post.get("post_type") == WHISPER or post.get("deleted_at"):
                continue
            if str_field(post, "username").lower() == self._account.handle.lower():
                continue
            try:
                item = parse_post(post, base_url=self._base_url, private=ref.private)
            except ValueError as exc:
                log.warning("Skipped a malformed Discourse post (notification %s): %s", ref.id, exc)
                rejected.append(Rejected(post_key(ref.topic_id, ref.post_number), str(exc), post))
                continue
            if item.external_id not in seen:
                seen.add(item.external_id)
                items.append((ref.id, item))
        newest = max([*ids, *([max_id] if max_id is not None else [])], default=None)
        if stopped_at is not None:
            newest = stopped_at
        next_cursor: Cursor | None = {"max_id": newest} if newest is not None and newest != max_id else None
        backfill = None
        if horizon is not None:
            oldest = min((item.posted_at for _, item in items), default=None)
            backfill = Backfill(horizon=horizon, oldest=oldest, done=True, reached_horizon=reached)
        # Discourse sends no budget headers on success (channels.md §4): its rate limit is a 429 with Retry-After.
        return Batch(
            items=[item for _, item in items], next_cursor=next_cursor, backfill=backfill, rejected=tuple(rejected)
        )

    async def fetch_thread(self, external_id: str) -> list[InboundItem]:
        """The posts of the item's topic (``GET /t/{topic_id}.json``).

        Raises:
            Permanent: The key is not a post key, or the topic is gone.
            ChannelError: Any other failure.
        """
        try:
            topic, _ = split_post_key(external_id)
        except ValueError as exc:
            raise Permanent(str(exc)) from exc
        payload = await self._call("GET", f"/t/{topic}.json")
        try:
            return parse_topic_posts(payload, base_url=self._base_url)
        except ValueError as exc:
            raise Transient(f"{self._host} returned a malformed topic: {exc}.") from exc

    async def send_reply(
        self, target: ReplyTarget, text: str, *, idempotency_key: str, visibility: str | None = None
    ) -> ReplyReceipt:
        """Reply in the topic (``POST /posts.json`` with ``topic_id`` and ``reply_to_post_number``).

        A reply to a private message is a post in that PM topic, so it stays private. A post held for
        moderator approval has no id yet: the receipt's id is ``"pending:<id>"`` and its URL is empty.

        Args:
            target: The post answered (``"<topic_id>#<post_number>"``).
            text: Markdown.
            idempotency_key: Unused (Discourse has no idempotency key; the outbox guards retries).
            visibility: Ignored (the topic decides who can read the reply).

        Returns:
            The new post's key, URL and time.

        Raises:
            Permanent: 422 (too short, duplicate, …), 403, or 404 (topic deleted or closed).
            ChannelError: Any other failure.
        """
        del idempotency_key, visibility
        try:
            topic, number = split_post_key(target.external_id)
        except ValueError as exc:
            raise Permanent(str(exc)) from exc
        payload = await self._call(
            "POST", "/posts.json", body={"topic_id": topic, "raw": text, "reply_to_post_number": number}
        )
        now = math.floor(self._clock.now())
        if not isinstance(payload, dict):
            raise Transient(f"{self._host} returned malformed data for POST /posts.json.")
        if _int(payload.get("topic_id")) is None and isinstance(payload.get("pending_post"), dict):
            pending = payload["pending_post"].get("id")
            return ReplyReceipt(external_id=f"pending:{pending}", url="", posted_at=now)
        try:
            item = parse_post(payload, base_url=self._base_url)
        except ValueError as exc:
            raise Transient(f"{self._host} returned malformed data for POST /posts.json: {exc}.") from exc
        return ReplyReceipt(external_id=item.external_id, url=item.url, posted_at=item.posted_at)

    async def aclose(self) -> None:
        """Forget the cached key (the client belongs to the caller)."""
        self._headers = None


def _headers_for(secret: str, username: str) -> dict[str, str]:
    text = secret.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("user_api_key"), str):
            headers = {"User-Api-Key": data["user_api_key"]}
            if isinstance(data.get("client_id"), str):
                headers["User-Api-Client-Id"] = data["client_id"]
            return headers
    return {"Api-Key": text, "Api-Username": quote(username, safe="")}
