"""Bluesky (AT Protocol) connector: app-password sessions, notifications with a watermark, threaded replies."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, NoReturn
from urllib.parse import urlsplit

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
    RateLimitInfo,
    Rejected,
    ReplyReceipt,
    ReplyTarget,
    Skips,
    carrying_budget,
    read_secret,
)
from console.channels.errors import AuthExpired, Permanent, RateLimited, Transient
from console.channels.http import (
    Params,
    bearer,
    call_json,
    epoch_budget,
    epoch_header,
    error_json,
    grapheme_count,
    json_body,
    parse_iso,
    raise_for_status,
    retry_time,
    send,
    str_field,
)
from console.channels.mastodon import StatusCheck
from console.ports import Clock, SecretStore
from storage.rows import MentionKind

__all__ = [
    "MAX_POST_BYTES",
    "MAX_POST_GRAPHEMES",
    "BlueskyConnector",
    "NotificationPage",
    "PostBlocked",
    "PostDeleted",
    "StrongRef",
    "build_facets",
    "chat_id",
    "parse_chat_log",
    "parse_chat_message",
    "parse_notifications",
    "parse_post_view",
    "parse_thread",
    "permalink",
    "reply_refs",
    "split_chat_id",
    "status_rkey",
]

log = logging.getLogger(__name__)

#: app.bsky.feed.post lexicon limits (channels.md §2 "Text limit").
MAX_POST_GRAPHEMES = 300
MAX_POST_BYTES = 3000
#: Notification reasons that are customer messages (likes, reposts and follows are not).
REASONS = ("mention", "reply", "quote")
#: chat.bsky limits (DMs): 1000 graphemes / 10000 bytes.
MAX_DM_GRAPHEMES = 1000
MAX_DM_BYTES = 10000
#: Chat calls go to the PDS with this proxy header (channels.md §2 "DMs").
CHAT_PROXY = "did:web:api.bsky.chat#bsky_chat"
#: Errors the PDS gives for an access token past its ~2 h life.
_EXPIRED_ERRORS = frozenset({"ExpiredToken", "InvalidToken"})
#: The collection of posts; its lexicon says ``"key": "tid"``, so a record key we choose must be a TID.
POST_COLLECTION = "app.bsky.feed.post"
#: Posts per read of the account's own feed (``getAuthorFeed`` allows up to 100).
OWN_POSTS_LIMIT = 50
#: A first read of the account's own feed goes back at most this many pages.
OWN_POSTS_FIRST_PAGES = 3
#: The own-posts cursor is a time (the feed has no "newer than" cursor): posts created this long before the
#: newest one read are read again, since ``createdAt`` is the posting client's clock. Storing is idempotent.
OWN_POSTS_OVERLAP = 300
#: The base32-sortable alphabet of TIDs (atproto.com/specs/tid).
_S32 = "234567abcdefghijklmnopqrstuvwxyz"

# --------------------------------------------------------------------------------------------------------
# Pure parsing
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StrongRef:
    """A ``com.atproto.repo.strongRef``: the record's at-uri and content hash."""

    uri: str
    cid: str

    def as_json(self) -> dict[str, str]:
        return {"uri": self.uri, "cid": self.cid}


def _at_parts(uri: str) -> tuple[str, str, str] | None:
    """``at://did/collection/rkey`` -> (did, collection, rkey), or None for anything else."""
    if not uri.startswith("at://"):
        return None
    parts = uri[5:].split("/")
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1], parts[2]


def permalink(uri: str, handle: str) -> str:
    """The bsky.app link of a post (channels.md §2 pitfalls), or "" when ``uri`` is not an at-uri.

    Args:
        uri: The post's at-uri.
        handle: The author's handle (the DID from the uri is used when empty).

    Returns:
        ``https://bsky.app/profile/{handle}/post/{rkey}`` or "".
    """
    parts = _at_parts(uri)
    if parts is None:
        return ""
    return f"https://bsky.app/profile/{handle or parts[0]}/post/{parts[2]}"


def status_rkey(idempotency_key: str) -> str:
    """The record key of a status post: a TID derived from the outbox's idempotency key, so a retry names it again.

    A TID is a 64-bit integer with the top bit 0, written as 13 base32-sortable characters
    (atproto.com/specs/tid); ``app.bsky.feed.post`` requires TID keys, and the PDS accepts one chosen by the
    client (``createRecord`` ``rkey``). The value is the first 63 bits of SHA-256 of the key: its timestamp
    part means nothing, which the spec allows (keys "could have any value, so they should not be trusted").

    Args:
        idempotency_key: The status post's key (stable across retries).

    Returns:
        A valid TID such as ``"3l4k…"``; the same key always gives the same TID.
    """
    value = int.from_bytes(hashlib.sha256(idempotency_key.encode("utf-8")).digest()[:8], "big") >> 1
    return "".join(_S32[(value >> shift) & 31] for shift in range(60, -1, -5))


def _ref(value: object) -> StrongRef | None:
    if isinstance(value, dict):
        uri, cid = str_field(value, "uri"), str_field(value, "cid")
        if uri and cid:
            return StrongRef(uri, cid)
    return None


def _time(value: object, fallback: object = None) -> int:
    for candidate in (value, fallback):
        try:
            return math.floor(parse_iso(candidate))
        except ValueError:
            continue
    raise ValueError(f"no usable timestamp in {value!r}")


def _item(uri: str, author: object, record: object, indexed_at: object) -> InboundItem:
    if not uri:
        raise ValueError("post has no uri")
    if not isinstance(author, dict):
        raise ValueError("post has no author")
    did, handle = str_field(author, "did"), str_field(author, "handle")
    if not did or not handle:
        raise ValueError("post author has no did or handle")
    if not isinstance(record, dict):
        raise ValueError("post has no record")
    text = record.get("text")
    if not isinstance(text, str):
        raise ValueError("post record has no text")
    reply = record.get("reply")
    parent = _ref(reply.get("parent")) if isinstance(reply, dict) else None
    return InboundItem(
        external_id=uri,
        author_id=did,  # key everything by DID: handles change (channels.md §2 pitfalls)
        author_handle=handle,
        author_name=str_field(author, "displayName") or handle,
        text=text,
        url=permalink(uri, handle),
        posted_at=_time(record.get("createdAt"), indexed_at),
        kind=MentionKind.PUBLIC,
        visibility="public",
        parent_external_id=parent.uri if parent else None,
        raw={"uri": uri, "record": record, "author": {"did": did, "handle": handle}},
    )


@dataclass(frozen=True, slots=True)
class NotificationPage:
    """One ``listNotifications`` page: customer posts (newest first) with their ``indexedAt``, and the cursor."""

    items: list[InboundItem] = field(default_factory=list)
    indexed_at: list[float] = field(default_factory=list)
    oldest_indexed_at: float | None = None  # over every entry, messages or not, for the stop test
    cursor: str | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: Each ``skipped`` entry with its raw JSON, same order (for the quarantine).
    rejected: list[Rejected] = field(default_factory=list)


def parse_notifications(payload: object) -> NotificationPage:
    """Parse ``app.bsky.notification.listNotifications`` output; keep mention, reply and quote posts.

    Args:
        payload: The decoded body ``{"notifications": [...], "cursor"?: str}``, or just the array.

    Returns:
        A :class:`NotificationPage`; malformed entries are listed in ``skipped`` as ``(uri or "?", reason)``.

    Raises:
        ValueError: ``payload`` has no notifications list.
    """
    cursor: str | None = None
    entries: object = payload
    if isinstance(payload, dict):
        entries = payload.get("notifications")
        raw_cursor = payload.get("cursor")
        cursor = raw_cursor if isinstance(raw_cursor, str) and raw_cursor else None
    if not isinstance(entries, list):
        raise ValueError("expected a notifications list")
    items: list[InboundItem] = []
    stamps: list[float] = []
    skips = Skips()
    skip = skips.skip

    oldest: float | None = None
    for entry in entries:
        if not isinstance(entry, dict):
            skip("?", "entry is not an object", entry)
            continue
        uri = str_field(entry, "uri") or "?"
        try:
            indexed = parse_iso(entry.get("indexedAt"))
        except ValueError:
            skip(uri, "no indexedAt", entry)
            continue
        oldest = indexed if oldest is None else min(oldest, indexed)
        if entry.get("reason") not in REASONS:
            continue
        record = entry.get("record")
        if isinstance(record, dict) and record.get("$type", "app.bsky.feed.post") != "app.bsky.feed.post":
            continue
        try:
            item = _item(str_field(entry, "uri"), entry.get("author"), record, entry.get("indexedAt"))
        except ValueError as exc:
            skip(uri, str(exc), entry)
            continue
        cid = str_field(entry, "cid")
        items.append(_with_raw(item, cid=cid, reason=str_field(entry, "reason")))
        stamps.append(indexed)
    return NotificationPage(items, stamps, oldest, cursor, skips.skipped, skips.rejected)


def _with_raw(item: InboundItem, **extra: str) -> InboundItem:
    raw = dict(item.raw)
    raw.update({key: value for key, value in extra.items() if value})
    return InboundItem(
        item.external_id,
        item.author_id,
        item.author_handle,
        item.author_name,
        item.text,
        item.url,
        item.posted_at,
        item.kind,
        item.visibility,
        item.parent_external_id,
        raw,
    )


def parse_post_view(post: object) -> InboundItem:
    """Turn an ``app.bsky.feed.defs#postView`` into an item.

    Args:
        post: ``{"uri", "cid", "author", "record", "indexedAt"}``.

    Returns:
        The item (``raw`` keeps uri, cid, record and author did/handle).

    Raises:
        ValueError: A required field is missing.
    """
    if not isinstance(post, dict):
        raise ValueError("post is not an object")
    item = _item(str_field(post, "uri"), post.get("author"), post.get("record"), post.get("indexedAt"))
    return _with_raw(item, cid=str_field(post, "cid"))


@dataclass(frozen=True, slots=True)
class AuthorFeedPage:
    """One ``app.bsky.feed.getAuthorFeed`` page: the account's own replies (newest first), the creation times of
    every own post on it (reposts left out), and the cursor of the next, older page."""

    replies: list[OwnPost]
    times: list[int]
    cursor: str | None


def parse_author_feed(payload: object, did: str) -> AuthorFeedPage:
    """Parse an author feed page (``filter=posts_with_replies``): keep the posts of ``did`` that reply to
    something; reposts (a ``reason``) and other authors' posts are left out, malformed entries logged.

    Raises:
        ValueError: ``payload`` is not an object with a ``feed`` list.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("feed"), list):
        raise ValueError("expected an object with a feed list")
    replies: list[OwnPost] = []
    times: list[int] = []
    for entry in payload["feed"]:
        if not isinstance(entry, dict) or entry.get("reason") is not None:
            continue
        try:
            item = parse_post_view(entry.get("post"))
        except ValueError as exc:
            log.warning("Skipped a malformed post of the account's own feed: %s", exc)
            continue
        if item.author_id != did:
            continue
        times.append(item.posted_at)
        if item.parent_external_id is not None:
            replies.append(
                OwnPost(
                    external_id=item.external_id,
                    parent_external_id=item.parent_external_id,
                    text=item.text,
                    url=item.url,
                    posted_at=item.posted_at,
                    visibility=item.visibility,
                )
            )
    cursor = payload.get("cursor")
    return AuthorFeedPage(replies, times, cursor if isinstance(cursor, str) and cursor else None)


def parse_thread(payload: object) -> list[InboundItem]:
    """Flatten ``getPostThread`` output: ancestors (oldest first), the post, then replies depth-first.

    Blocked or deleted posts (``#notFoundPost``, ``#blockedPost``) and malformed entries are left out.

    Args:
        payload: ``{"thread": threadViewPost}`` or the threadViewPost itself.

    Returns:
        The posts in conversation order.

    Raises:
        ValueError: There is no thread view.
    """
    thread = payload.get("thread", payload) if isinstance(payload, dict) else None
    if not isinstance(thread, dict):
        raise ValueError("expected a thread view")
    ancestors: list[InboundItem] = []
    parent = thread.get("parent")
    depth = 0
    while isinstance(parent, dict) and depth < 1000:
        with contextlib.suppress(ValueError):
            ancestors.append(parse_post_view(parent.get("post")))
        parent = parent.get("parent")
        depth += 1
    ancestors.reverse()
    out = ancestors
    stack: list[object] = [thread]
    while stack:
        node = stack.pop()
        if not isinstance(node, dict):
            continue
        with contextlib.suppress(ValueError):
            out.append(parse_post_view(node.get("post")))
        replies = node.get("replies")
        if isinstance(replies, list):
            stack.extend(reversed(replies))
    return out


def reply_refs(parent_uri: str, parent_cid: str, parent_record: object) -> tuple[StrongRef, StrongRef]:
    """The ``reply.root`` and ``reply.parent`` of a reply to a post (channels.md §2 "Reply (post)").

    Args:
        parent_uri: The answered post's at-uri.
        parent_cid: Its cid.
        parent_record: Its record (``app.bsky.feed.post``).

    Returns:
        ``(root, parent)``: root is the parent's own ``reply.root`` when it has one, else the parent.
    """
    parent = StrongRef(parent_uri, parent_cid)
    reply = parent_record.get("reply") if isinstance(parent_record, dict) else None
    root = _ref(reply.get("root")) if isinstance(reply, dict) else None
    return (root or parent), parent


_URL_RE = re.compile(r"https?://[^\s<>\"]+[^\s<>\".,;:!?)']")


def build_facets(text: str, mentions: Mapping[str, str]) -> list[dict[str, Any]]:
    """Rich-text facets for ``@handle`` mentions and links, with UTF-8 byte offsets (channels.md §2 pitfalls).

    Args:
        text: The post text.
        mentions: ``{handle: did}``; only these handles get mention facets (a mention needs the DID).

    Returns:
        ``app.bsky.richtext.facet`` objects, ordered by start offset.
    """
    facets: list[dict[str, Any]] = []

    def byte_index(char_index: int) -> int:
        return len(text[:char_index].encode("utf-8"))

    for handle, did in mentions.items():
        clean = handle.removeprefix("@")
        if not clean:
            continue
        pattern = re.compile(rf"(?<![\w@.])@{re.escape(clean)}(?![\w-]|\.\w)", re.IGNORECASE)
        for match in pattern.finditer(text):
            facets.append(
                {
                    "index": {"byteStart": byte_index(match.start()), "byteEnd": byte_index(match.end())},
                    "features": [{"$type": "app.bsky.richtext.facet#mention", "did": did}],
                }
            )
    for match in _URL_RE.finditer(text):
        facets.append(
            {
                "index": {"byteStart": byte_index(match.start()), "byteEnd": byte_index(match.end())},
                "features": [{"$type": "app.bsky.richtext.facet#link", "uri": match.group()}],
            }
        )
    facets.sort(key=lambda facet: int(facet["index"]["byteStart"]))
    return facets


def chat_id(convo_id: str, message_id: str) -> str:
    """A DM's external id: ``"chat:<convo id>:<message id>"`` (a reply needs the conversation)."""
    return f"chat:{convo_id}:{message_id}"


def split_chat_id(external_id: str) -> tuple[str, str] | None:
    """Inverse of :func:`chat_id`; None for post uris."""
    prefix, _, rest = external_id.partition(":")
    convo, sep, message = rest.partition(":")
    if prefix != "chat" or not sep or not convo or not message:
        return None
    return convo, message


@dataclass(frozen=True, slots=True)
class ChatLog:
    """One ``chat.bsky.convo.getLog`` page: created messages ``(convo id, messageView)`` in log order."""

    messages: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    cursor: str | None = None
    size: int = 0


def parse_chat_log(payload: object) -> ChatLog:
    """Parse ``getLog`` output; keep ``logCreateMessage`` entries (deletions, reads, joins are ignored).

    Raises:
        ValueError: There is no ``logs`` list.
    """
    logs = payload.get("logs") if isinstance(payload, dict) else None
    if not isinstance(logs, list):
        raise ValueError("expected {logs: [...]}")
    messages: list[tuple[str, dict[str, Any]]] = []
    for entry in logs:
        if not isinstance(entry, dict) or not str_field(entry, "$type").endswith("#logCreateMessage"):
            continue
        message = entry.get("message")
        convo = str_field(entry, "convoId")
        if convo and isinstance(message, dict) and str_field(message, "id") and isinstance(message.get("sender"), dict):
            messages.append((convo, message))
    raw_cursor = payload.get("cursor") if isinstance(payload, dict) else None
    return ChatLog(messages, raw_cursor if isinstance(raw_cursor, str) and raw_cursor else None, len(logs))


def parse_chat_message(
    convo_id: str, message: Mapping[str, Any], *, handle: str, name: str, parent: str | None
) -> InboundItem:
    """Turn a ``chat.bsky.convo.defs#messageView`` into a DM item.

    Raises:
        ValueError: A required field is missing.
    """
    sender = message.get("sender")
    did = str_field(sender, "did") if isinstance(sender, dict) else ""
    text = message.get("text")
    if not did or not isinstance(text, str) or not str_field(message, "id"):
        raise ValueError("message has no id, sender or text")
    return InboundItem(
        external_id=chat_id(convo_id, str_field(message, "id")),
        author_id=did,
        author_handle=handle or did,
        author_name=name or handle or did,
        text=text,
        url="",
        posted_at=_time(message.get("sentAt")),
        kind=MentionKind.DIRECT,
        visibility="direct",
        parent_external_id=parent,
        raw={"convoId": convo_id, "id": str_field(message, "id"), "rev": str_field(message, "rev")},
    )


def _iso_z(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------------------------------------
# The connector
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Session:
    access: str
    refresh: str
    did: str
    handle: str

    def dumps(self) -> str:
        return json.dumps(
            {"accessJwt": self.access, "refreshJwt": self.refresh, "did": self.did, "handle": self.handle}
        )


def _session_from(payload: object) -> _Session | None:
    if not isinstance(payload, dict):
        return None
    access, refresh, did = str_field(payload, "accessJwt"), str_field(payload, "refreshJwt"), str_field(payload, "did")
    if not access or not refresh or not did:
        return None
    return _Session(access, refresh, did, str_field(payload, "handle"))


class BlueskyConnector:
    """Mentions, replies and quotes of one Bluesky account, and threaded replies (channels.md §2).

    Secrets: ``bluesky:<id>`` holds the app password; ``bluesky:<id>:session`` the session JSON (access and
    refresh JWTs), so a restart reuses the session instead of calling ``createSession`` (30 per 5 min).
    Refreshes run under one ``asyncio.Lock`` per account because the refresh JWT rotates: two concurrent
    refreshes with the same token would revoke each other.
    """

    kind: ClassVar[str] = "bluesky"

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        account: AccountRef,
        secrets: SecretStore,
        clock: Clock,
        page_limit: int = 50,
        max_pages: int = 20,
        overlap_seconds: float = 300.0,
        seen_size: int = 300,
        dms: bool = True,
    ) -> None:
        """Wire the connector; nothing is read or sent until the first call.

        Args:
            client: A long-lived client owned by the caller.
            account: ``handle`` is the login identifier; ``base_url`` the PDS (``https://bsky.social``).
            secrets: Where the app password and the session live.
            clock: Time source.
            page_limit: ``limit`` per page (≤ 100).
            max_pages: Pages per :meth:`fetch_new` at most.
            overlap_seconds: How far below the watermark to rescan (the AppView delays some notifications).
            seen_size: How many recent uris the cursor remembers.
            dms: Also read direct messages (needs an app password created with DM access; without it DMs
                are switched off for the session and mentions keep syncing).
        """
        if not 1 <= page_limit <= 100 or max_pages < 1:
            raise ValueError("page_limit must be 1..100 and max_pages positive")
        self._client = client
        self._account = account
        self._secrets = secrets
        self._clock = clock
        self._page_limit = page_limit
        self._max_pages = max_pages
        self._overlap = overlap_seconds
        self._seen_size = seen_size
        self._base_url = account.base_url.rstrip("/")
        self._host = urlsplit(self._base_url).netloc or self._base_url
        self._password_key = f"bluesky:{account.id}"
        self._session_key = f"bluesky:{account.id}:session"
        self._session: _Session | None = None
        self._lock = asyncio.Lock()
        self._dms = dms
        self._members: dict[tuple[str, str], tuple[str, str]] = {}
        # Entries the fetch under way dropped as malformed (logged; raw in ``rejected``, for its Batch).
        self._skipped: list[tuple[str, str]] = []
        self._rejected: list[Rejected] = []
        #: The ``RateLimit-*`` headers of the latest response that carried them.
        self._rate_limit: RateLimitInfo | None = None

    # -- auth -----------------------------------------------------------------------------------------

    async def _secret(self, key: str) -> str | None:
        return await read_secret(
            self._secrets, key, unreadable=f"Could not read the Bluesky credentials of {self._account.handle}"
        )

    async def _store_session(self, session: _Session) -> None:
        self._session = session
        try:
            await asyncio.to_thread(self._secrets.set, self._session_key, session.dumps())
        except Exception as exc:  # the session still works for this run
            log.warning("Could not keep the Bluesky session of %s in the secret store: %s", self._account.handle, exc)

    async def _new_session(self, response: httpx.Response, what: str) -> _Session:
        """The session a successful createSession or refreshSession answered, now the one in use and stored."""
        session = _session_from(json_body(response, host=self._host, what=what))
        if session is None:
            raise Transient(f"{self._host} returned malformed data for {what}: no session.")
        await self._store_session(session)
        return session

    async def _current_session(self) -> _Session:
        if self._session is None:
            async with self._lock:  # one createSession for concurrent first calls (30 per 5 min allowed)
                if self._session is None:
                    stored = await self._secret(self._session_key)
                    session = _session_from(_loads(stored)) if stored else None
                    self._session = session or await self._create_session()
        return self._session

    async def _create_session(self) -> _Session:
        password = await self._secret(self._password_key)
        if not password:
            raise AuthExpired(f"No app password stored for {self._account.handle}; add the account again.")
        what = "POST com.atproto.server.createSession"
        response = await send(
            self._client,
            "POST",
            self._url("com.atproto.server.createSession"),
            host=self._host,
            json={"identifier": self._account.handle, "password": password},
        )
        if response.is_success:
            return await self._new_session(response, what)
        error, message = _xrpc_error(response)
        if error in (
            "AuthenticationRequired",
            "AuthFactorTokenRequired",
            "AccountTakedown",
        ) or response.status_code in (
            400,
            401,
        ):
            hint = (
                " (the account asks for an email code: use an app password)"
                if error == "AuthFactorTokenRequired"
                else ""
            )
            raise AuthExpired(f"Bluesky refused the app password of {self._account.handle}: {message or error}{hint}.")
        self._fail(response, what)

    async def _refresh(self, stale: _Session) -> _Session:
        async with self._lock:
            if self._session is not None and self._session.access != stale.access:
                return self._session  # another task refreshed while we waited
            what = "POST com.atproto.server.refreshSession"
            response = await send(
                self._client,
                "POST",
                self._url("com.atproto.server.refreshSession"),
                host=self._host,
                headers=bearer(stale.refresh),
            )
            if response.is_success:
                return await self._new_session(response, what)
            if response.status_code in (400, 401):
                log.info("Bluesky refresh token of %s is no longer valid; logging in again", self._account.handle)
                self._session = None
                return await self._create_session()
            self._fail(response, what)

    # -- transport ------------------------------------------------------------------------------------

    def _url(self, nsid: str) -> str:
        return f"{self._base_url}/xrpc/{nsid}"

    async def _xrpc(
        self, method: str, nsid: str, *, params: Params | None = None, body: Any = None, chat: bool = False
    ) -> Any:
        proxy = {"atproto-proxy": CHAT_PROXY} if chat else {}
        return await call_json(
            self._client,
            method,
            self._url(nsid),
            host=self._host,
            what=f"{method} {nsid}",
            fail=self._fail,
            credential=await self._current_session(),
            authorize=lambda session: {**bearer(session.access), **proxy},
            renew=self._refresh,
            expired=_session_expired,
            params=params,
            json=body,
            on_response=self._note_budget,
        )

    def _note_budget(self, response: httpx.Response) -> None:
        info = epoch_budget(response.headers, "ratelimit-")
        if info is not None:
            self._rate_limit = info

    def _fail(self, response: httpx.Response, what: str) -> NoReturn:
        now = self._clock.now()
        error, message = _xrpc_error(response)
        retry_at = retry_time(response.headers, now=now, reset_at=epoch_header(response.headers, "RateLimit-Reset"))
        reason = f"{error}: {message}" if error and message else (error or message or response.reason_phrase)
        if error == "RecordNotFound":
            raise _RecordNotFound(
                f"{self._host} has no such record for {what} ({reason[:300]}).", status=response.status_code
            )
        if error == "NotFound" and what.endswith("getPostThread"):
            # The AppView's answer for a deleted post (400 NotFound "Post not found: at://…").
            raise PostDeleted("The post was deleted on Bluesky.", status=response.status_code)
        raise_for_status(response, host=self._host, what=what, reason=reason[:300], retry_at=retry_at, now=now)

    # -- Connector protocol ---------------------------------------------------------------------------

    async def verify(self) -> Identity:
        """Log in (or reuse the session) and say whose account it is (``com.atproto.server.getSession``).

        Returns:
            The DID, handle and handle as display name.

        Raises:
            AuthExpired: The app password or session was refused.
            ChannelError: Any other failure.
        """
        payload = await self._xrpc("GET", "com.atproto.server.getSession")
        if not isinstance(payload, dict) or not str_field(payload, "did"):
            raise Transient(f"{self._host} returned malformed data for getSession.")
        handle = str_field(payload, "handle") or self._account.handle
        return Identity(external_id=str_field(payload, "did"), handle=handle, display_name=handle)

    async def _notifications_page(self, page_cursor: str | None) -> NotificationPage:
        """One page of ``listNotifications`` from ``page_cursor`` (the newest without one), parsed; what it
        skipped is added to this fetch's skipped and rejected lists.

        Raises:
            AuthExpired, RateLimited, Transient, Permanent: See :mod:`console.channels.errors`.
        """
        params: Params = [("reasons", reason) for reason in REASONS]
        params.append(("limit", self._page_limit))
        if page_cursor:
            params.append(("cursor", page_cursor))
        payload = await self._xrpc("GET", "app.bsky.notification.listNotifications", params=params)
        try:
            page = parse_notifications(payload)
        except ValueError as exc:
            raise Transient(f"{self._host} returned malformed notifications: {exc}.") from exc
        self._skipped.extend(page.skipped)
        self._rejected.extend(page.rejected)
        return page

    def backfill_cursor(self, horizon: int) -> Cursor:
        """The cursor of a first sync that reads posts back to ``horizon`` (epoch seconds; issue 20, sync 1)."""
        return {"backfill": {"horizon": int(horizon)}}

    async def _backfill(self, cursor: Cursor, state: dict[str, Any]) -> Batch:
        """Page down from the newest notification to the horizon, ``max_pages`` per call; the listing's own
        backwards cursor is kept, so the next call (or a restart) resumes where this one stopped.

        When done, the cursor becomes the usual watermark one (the newest ``indexedAt`` of the first page) with
        the horizon as its floor, and the chat log finds its place as on any first sync.
        """
        horizon = state.get("horizon")
        if not isinstance(horizon, int) or isinstance(horizon, bool):
            log.warning("Bluesky backfill cursor for %s has no horizon; syncing the newest page", self._host)
            return await self._fetch(None)
        page_cursor = state.get("page") if isinstance(state.get("page"), str) else None
        top = _float(state.get("top"))
        seen_list = [s for s in state.get("seen", []) if isinstance(s, str)]
        known = {s for s in state.get("known", []) if isinstance(s, str)}  # stored before a gap, within its overlap
        oldest_value = state.get("oldest")
        oldest = oldest_value if isinstance(oldest_value, int) and not isinstance(oldest_value, bool) else None
        self._skipped = []
        self._rejected = []
        collected: list[tuple[float, InboundItem]] = []
        done = reached = False
        for _ in range(self._max_pages):
            page = await self._notifications_page(page_cursor)
            if top is None and page.indexed_at:
                top = max(page.indexed_at)  # the newest: where polling continues once the backfill is done
                seen_list = [item.external_id for item in page.items][: self._seen_size]
            for stamp, item in zip(page.indexed_at, page.items, strict=True):
                if stamp < horizon:
                    reached = True
                    continue
                if item.external_id not in known:
                    collected.append((stamp, item))
                    oldest = item.posted_at if oldest is None else min(oldest, item.posted_at)
            page_cursor = page.cursor
            if page.oldest_indexed_at is not None and page.oldest_indexed_at < horizon:
                reached = done = True
                break
            if page_cursor is None or page.oldest_indexed_at is None:
                done = True  # the listing ends: the server has nothing older
                break
        if self._skipped:
            log.warning("Skipped %d malformed Bluesky notifications: %s", len(self._skipped), self._skipped)
        fresh: dict[str, tuple[float, InboundItem]] = {}
        for stamp, item in collected:
            fresh.setdefault(item.external_id, (stamp, item))
        items = [item for _, item in sorted(fresh.values(), key=lambda pair: (pair[0], pair[1].posted_at))]
        progress = Backfill(horizon=horizon, oldest=oldest, done=done, reached_horizon=reached)
        if not done:
            state = {"horizon": horizon, "page": page_cursor, "top": top, "seen": seen_list, "oldest": oldest}
            state["known"] = sorted(known)
            return Batch(items=items, next_cursor={**cursor, "backfill": state}, backfill=progress)
        rest = {key: value for key, value in cursor.items() if key != "backfill"}
        dms, chat_state = await self._fetch_dms(rest or None)
        merged: Cursor = {**rest, "watermark": top if top is not None else float(horizon), "seen": seen_list}
        merged["floor"] = float(horizon)
        if chat_state is not None:
            merged["chat"] = chat_state
        return Batch(items=items + dms, next_cursor=merged, backfill=progress)

    def _after_gap(
        self, cursor: Cursor, collected: list[tuple[float, InboundItem]], page_cursor: str, horizon: int
    ) -> Batch:
        """The first ``max_pages`` of a poll after a long gap: stored now, the rest read as a backfill."""
        known = [uri for uri in cursor.get("seen", []) if isinstance(uri, str)]  # stored by the last poll
        fresh: dict[str, tuple[float, InboundItem]] = {}
        for stamp, item in collected:
            if stamp >= horizon and item.external_id not in known:
                fresh.setdefault(item.external_id, (stamp, item))
        ordered = sorted(fresh.values(), key=lambda pair: (pair[0], pair[1].posted_at))
        top = max(stamp for stamp, _ in collected)
        seen_list = [item.external_id for _, item in reversed(ordered)][: self._seen_size]
        oldest = min((item.posted_at for _, item in ordered), default=None)
        state = {
            "horizon": horizon, "page": page_cursor, "top": top, "seen": seen_list, "oldest": oldest, "known": known,
        }  # fmt: skip
        return Batch(
            items=[item for _, item in ordered],
            next_cursor={**cursor, "backfill": state},
            backfill=Backfill(horizon=horizon, oldest=oldest, done=False),
        )

    async def fetch_new(self, cursor: Cursor | None) -> Batch:
        """Fetch customer posts (see :meth:`_fetch`); the batch carries the budget and the malformed entries.

        Raises:
            AuthExpired, RateLimited, Transient, Permanent: With the budget the answer left (``rate_limit``).
        """
        batch = await carrying_budget(self._fetch(cursor), lambda: self._rate_limit)
        return dataclasses.replace(batch, rejected=tuple(self._rejected))

    async def _fetch(self, cursor: Cursor | None) -> Batch:
        """Fetch customer posts newer than the watermark (channels.md §2 "Cursor semantics").

        The API pages only backwards, so every poll starts at the top and pages down until an entry is
        older than ``watermark - overlap`` (or ``max_pages``). Uris in the seen-set are dropped, so the
        overlap never yields duplicates. With no cursor only the newest page is read.

        Args:
            cursor: ``{"watermark": epoch seconds, "seen": [uri, ...], "floor": epoch seconds}`` or None;
                ``floor`` is the oldest entry of the first sync (older ones are history, never fetched).

        Returns:
            Items oldest first and ``{"watermark": max indexedAt, "seen": recent uris}``.

        Raises:
            AuthExpired, RateLimited, Transient, Permanent: See :mod:`console.channels.errors`.
        """
        backfill = cursor.get("backfill") if cursor else None
        if cursor and isinstance(backfill, dict):
            return await self._backfill(cursor, backfill)
        watermark = _float(cursor.get("watermark")) if cursor else None
        # Without a backfill cursor the first sync reads one page; what lies below it is history, not news.
        floor = _float(cursor.get("floor")) if cursor else None
        seen_list = [s for s in cursor.get("seen", []) if isinstance(s, str)] if cursor else []
        seen = set(seen_list)
        self._skipped = []
        self._rejected = []
        collected: list[tuple[float, InboundItem]] = []
        page_cursor: str | None = None
        gap = False  # max_pages read without getting down to the watermark: a long gap since the last poll
        for pages in range(1, self._max_pages + 1):
            page = await self._notifications_page(page_cursor)
            collected.extend(zip(page.indexed_at, page.items, strict=True))
            page_cursor = page.cursor
            if watermark is None or page_cursor is None or page.oldest_indexed_at is None:
                break
            if page.oldest_indexed_at < watermark - self._overlap:
                break
            gap = pages == self._max_pages
        if gap and watermark is not None and page_cursor is not None:
            # After a long gap the rest is read like a first sync's backlog, down to the old watermark, instead
            # of being skipped when the watermark jumps to the newest item (issue 20, sync 1).
            return self._after_gap(cursor or {}, collected, page_cursor, int(watermark - self._overlap))
        if self._skipped:
            log.warning("Skipped %d malformed Bluesky notifications: %s", len(self._skipped), self._skipped)
        fresh: dict[str, tuple[float, InboundItem]] = {}
        for stamp, item in collected:
            if item.external_id in seen or item.external_id in fresh:
                continue
            if watermark is not None and stamp < watermark - self._overlap:
                continue  # older than the rescan window: stored long ago or purged
            if floor is not None and stamp < floor:
                continue
            fresh[item.external_id] = (stamp, item)
        ordered = sorted(fresh.values(), key=lambda pair: (pair[0], pair[1].posted_at))
        stamps = [stamp for stamp, _ in collected]
        new_watermark = max([*stamps, *([watermark] if watermark is not None else [])], default=None)
        newest_first = [item.external_id for _, item in reversed(ordered)]
        next_seen = (newest_first + [uri for uri in seen_list if uri not in fresh])[: self._seen_size]
        if floor is None and stamps:
            floor = min(stamps)
        moved = new_watermark is not None and (cursor is None or collected)
        posts_cursor: Cursor | None = {"watermark": new_watermark, "seen": next_seen, "floor": floor} if moved else None
        dms, chat_state = await self._fetch_dms(cursor)
        items = [item for _, item in ordered] + dms
        if posts_cursor is None and chat_state is None:
            return Batch(items=items, next_cursor=None)
        merged: Cursor = dict(cursor or {})
        merged.update(posts_cursor or {})
        if chat_state is not None:
            merged["chat"] = chat_state
        return Batch(items=items, next_cursor=merged)

    async def _member(self, convo_id: str, did: str) -> tuple[str, str]:
        key = (convo_id, did)
        if key not in self._members:
            payload = await self._xrpc("GET", "chat.bsky.convo.getConvo", params=[("convoId", convo_id)], chat=True)
            convo = payload.get("convo") if isinstance(payload, dict) else None
            members = convo.get("members") if isinstance(convo, dict) else None
            for member in members if isinstance(members, list) else []:
                if isinstance(member, dict) and str_field(member, "did"):
                    handle = str_field(member, "handle")
                    self._members[(convo_id, str_field(member, "did"))] = (
                        handle,
                        str_field(member, "displayName") or handle,
                    )
        return self._members.get(key, ("", ""))

    async def _fetch_dms(self, cursor: Cursor | None) -> tuple[list[InboundItem], dict[str, Any] | None]:
        """New DMs from the forward chat log (``chat.bsky.convo.getLog``); the first run only finds its place."""
        if not self._dms:
            return [], None
        state = cursor.get("chat") if cursor else None
        first = not isinstance(state, dict)
        log_cursor = str_field(state, "cursor") if isinstance(state, dict) else ""
        # Messages sent before the first sync are history even if the log still has to page through them.
        since = _float(state.get("since")) if isinstance(state, dict) else None
        since = since if since is not None else self._clock.now()
        last_in = state.get("last", {}) if isinstance(state, dict) else {}
        last: dict[str, str] = (
            {k: v for k, v in last_in.items() if isinstance(v, str)} if isinstance(last_in, dict) else {}
        )
        session = await self._current_session()
        items: list[InboundItem] = []
        try:
            for _ in range(self._max_pages):
                params: Params = [("cursor", log_cursor)] if log_cursor else []
                payload = await self._xrpc("GET", "chat.bsky.convo.getLog", params=params, chat=True)
                try:
                    page = parse_chat_log(payload)
                except ValueError as exc:
                    raise Transient(f"{self._host} returned a malformed chat log: {exc}.") from exc
                for convo_id, message in page.messages:
                    external_id = chat_id(convo_id, str_field(message, "id"))
                    sender = str_field(message.get("sender", {}), "did")
                    try:
                        sent_at = parse_iso(message.get("sentAt"))
                    except ValueError:
                        sent_at = since
                    if not first and sender != session.did and sent_at >= since - self._overlap:
                        handle, name = await self._member(convo_id, sender)
                        try:
                            items.append(
                                parse_chat_message(
                                    convo_id, message, handle=handle, name=name, parent=last.get(convo_id)
                                )
                            )
                        except ValueError as exc:
                            log.warning("Skipped a malformed Bluesky DM %s: %s", external_id, exc)
                    last[convo_id] = external_id  # our own messages too: the next one answers them
                if page.cursor:
                    log_cursor = page.cursor
                if not page.size or page.cursor is None:
                    break
        except (AuthExpired, Permanent) as exc:
            # An app password without DM access is refused by the chat service, not by the PDS.
            log.info("Bluesky DMs are off for %s: %s", self._account.handle, exc)
            self._dms = False
            return [], None
        except (Transient, RateLimited) as exc:
            # Chat is a separate service behind the PDS's proxy; when it fails (the reference PDS answers 500
            # when it has no chat service to proxy to), the posts already read are still news: keep them,
            # keep the chat cursor where it was and read the DMs on a later poll.
            log.warning("Bluesky DMs of %s not read this time: %s", self._account.handle, exc)
            return [], None
        if len(last) > 500:
            last = dict(list(last.items())[-500:])
        return items, {"cursor": log_cursor, "last": last, "since": since}

    async def fetch_thread(self, external_id: str) -> list[InboundItem]:
        """The conversation around a post (``app.bsky.feed.getPostThread``).

        Args:
            external_id: The post's at-uri.

        Returns:
            Ancestors, the post, then replies.

        Raises:
            PostDeleted: The post is gone (``NotFound``, or a ``#notFoundPost`` view).
            PostBlocked: Its author blocks this account, or this account blocks them (``#blockedPost``).
            ChannelError: Any other failure.
        """
        payload = await self._xrpc(
            "GET", "app.bsky.feed.getPostThread", params=[("uri", external_id), ("depth", 10), ("parentHeight", 20)]
        )
        _raise_unavailable(payload)
        try:
            return parse_thread(payload)
        except ValueError as exc:
            raise Transient(f"{self._host} returned a malformed thread: {exc}.") from exc

    async def fetch_own_posts(self, cursor: Cursor | None, *, since: int | None) -> OwnPostsBatch:
        """The account's own replies, posted from any app (``app.bsky.feed.getAuthorFeed``, filter
        ``posts_with_replies``): one request per call once there is a cursor.

        The feed pages back in time only, so the cursor is ``{"did", "since": newest creation time read}`` and
        each read takes the newest page and keeps what was created since then (less ``OWN_POSTS_OVERLAP``: the
        creation time is the posting client's clock). A first read goes back to ``since`` in at most
        ``OWN_POSTS_FIRST_PAGES`` pages.

        Raises:
            ChannelError: The feed could not be read.
        """
        did = cursor.get("did") if cursor else None
        if not isinstance(did, str) or not did:
            did = (await self.verify()).external_id
        read_since = cursor.get("since") if cursor else None
        floor: int | None
        if isinstance(read_since, int) and not isinstance(read_since, bool):
            floor = read_since - OWN_POSTS_OVERLAP
        else:
            read_since, floor = None, since
        pages = 1 if read_since is not None else OWN_POSTS_FIRST_PAGES
        collected: list[OwnPost] = []
        newest = read_since
        page_cursor: str | None = None
        more = False
        for _page in range(pages):
            params: Params = [("actor", did), ("filter", "posts_with_replies"), ("limit", OWN_POSTS_LIMIT)]
            if page_cursor is not None:
                params.append(("cursor", page_cursor))
            payload = await self._xrpc("GET", "app.bsky.feed.getAuthorFeed", params=params)
            try:
                page = parse_author_feed(payload, did)
            except ValueError as exc:
                raise Transient(f"{self._host} returned a malformed author feed: {exc}.") from exc
            if page.times:
                newest = max(newest or 0, *page.times)
            collected += [post for post in page.replies if floor is None or post.posted_at >= floor]
            reached = floor is None or any(t < floor for t in page.times)
            more = page.cursor is not None and not reached
            if not more or page.cursor is None:
                break
            page_cursor = page.cursor
        collected.sort(key=lambda post: (post.posted_at, post.external_id))
        next_cursor: Cursor = {"did": did, "since": newest if newest is not None else (since or 0)}
        return OwnPostsBatch(collected, next_cursor, has_more=more)

    async def check_statuses(self, known: Mapping[str, str | None]) -> StatusCheck:
        """Re-read stored posts to catch deletions (Bluesky sends no notification for them; posts have no edits).

        ``app.bsky.feed.getPosts`` (25 uris a call) leaves out posts it cannot show; each missing one is then
        asked for with ``getPostThread``, so that a post hidden by a block is not taken for a deleted one.

        Args:
            known: ``{at-uri: ignored}`` of the stored posts to check (DM ids are skipped).

        Returns:
            No edits, and the at-uris of the deleted posts.

        Raises:
            AuthExpired, RateLimited, Transient: The check could not run; nothing is concluded.
        """
        uris = [uri for uri in known if _at_parts(uri) is not None]
        deleted: list[str] = []
        for start in range(0, len(uris), 25):
            chunk = uris[start : start + 25]
            payload = await self._xrpc("GET", "app.bsky.feed.getPosts", params=[("uris", uri) for uri in chunk])
            posts = payload.get("posts") if isinstance(payload, dict) else None
            if not isinstance(posts, list):
                raise Transient(f"{self._host} returned malformed data for getPosts.")
            shown = {str_field(post, "uri") for post in posts if isinstance(post, dict)}
            for uri in chunk:
                if uri in shown:
                    continue
                try:
                    await self.fetch_thread(uri)
                except PostDeleted:
                    deleted.append(uri)
                except PostBlocked:
                    continue
        return StatusCheck(edited=[], deleted=deleted)

    async def _get_record(self, uri: str) -> tuple[str, dict[str, Any]]:
        parts = _at_parts(uri)
        if parts is None:
            raise Permanent(f"{uri!r} is not a Bluesky post address.")
        did, collection, rkey = parts
        payload = await self._xrpc(
            "GET", "com.atproto.repo.getRecord", params=[("repo", did), ("collection", collection), ("rkey", rkey)]
        )
        if not isinstance(payload, dict) or not str_field(payload, "cid") or not isinstance(payload.get("value"), dict):
            raise Transient(f"{self._host} returned a malformed record for {uri}.")
        return str_field(payload, "cid"), payload["value"]

    async def send_reply(
        self, target: ReplyTarget, text: str, *, idempotency_key: str, visibility: str | None = None
    ) -> ReplyReceipt:
        """Reply in the post's thread (``com.atproto.repo.createRecord``) with correct root and parent refs.

        The parent's cid and its own ``reply.root`` are read fresh (``getRecord``), so the reply lands in the
        right thread even for deep replies. ``@handle`` of the customer gets a mention facet carrying their
        DID (with UTF-8 byte offsets) so they are notified; links get link facets.

        Args:
            target: The post answered (its at-uri and author handle).
            text: The reply; at most 300 graphemes and 3000 bytes.
            idempotency_key: Unused by the API (Bluesky has no idempotency key; the outbox guards retries).
            visibility: Ignored: Bluesky posts are public.

        Returns:
            The new post's at-uri, bsky.app link and time.

        Raises:
            Permanent: Too long, or the parent was deleted.
            ChannelError: Any other failure.
        """
        del idempotency_key, visibility
        chat = split_chat_id(target.external_id)
        if chat is not None:
            return await self._send_dm(chat[0], text)
        _check_post(text, "reply")
        session = await self._current_session()
        parent_cid, parent_record = await self._get_record(target.external_id)
        root, parent = reply_refs(target.external_id, parent_cid, parent_record)
        parts = _at_parts(target.external_id)
        mentions = {target.author_handle: parts[0]} if parts and target.author_handle else {}
        reply = {"root": root.as_json(), "parent": parent.as_json()}
        uri, now = await self._create_post(session, text, mentions=mentions, reply=reply)
        return ReplyReceipt(external_id=uri, url=permalink(uri, session.handle), posted_at=math.floor(now))

    async def post_status(self, text: str, *, idempotency_key: str, visibility: str = "public") -> ReplyReceipt:
        """Post ``text`` as a post of the account's own, answering no one (``createRecord`` with a chosen rkey).

        Used for the capacity update. Links get link facets as in replies; no handle is added or resolved.
        Bluesky has no idempotency key, so the record key is derived from ``idempotency_key``
        (:func:`status_rkey`) and a retry names the same record. A repo holds one record per key: creating
        it again fails (the reference PDS answers 500 ``InternalServerError``, bluesky-social/atproto#3718;
        other PDSes 409 ``RecordAlreadyExists``), so after a failed create the record is read back with
        ``getRecord`` and, when it is there, its receipt is returned: a retry after a crash or a lost answer
        never makes a second post.

        Args:
            text: The status text; at most 300 graphemes and 3000 bytes (checked before sending).
            idempotency_key: Stable across retries of this one post.
            visibility: Ignored: Bluesky posts are public.

        Returns:
            The post's at-uri, bsky.app link and time (its ``createdAt`` when it was found already posted).

        Raises:
            Permanent: Empty or too long (nothing is sent), or the PDS refused the record.
            ChannelError: Any other failure; a retry with the same key is safe.
        """
        del visibility
        _check_post(text, "status update")
        session = await self._current_session()
        rkey = status_rkey(idempotency_key)
        try:
            uri, now = await self._create_post(session, text, mentions={}, rkey=rkey)
        except (Transient, Permanent):
            found = await self._posted_status(f"at://{session.did}/{POST_COLLECTION}/{rkey}", text)
            if found is None:
                raise
            log.info("Bluesky status post %s was already posted; not posting it again", found.external_id)
            return found
        return ReplyReceipt(external_id=uri, url=permalink(uri, session.handle), posted_at=math.floor(now))

    async def _posted_status(self, uri: str, text: str) -> ReplyReceipt | None:
        """The receipt of the status post stored at ``uri``, or None when there is no record there."""
        try:
            _cid, record = await self._get_record(uri)
        except _RecordNotFound:
            return None
        if record.get("text") != text:
            raise Permanent(f"Another post already has the record key of this status update ({uri}); not posted.")
        session = await self._current_session()
        try:
            posted_at = _time(record.get("createdAt"))
        except ValueError:
            posted_at = math.floor(self._clock.now())
        return ReplyReceipt(external_id=uri, url=permalink(uri, session.handle), posted_at=posted_at)

    async def _create_post(
        self,
        session: _Session,
        text: str,
        *,
        mentions: Mapping[str, str],
        reply: dict[str, Any] | None = None,
        rkey: str | None = None,
    ) -> tuple[str, float]:
        """Create an ``app.bsky.feed.post`` record with mention and link facets; its at-uri and creation time."""
        now = self._clock.now()
        record: dict[str, Any] = {"$type": POST_COLLECTION, "text": text, "createdAt": _iso_z(now)}
        if reply is not None:
            record["reply"] = reply
        facets = build_facets(text, mentions)
        if facets:
            record["facets"] = facets
        body: dict[str, Any] = {"repo": session.did, "collection": POST_COLLECTION, "record": record}
        if rkey is not None:
            body["rkey"] = rkey
        payload = await self._xrpc("POST", "com.atproto.repo.createRecord", body=body)
        uri = str_field(payload, "uri") if isinstance(payload, dict) else ""
        if not uri:
            raise Transient(f"{self._host} returned malformed data for createRecord: no uri.")
        return uri, now

    async def _send_dm(self, convo_id: str, text: str) -> ReplyReceipt:
        if grapheme_count(text) > MAX_DM_GRAPHEMES or len(text.encode("utf-8")) > MAX_DM_BYTES:
            raise Permanent(f"The message is longer than Bluesky's {MAX_DM_GRAPHEMES} characters for DMs.")
        if not text.strip():
            raise Permanent("The reply is empty.")
        payload = await self._xrpc(
            "POST", "chat.bsky.convo.sendMessage", body={"convoId": convo_id, "message": {"text": text}}, chat=True
        )
        message_id = str_field(payload, "id") if isinstance(payload, dict) else ""
        if not message_id:
            raise Transient(f"{self._host} returned malformed data for sendMessage.")
        try:
            sent = _time(payload.get("sentAt"))
        except ValueError:
            sent = math.floor(self._clock.now())
        return ReplyReceipt(external_id=chat_id(convo_id, message_id), url="", posted_at=sent)

    async def aclose(self) -> None:
        """Forget the cached session (the client belongs to the caller)."""
        self._session = None


class _RecordNotFound(Permanent):
    """``getRecord`` found nothing at the address (XRPC error ``RecordNotFound``)."""


class PostDeleted(Permanent):
    """The customer deleted the post: the AppView answers ``NotFound`` or shows a ``#notFoundPost``."""


class PostBlocked(Permanent):
    """A block stands between the account and the post's author, so the AppView shows a ``#blockedPost``."""


def _raise_unavailable(payload: object) -> None:
    """Raise when a ``getPostThread`` answer holds no post but a deleted or blocked placeholder.

    A block shows as ``{"$type": "app.bsky.feed.defs#blockedPost", "blocked": true, "author": {"did",
    "viewer": {"blockedBy" | "blocking"}}}`` (seen on the reference AppView); a deleted post as a 400
    ``NotFound`` error (handled in ``_fail``) or a ``#notFoundPost`` view.
    """
    thread = payload.get("thread") if isinstance(payload, dict) else None
    if not isinstance(thread, dict):
        return
    kind = str_field(thread, "$type")
    if kind.endswith("#notFoundPost") or thread.get("notFound") is True:
        raise PostDeleted("The post was deleted on Bluesky.")
    if kind.endswith("#blockedPost") or thread.get("blocked") is True:
        author = thread.get("author")
        viewer = author.get("viewer") if isinstance(author, dict) else None
        if isinstance(viewer, dict) and viewer.get("blocking"):
            raise PostBlocked("This account blocks the author on Bluesky: unblock them to read or answer the post.")
        raise PostBlocked("The author has blocked this account on Bluesky: the post cannot be read or answered.")


def _check_post(text: str, what: str) -> None:
    """Refuse an empty post or one over the lexicon's limits before anything is sent."""
    if grapheme_count(text) > MAX_POST_GRAPHEMES or len(text.encode("utf-8")) > MAX_POST_BYTES:
        raise Permanent(f"The {what} is longer than Bluesky's {MAX_POST_GRAPHEMES} characters.")
    if not text.strip():
        raise Permanent(f"The {what} is empty.")


def _loads(text: str | None) -> object:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _float(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _session_expired(response: httpx.Response) -> bool:
    """The access JWT ran out or was refused: refresh the session once and send again."""
    error, _ = _xrpc_error(response)
    return error in _EXPIRED_ERRORS or response.status_code == 401


def _xrpc_error(response: httpx.Response) -> tuple[str, str]:
    body = error_json(response)
    if not isinstance(body, dict):
        return "", ""
    return str_field(body, "error"), str_field(body, "message")
