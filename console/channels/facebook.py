"""Facebook Page connector (Graph API): comments on the page's posts and Messenger conversations, and replies."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
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
    RateLimitInfo,
    Rejected,
    ReplyReceipt,
    ReplyTarget,
    carrying_budget,
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
    sent_at_most_once,
    str_field,
)
from console.ports import Clock, SecretStore
from storage.rows import MentionKind

__all__ = [
    "DEFAULT_BASE_URL",
    "MESSAGING_WINDOW",
    "FacebookConnector",
    "MessagingWindow",
    "messaging_window",
    "parse_comments",
    "parse_conversation",
]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://graph.facebook.com/v25.0"
#: Messenger allows a normal reply only within 24 h of the customer's last message (channels.md §6 "Send DM").
MESSAGING_WINDOW = 24 * 3600
MESSENGER = "messenger"
_THROTTLE_CODES = frozenset({4, 17, 32, 613, 80001})
_COMMENT_FIELDS = "id,message,from{id,name},created_time,parent{id},permalink_url"
_MESSAGE_FIELDS = "messages.limit(20){id,message,from,created_time}"

# --------------------------------------------------------------------------------------------------------
# Pure parsing
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessagingWindow:
    """Whether a Messenger reply may still be sent normally, and until when."""

    open: bool
    closes_at: int
    seconds_left: int


def messaging_window(last_customer_message_at: int, now: float) -> MessagingWindow:
    """The 24-hour Messenger window after the customer's last message.

    Args:
        last_customer_message_at: Epoch seconds of the customer's newest message.
        now: The current time.

    Returns:
        The window; after it closes only a ``HUMAN_AGENT`` tagged message (needs approval) can be sent.
    """
    closes = last_customer_message_at + MESSAGING_WINDOW
    left = math.floor(closes - now)
    return MessagingWindow(open=left > 0, closes_at=closes, seconds_left=max(0, left))


def _time(value: object) -> int:
    return math.floor(parse_iso(value))


def parse_comments(
    payload: object, *, post_id: str, rejected: list[Rejected] | None = None
) -> tuple[list[InboundItem], str | None]:
    """Parse ``GET /{post-id}/comments``: the comments and the ``paging.next`` URL.

    Args:
        payload: ``{"data": [...], "paging": {...}}``.
        post_id: The post the comments belong to.
        rejected: Malformed comments (no id, no readable time) are added here, raw, for the quarantine.

    Returns:
        Items (page order) and the next page URL. A reply's parent is its top-level comment; a top-level
        comment has none (it is a new conversation).

    Raises:
        ValueError: There is no ``data`` list.
    """
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list):
        raise ValueError("expected {data: [...]}")
    items: list[InboundItem] = []
    for entry in data:
        if not isinstance(entry, dict) or not str_field(entry, "id"):
            if rejected is not None:
                rejected.append(Rejected("?", "comment without id", entry))
            continue
        author = entry.get("from")
        if not isinstance(author, dict) or not str_field(author, "id"):
            continue  # "from" is omitted without the right Page token permissions
        try:
            posted = _time(entry.get("created_time"))
        except ValueError as exc:
            if rejected is not None:
                rejected.append(Rejected(str_field(entry, "id"), str(exc), entry))
            continue
        parent = entry.get("parent")
        name = str_field(author, "name") or str_field(author, "id")
        items.append(
            InboundItem(
                external_id=str_field(entry, "id"),
                author_id=str_field(author, "id"),
                author_handle=name,
                author_name=name,
                text=str_field(entry, "message"),
                url=str_field(entry, "permalink_url"),
                posted_at=posted,
                kind=MentionKind.PUBLIC,
                visibility="public",
                parent_external_id=str_field(parent, "id") or None if isinstance(parent, dict) else None,
                raw={"post_id": post_id, "id": str_field(entry, "id")},
            )
        )
    return items, _next(payload)


def _next(payload: object) -> str | None:
    paging = payload.get("paging") if isinstance(payload, dict) else None
    url = str_field(paging, "next") if isinstance(paging, dict) else ""
    return url or None


def parse_conversation(conversation: object, *, page_id: str) -> list[InboundItem]:
    """The customer's messages of one Messenger conversation, oldest first.

    Each message's parent is the message before it (ours or theirs), so a conversation stays one thread.
    ``raw`` carries the conversation id, the customer's PSID and when the 24-hour window closes.

    Raises:
        ValueError: The conversation has no id.
    """
    if not isinstance(conversation, dict) or not str_field(conversation, "id"):
        raise ValueError("conversation has no id")
    box = conversation.get("messages")
    data = box.get("data") if isinstance(box, dict) else None
    messages: list[tuple[int, dict[str, Any]]] = []
    for message in data if isinstance(data, list) else []:
        if isinstance(message, dict) and str_field(message, "id") and isinstance(message.get("from"), dict):
            try:
                messages.append((_time(message.get("created_time")), message))
            except ValueError:
                continue
    messages.sort(key=lambda pair: pair[0])
    items: list[InboundItem] = []
    previous: str | None = None
    for posted, message in messages:
        sender = message["from"]
        sender_id = str_field(sender, "id")
        if sender_id and sender_id != page_id:
            name = str_field(sender, "name") or sender_id
            items.append(
                InboundItem(
                    external_id=str_field(message, "id"),
                    author_id=sender_id,
                    author_handle=name,
                    author_name=name,
                    text=str_field(message, "message"),
                    url=str_field(conversation, "link")
                    and "https://www.facebook.com" + str_field(conversation, "link"),
                    posted_at=posted,
                    kind=MentionKind.DIRECT,
                    visibility=MESSENGER,
                    parent_external_id=previous,
                    raw={
                        "conversation_id": str_field(conversation, "id"),
                        "psid": sender_id,
                        "window_closes_at": posted + MESSAGING_WINDOW,
                    },
                )
            )
        previous = str_field(message, "id")
    return items


def _graph_error(body: object) -> tuple[int | None, int | None, str]:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None, None, ""
    code, sub = error.get("code"), error.get("error_subcode")
    return (
        code if isinstance(code, int) else None,
        sub if isinstance(sub, int) else None,
        str_field(error, "message"),
    )


def _usage_entries(headers: Mapping[str, str]) -> list[dict[str, Any]]:
    """The per-business entries of ``X-Business-Use-Case-Usage`` (``{business id: [entry, …]}``); none when the
    header is missing or not that shape."""
    try:
        usage = json.loads(headers.get("x-business-use-case-usage", "") or "null")
    except ValueError:
        return []
    if not isinstance(usage, dict):
        return []
    return [
        entry for entries in usage.values() if isinstance(entries, list) for entry in entries if isinstance(entry, dict)
    ]


def _regain_seconds(headers: Mapping[str, str]) -> float | None:
    """``estimated_time_to_regain_access`` (minutes) from ``X-Business-Use-Case-Usage``."""
    minutes = [entry.get("estimated_time_to_regain_access") for entry in _usage_entries(headers)]
    values = [m for m in minutes if isinstance(m, int | float) and m > 0]
    return max(values) * 60 if values else None


def parse_budget(headers: Mapping[str, str], *, now: float) -> RateLimitInfo | None:
    """The Page's budget from ``X-Business-Use-Case-Usage`` (channels.md §6): percent used of the most used
    measure (calls, CPU time, total time) out of 100, resetting when access is regained (None: no wait given).
    """
    used = [
        value
        for entry in _usage_entries(headers)
        for key in ("call_count", "total_cputime", "total_time")
        if isinstance(value := entry.get(key), int | float) and not isinstance(value, bool)
    ]
    if not used:
        return None
    regain = _regain_seconds(headers)
    return RateLimitInfo(
        limit=100, remaining=max(0, 100 - math.ceil(max(used))), reset_at=None if regain is None else now + regain
    )


# --------------------------------------------------------------------------------------------------------
# The connector
# --------------------------------------------------------------------------------------------------------


class FacebookConnector:
    """Comments on one Page's recent posts and its Messenger conversations (channels.md §6).

    Secret ``facebook:<id>``: a Page access token pasted by an admin (a long-lived Page token or a System
    User token: the code exchange needs the app secret, which a desktop app cannot keep). ``account.handle``
    is the Page id.
    """

    kind: ClassVar[str] = "facebook"
    #: The Graph API has no idempotency key: the outbox fails a status post it finds half-sent after a crash
    #: instead of sending it again (see :meth:`post_status`).
    status_idempotent: ClassVar[bool] = False

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        account: AccountRef,
        secrets: SecretStore,
        clock: Clock,
        active_days: int = 14,
        max_posts: int = 25,
        overlap_seconds: float = 300.0,
    ) -> None:
        """Wire the connector.

        Args:
            client: A long-lived client owned by the caller.
            account: ``handle`` is the Page id; ``base_url`` the Graph API root with version.
            secrets: Holds the Page token.
            clock: Time source.
            active_days: Posts updated within this many days are rescanned for comments.
            max_posts: Posts scanned per poll at most.
            overlap_seconds: Rescan window below each watermark.
        """
        self._client = client
        self._account = account
        self._secrets = secrets
        self._clock = clock
        self._active = active_days * 86400
        self._max_posts = max_posts
        self._overlap = overlap_seconds
        self._base_url = (account.base_url or DEFAULT_BASE_URL).rstrip("/")
        self._host = urlsplit(self._base_url).netloc or self._base_url
        self._token: str | None = None
        #: The ``X-Business-Use-Case-Usage`` budget of the latest response that carried it.
        self._rate_limit: RateLimitInfo | None = None

    async def _load(self) -> str:
        if self._token is None:
            token = await read_secret(
                self._secrets, f"facebook:{self._account.id}", unreadable="Could not read the Page token"
            )
            if not token:
                raise AuthExpired("No Page access token stored for this Page; paste a new one.")
            self._token = token
        return self._token

    async def _call(self, method: str, path_or_url: str, *, params: Params | None = None, body: Any = None) -> Any:
        token = await self._load()
        url = path_or_url if path_or_url.startswith("http") else self._base_url + path_or_url
        return await call_json(
            self._client,
            method,
            url,
            host=self._host,
            what=f"{method} {urlsplit(url).path}",
            fail=self._fail,
            credential=token,
            authorize=bearer,
            params=params,
            json=body,
            on_response=self._note_budget,
        )

    def _note_budget(self, response: httpx.Response) -> None:
        info = parse_budget(response.headers, now=self._clock.now())
        if info is not None:
            self._rate_limit = info

    def _fail(self, response: httpx.Response, what: str) -> NoReturn:
        now = self._clock.now()
        code, subcode, message = _graph_error(error_json(response))
        reason = f"{message} (code {code})" if code is not None else (message or response.reason_phrase)
        if code == 190:
            self._token = None
            raise AuthExpired(f"Facebook rejected the Page token: {message}. Paste a new Page token.")
        if code in _THROTTLE_CODES or response.status_code == 429:
            wait = _regain_seconds(response.headers) or DEFAULT_RETRY_SECONDS * 5
            raise RateLimited(f"Facebook is throttling this Page ({reason}).", retry_at=now + wait)
        if code == 10 and subcode == 2018278:
            raise Permanent(
                "This Messenger conversation is outside the 24-hour window; the customer must write first.",
                status=response.status_code,
            )
        if code in (10, 200):
            raise Permanent(f"The Page token lacks a permission for {what}: {message}.", status=response.status_code)
        if code in (1, 2):
            raise Transient(f"Facebook had a temporary problem on {what}: {message}.")
        raise_for_status(
            response,
            host=self._host,
            what=what,
            reason=reason[:300],
            retry_at=now + DEFAULT_RETRY_SECONDS,
            now=now,
            auth_statuses=(),
        )

    # -- Connector protocol ---------------------------------------------------------------------------

    async def verify(self) -> Identity:
        """Check the Page token (``GET /me?fields=id,name`` is the Page itself with a Page token).

        Raises:
            AuthExpired: The token is invalid or expired.
            ChannelError: Any other failure.
        """
        payload = await self._call("GET", "/me", params=[("fields", "id,name")])
        if not isinstance(payload, dict) or not str_field(payload, "id"):
            raise Transient("Facebook returned a malformed identity.")
        return Identity(str_field(payload, "id"), str_field(payload, "id"), str_field(payload, "name"))

    def backfill_cursor(self, horizon: int) -> Cursor:
        """A first sync reading every comment and message back to ``horizon`` (epoch seconds), not only the
        newest of each post and conversation."""
        return {"backfill": int(horizon)}

    async def fetch_new(self, cursor: Cursor | None) -> Batch:
        """New comments and messages (see :meth:`_fetch`); the batch carries the budget and malformed comments.

        Raises:
            AuthExpired, RateLimited, Transient, Permanent: With the budget the answer left (``rate_limit``).
        """
        return await carrying_budget(self._fetch(cursor), lambda: self._rate_limit)

    async def _fetch(self, cursor: Cursor | None) -> Batch:
        """New comments on recently active posts and new Messenger messages.

        A first sync started with :meth:`backfill_cursor` reads them as if every watermark lay at its horizon
        (issue 20, sync 1): every comment of the active posts and every message newer than the horizon.

        Posts are listed by ``updated_time``; each post updated since its own watermark has its comments
        read newest first (``filter=stream``) down to the watermark, with a seen-set against the overlap.
        Conversations are read down to the conversations watermark. With no cursor, everything found now
        is marked as seen and only the newest comment or message of each post or conversation is taken.

        Args:
            cursor: ``{"posts": {post id: watermark}, "convos": watermark, "seen": [...]}`` or None.

        Returns:
            Items oldest first and the new cursor.

        Raises:
            AuthExpired, RateLimited, Transient, Permanent: See :mod:`console.channels.errors`.
        """
        page_id = self._account.handle
        now = self._clock.now()
        posts_in = cursor.get("posts", {}) if cursor else {}
        marks: dict[str, float] = (
            {k: float(v) for k, v in posts_in.items() if isinstance(v, int | float)}
            if isinstance(posts_in, dict)
            else {}
        )
        convo_mark = cursor.get("convos") if cursor else None
        convo_mark = float(convo_mark) if isinstance(convo_mark, int | float) else None
        seen_in = cursor.get("seen", []) if cursor else []
        seen_list = [s for s in seen_in if isinstance(s, str)] if isinstance(seen_in, list) else []
        seen = set(seen_list)
        backfill_in = cursor.get("backfill") if cursor else None
        horizon = backfill_in if isinstance(backfill_in, int) and not isinstance(backfill_in, bool) else None
        reached = False
        if horizon is not None:
            convo_mark = float(horizon) + self._overlap  # read down to the horizon, as below a watermark
        first_sync = cursor is None
        found: dict[str, InboundItem] = {}
        rejected: list[Rejected] = []
        history: list[str] = []  # first sync: what was read but is history, so the overlap never brings it back

        feed = await self._call(
            "GET",
            f"/{quote(page_id, safe='')}/feed",
            params=[("fields", "id,updated_time,created_time"), ("limit", self._max_posts)],
        )
        posts = feed.get("data") if isinstance(feed, dict) else None
        for post in posts if isinstance(posts, list) else []:
            if not isinstance(post, dict) or not str_field(post, "id"):
                continue
            try:
                updated = parse_iso(post.get("updated_time") or post.get("created_time"))
            except ValueError:
                continue
            post_id = str_field(post, "id")
            mark = marks.get(post_id, None if horizon is None else float(horizon) + self._overlap)
            if updated < now - self._active or (mark is not None and updated <= mark):
                continue
            newest_comment = mark
            url: str | None = f"/{quote(post_id, safe='')}/comments"
            params: Params | None = [
                ("filter", "stream"),
                ("order", "reverse_chronological"),
                ("fields", _COMMENT_FIELDS),
                ("limit", 100),
            ]
            for _ in range(5):
                if url is None:
                    break
                payload = await self._call("GET", url, params=params)
                try:
                    comments, url = parse_comments(payload, post_id=post_id, rejected=rejected)
                except ValueError as exc:
                    raise Transient(f"Facebook returned malformed comments: {exc}.") from exc
                params = None  # paging.next carries every parameter
                stop = False
                for comment in comments:
                    newest_comment = max(newest_comment or comment.posted_at, comment.posted_at)
                    if mark is not None and comment.posted_at < mark - self._overlap:
                        stop = True
                        reached = reached or horizon is not None
                        continue
                    if comment.author_id == page_id or comment.external_id in seen:
                        continue
                    if first_sync and any(i.raw.get("post_id") == post_id for i in found.values()):
                        history.append(comment.external_id)
                        continue  # first sync: the newest comment of each post only
                    found.setdefault(comment.external_id, comment)
                if stop or first_sync:
                    break
            marks[post_id] = newest_comment if newest_comment is not None else updated

        convos = await self._call(
            "GET",
            f"/{quote(page_id, safe='')}/conversations",
            params=[("platform", "messenger"), ("fields", f"id,updated_time,link,{_MESSAGE_FIELDS}"), ("limit", 25)],
        )
        newest_convo = convo_mark
        entries = convos.get("data") if isinstance(convos, dict) else None
        for conversation in entries if isinstance(entries, list) else []:
            if not isinstance(conversation, dict):
                continue
            try:
                updated = parse_iso(conversation.get("updated_time"))
            except ValueError:
                continue
            newest_convo = updated if newest_convo is None else max(newest_convo, updated)
            if convo_mark is not None and updated <= convo_mark - self._overlap:
                reached = reached or horizon is not None
                break  # ordered by updated_time desc
            try:
                messages = parse_conversation(conversation, page_id=page_id)
            except ValueError:
                continue
            if first_sync:
                history.extend(message.external_id for message in messages[:-1])
                messages = messages[-1:]
            for message in messages:
                if horizon is not None and message.posted_at < horizon:
                    continue
                if message.external_id not in seen:
                    found.setdefault(message.external_id, message)

        items = sorted(found.values(), key=lambda item: (item.posted_at, item.external_id))
        next_seen = ([i.external_id for i in reversed(items)] + history + [s for s in seen_list if s not in found])[
            :1000
        ]
        active = {k: v for k, v in marks.items() if v >= now - self._active - 86400}
        backfill = None
        if horizon is not None:
            oldest = min((item.posted_at for item in items), default=None)
            backfill = Backfill(horizon=horizon, oldest=oldest, done=True, reached_horizon=reached)
        next_cursor: Cursor = {"posts": active, "convos": newest_convo, "seen": next_seen}
        return Batch(items=items, next_cursor=next_cursor, backfill=backfill, rejected=tuple(rejected))

    async def fetch_thread(self, external_id: str) -> list[InboundItem]:
        """Not fetched: the stored conversation is used (Graph reads count against the Page's budget)."""
        del external_id
        return []

    async def send_reply(
        self, target: ReplyTarget, text: str, *, idempotency_key: str, visibility: str | None = None
    ) -> ReplyReceipt:
        """Reply to a comment (``POST /{comment-id}/comments``) or in Messenger (``POST /{page-id}/messages``).

        Comment threads are two levels deep: an answer to a reply goes under its top-level comment. A
        Messenger reply goes to the sender of the message (``messaging_type=RESPONSE``), which Facebook
        allows within 24 hours of the customer's last message.

        Raises:
            Permanent: Outside the messaging window, a missing permission, or a deleted comment.
            ChannelError: Any other failure.
        """
        del idempotency_key, visibility
        if not text.strip():
            raise Permanent("The reply is empty.")
        now = math.floor(self._clock.now())
        if target.visibility == MESSENGER:
            message = await self._call("GET", f"/{quote(target.external_id, safe='')}", params=[("fields", "from")])
            sender = message.get("from") if isinstance(message, dict) else None
            psid = str_field(sender, "id") if isinstance(sender, dict) else ""
            if not psid:
                raise Permanent("Facebook did not say who sent this message; reply from the Page inbox.")
            if len(text) > 2000:
                raise Permanent("Messenger messages are limited to 2000 characters.")
            payload = await self._call(
                "POST",
                f"/{quote(self._account.handle, safe='')}/messages",
                body={"recipient": {"id": psid}, "messaging_type": "RESPONSE", "message": {"text": text}},
            )
            message_id = str_field(payload, "message_id") if isinstance(payload, dict) else ""
            if not message_id:
                raise Transient("Facebook returned a malformed send result.")
            return ReplyReceipt(message_id, "", now)
        comment = await self._call(
            "GET", f"/{quote(target.external_id, safe='')}", params=[("fields", "id,parent{id}")]
        )
        parent = comment.get("parent") if isinstance(comment, dict) else None
        top = str_field(parent, "id") if isinstance(parent, dict) and str_field(parent, "id") else target.external_id
        payload = await self._call("POST", f"/{quote(top, safe='')}/comments", body={"message": text})
        comment_id = str_field(payload, "id") if isinstance(payload, dict) else ""
        if not comment_id:
            raise Transient("Facebook returned a malformed comment id.")
        return ReplyReceipt(comment_id, "", now)

    async def post_status(self, text: str, *, idempotency_key: str, visibility: str = "public") -> ReplyReceipt:
        """Publish ``text`` on the Page's feed as a post of its own (``POST /{page-id}/feed`` with ``message``).

        Used for the capacity update. Needs the Page id (the account's handle, read from the token when the
        Page was added) and a Page token with ``pages_manage_posts`` (the CREATE_CONTENT task). The Graph API
        has no idempotency key, so ``idempotency_key`` is unused and a post is sent at most once: when the
        outcome is unknown (a timeout after the request went out, a 5xx or temporary error, a connection
        closed unanswered, an unreadable answer) it fails as :class:`Permanent` ("may have been posted")
        rather than being retried, and :attr:`status_idempotent` tells the outbox to fail a post it finds
        half-sent after a crash instead of sending it again. A refusal (token, throttling, permission) or a
        connection never made is certain and keeps its own error, so the outbox retries it.

        Args:
            text: The status text.
            idempotency_key: Unused (the Graph API has none).
            visibility: Ignored (Page posts are public).

        Returns:
            The post's id (``{page-id}_{post-id}``), its facebook.com link and the time.

        Raises:
            Permanent: Empty text or no Page id (nothing is sent), a missing permission, or possibly posted.
            AuthExpired, RateLimited, Transient: Facebook did not take it, for sure; it may be sent again.
        """
        del idempotency_key, visibility
        page_id = self._account.handle.strip()
        if not page_id:
            raise Permanent("The Page id of this account is not known; add the Page again to post on it.")
        if not text.strip():
            raise Permanent("The status update is empty.")
        now = math.floor(self._clock.now())
        with sent_at_most_once(
            "Facebook may have published the status update",
            "It is not sent again, because the Graph API has no idempotency key: check the Page's posts.",
        ):
            payload = await self._call("POST", f"/{quote(page_id, safe='')}/feed", body={"message": text})
            post_id = str_field(payload, "id") if isinstance(payload, dict) else ""
            if not post_id:
                raise Transient("Facebook returned a malformed post id.")
        page, _, story = post_id.partition("_")
        url = f"https://www.facebook.com/{page}/posts/{story}" if story else f"https://www.facebook.com/{post_id}"
        return ReplyReceipt(post_id, url, now)

    async def aclose(self) -> None:
        """Forget the cached token (the client belongs to the caller)."""
        self._token = None
