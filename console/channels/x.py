"""X API v2 connector: mentions timeline with since_id, replies, OAuth 2 token refresh with rotation."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
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
    parse_iso,
    raise_for_status,
    refresh_grant,
    retry_time,
    sent_at_most_once,
    str_field,
)
from console.ports import Clock, SecretStore
from storage.rows import MentionKind

__all__ = [
    "ACCESS_NOTE",
    "DEFAULT_BASE_URL",
    "MAX_WEIGHTED_LENGTH",
    "SCOPES",
    "MentionsPage",
    "XConnector",
    "XTokens",
    "parse_mentions",
    "parse_tokens",
    "weighted_length",
]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.x.com"
AUTHORIZE_URL = "https://x.com/i/oauth2/authorize"
SCOPES = ("tweet.read", "tweet.write", "users.read", "offline.access")
MAX_WEIGHTED_LENGTH = 280
TWEET_FIELDS = ",".join(
    (
        "created_at",
        "author_id",
        "conversation_id",
        "in_reply_to_user_id",
        "referenced_tweets",
        "entities",
        "edit_history_tweet_ids",
        "note_tweet",
    )
)
#: What the accounts dialog tells the agent before they connect X (channels.md §3 "Pricing", "Reply restriction").
ACCESS_NOTE = (
    "The X API is paid: every post read and every reply is billed to your developer account's credits, and "
    "replies that contain a link cost more. Self-serve apps may only reply to posts that mention your account "
    "or quote one of its posts; other replies are refused. Only the 800 most recent mentions can be read. "
    "Without paid access, use Manual intake for X posts."
)
_REFRESH_MARGIN = 60.0
#: What a status post is called in messages (and how :meth:`XConnector._fail` tells it from a reply).
_POST_STATUS = "POST /2/tweets (status update)"

# --------------------------------------------------------------------------------------------------------
# Pure parsing
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MentionsPage:
    items: list[InboundItem] = field(default_factory=list)  # newest first, as sent
    newest_id: str | None = None
    next_token: str | None = None
    skipped: list[tuple[str, str]] = field(default_factory=list)
    #: Each ``skipped`` entry with its raw JSON, same order (for the quarantine).
    rejected: list[Rejected] = field(default_factory=list)


def _id_key(value: str) -> tuple[int, str]:
    return (len(value), value)


def parse_mentions(payload: object) -> MentionsPage:
    """Parse ``GET /2/users/{id}/mentions``: tweets with their authors from ``includes.users``.

    Edits get a new id each time; the item's id is the first of ``edit_history_tweet_ids`` so an edited
    post is one item (channels.md §3 pitfalls), and ``raw["latest_id"]`` is the version shown. Long posts
    take their full text from ``note_tweet``.

    Args:
        payload: The decoded body ``{"data"?, "includes"?, "meta", "errors"?}``.

    Returns:
        The page.

    Raises:
        ValueError: The body is not an object or ``data`` is not a list.
    """
    if not isinstance(payload, dict):
        raise ValueError("expected an object")
    data = payload.get("data", [])
    if not isinstance(data, list):
        raise ValueError("data is not a list")
    users: dict[str, dict[str, Any]] = {}
    includes = payload.get("includes")
    if isinstance(includes, dict) and isinstance(includes.get("users"), list):
        for user in includes["users"]:
            if isinstance(user, dict) and str_field(user, "id"):
                users[str_field(user, "id")] = user
    items: list[InboundItem] = []
    skips = Skips()
    skip = skips.skip

    for tweet in data:
        if not isinstance(tweet, dict) or not str_field(tweet, "id"):
            skip("?", "tweet without id", tweet)
            continue
        tweet_id = str_field(tweet, "id")
        author_id = str_field(tweet, "author_id")
        user = users.get(author_id, {})
        username = str_field(user, "username")
        if not author_id or not username:
            skip(tweet_id, "author missing from includes.users", tweet)
            continue
        try:
            posted_at = math.floor(parse_iso(tweet.get("created_at")))
        except ValueError:
            skip(tweet_id, "no created_at", tweet)
            continue
        note = tweet.get("note_tweet")
        text = (
            str_field(note, "text") if isinstance(note, dict) and str_field(note, "text") else str_field(tweet, "text")
        )
        history = tweet.get("edit_history_tweet_ids")
        original = history[0] if isinstance(history, list) and history and isinstance(history[0], str) else tweet_id
        parent = None
        refs = tweet.get("referenced_tweets")
        if isinstance(refs, list):
            parent = next(
                (
                    str_field(r, "id")
                    for r in refs
                    if isinstance(r, dict) and r.get("type") == "replied_to" and str_field(r, "id")
                ),
                None,
            )
        items.append(
            InboundItem(
                external_id=original,
                author_id=author_id,
                author_handle=username,
                author_name=str_field(user, "name") or username,
                text=text,
                url=f"https://x.com/{username}/status/{tweet_id}",
                posted_at=posted_at,
                kind=MentionKind.PUBLIC,
                visibility="public",
                parent_external_id=parent,
                raw={"id": original, "latest_id": tweet_id, "conversation_id": str_field(tweet, "conversation_id")},
            )
        )
    meta = payload.get("meta")
    newest = str_field(meta, "newest_id") if isinstance(meta, dict) else ""
    token = str_field(meta, "next_token") if isinstance(meta, dict) else ""
    return MentionsPage(items, newest or None, token or None, skips.skipped, skips.rejected)


def weighted_length(text: str) -> int:
    """X's weighted length (twitter-text v3), the one count of it in the app (the composer uses it too).

    twitter-text-parser implements it and passes twitter-text's published conformance cases
    (tests/data/twitter_text/): text is NFC-normalised, a link counts 23 whether or not it has a scheme
    (a bare ``example.com`` too), an emoji sequence (skin tone, ZWJ) counts 2, CJK 2, Latin 1.

    Args:
        text: The post text.

    Returns:
        The length to compare with :data:`MAX_WEIGHTED_LENGTH`.
    """
    # Imported here: the library compiles its large URL and emoji patterns on import (about 250 ms), which
    # start-up should not pay when no X account is used.
    from twitter_text import parse_tweet

    return int(parse_tweet(text).weightedLength)


@dataclass(frozen=True, slots=True)
class XTokens:
    """OAuth 2 tokens, stored as JSON under ``x:<account id>``."""

    access_token: str
    refresh_token: str
    expires_at: float
    client_id: str

    def dumps(self) -> str:
        return json.dumps(
            {
                "access_token": self.access_token,
                "refresh_token": self.refresh_token,
                "expires_at": self.expires_at,
                "client_id": self.client_id,
            }
        )


def parse_tokens(text: str | None) -> XTokens | None:
    """Read stored tokens; None when absent or unreadable."""
    try:
        data = json.loads(text) if text else None
    except ValueError:
        return None
    if not isinstance(data, dict) or not str_field(data, "access_token"):
        return None
    expires = data.get("expires_at")
    return XTokens(
        access_token=str_field(data, "access_token"),
        refresh_token=str_field(data, "refresh_token"),
        expires_at=float(expires) if isinstance(expires, int | float) else 0.0,
        client_id=str_field(data, "client_id"),
    )


# --------------------------------------------------------------------------------------------------------
# The connector
# --------------------------------------------------------------------------------------------------------


class XConnector:
    """Mentions of one X account and replies to them (channels.md §3).

    Tokens rotate on every refresh (the old refresh token stops working), so refreshes run under one
    ``asyncio.Lock`` per account and the new pair is written to the secret store before it is used.
    """

    kind: ClassVar[str] = "x"
    #: X has no idempotency key: the outbox fails a status post it finds half-sent after a crash instead of
    #: sending it again (see :meth:`post_status`).
    status_idempotent: ClassVar[bool] = False

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        account: AccountRef,
        secrets: SecretStore,
        clock: Clock,
        page_size: int = 100,
        max_pages: int = 8,
    ) -> None:
        """Wire the connector.

        Args:
            client: A long-lived client owned by the caller.
            account: ``base_url`` is the API (``https://api.x.com``; loopback in tests).
            secrets: Holds the tokens JSON under ``x:<id>``.
            clock: Time source (token expiry, rate-limit arithmetic).
            page_size: ``max_results`` (5..100).
            max_pages: Pages per :meth:`fetch_new` at most (800 mentions are reachable at all).
        """
        self._client = client
        self._account = account
        self._secrets = secrets
        self._clock = clock
        self._page_size = max(5, min(100, page_size))
        self._max_pages = max_pages
        self._base_url = (account.base_url or DEFAULT_BASE_URL).rstrip("/")
        self._host = urlsplit(self._base_url).netloc or self._base_url
        self._key = f"x:{account.id}"
        self._tokens: XTokens | None = None
        self._user_id: str | None = None
        self._rejected: list[Rejected] = []
        #: The ``x-rate-limit-*`` headers of the latest response that carried them.
        self._rate_limit: RateLimitInfo | None = None
        self._lock = asyncio.Lock()

    async def _load(self) -> XTokens:
        if self._tokens is None:
            text = await read_secret(
                self._secrets, self._key, unreadable=f"Could not read the X tokens of {self._account.handle}"
            )
            tokens = parse_tokens(text)
            if tokens is None:
                raise AuthExpired(f"No X sign-in stored for @{self._account.handle}; re-authenticate the account.")
            self._tokens = tokens
        return self._tokens

    async def _refresh(self, stale: XTokens) -> XTokens:
        async with self._lock:
            if self._tokens is not None and self._tokens.access_token != stale.access_token:
                return self._tokens  # another task already refreshed
            if not stale.refresh_token:
                raise AuthExpired(f"The X sign-in of @{self._account.handle} expired; re-authenticate.")
            grant = await refresh_grant(
                self._client,
                self._base_url + "/2/oauth2/token",
                host=self._host,
                what="POST /2/oauth2/token",
                form={
                    "grant_type": "refresh_token",
                    "refresh_token": stale.refresh_token,
                    "client_id": stale.client_id,
                },
                fail=self._fail,
            )
            if grant is None:
                self._tokens = None  # read the store again: the agent may sign in anew
                raise AuthExpired(f"X refused to renew the sign-in of @{self._account.handle}; re-authenticate.")
            tokens = XTokens(
                access_token=grant.access_token,
                refresh_token=grant.refresh_token or stale.refresh_token,
                expires_at=self._clock.now() + (7200.0 if grant.expires_in is None else grant.expires_in),
                client_id=stale.client_id,
            )
            try:
                await asyncio.to_thread(self._secrets.set, self._key, tokens.dumps())
            except Exception as exc:  # the old refresh token is already revoked: keep going this session
                log.warning("Could not save the renewed X tokens of %s: %s", self._account.handle, exc)
            self._tokens = tokens
            return tokens

    async def _fresh_tokens(self) -> XTokens:
        """The stored tokens, renewed first when they run out within the margin."""
        tokens = await self._load()
        if tokens.expires_at and tokens.expires_at - _REFRESH_MARGIN <= self._clock.now():
            tokens = await self._refresh(tokens)
        return tokens

    async def _call(
        self, method: str, path: str, *, params: Params | None = None, body: Any = None, what: str = ""
    ) -> Any:
        tokens = await self._fresh_tokens()
        return await call_json(
            self._client,
            method,
            self._base_url + path,
            host=self._host,
            what=what or f"{method} {path}",
            fail=self._fail,
            credential=tokens,
            authorize=lambda current: bearer(current.access_token),
            renew=self._refresh,
            params=params,
            json=body,
            on_response=self._note_budget,
        )

    def _fail(self, response: httpx.Response, what: str) -> NoReturn:
        now = self._clock.now()
        body = error_json(response)
        problem = body if isinstance(body, dict) else {}
        kind = str_field(problem, "type").rsplit("/", 1)[-1]
        detail = str_field(problem, "detail") or str_field(problem, "title") or response.reason_phrase
        if response.status_code == 429 and kind == "usage-capped":
            reset = epoch_header(response.headers, "x-rate-limit-reset")
            raise RateLimited(
                f"The X API credits or monthly cap are used up ({detail}); add credits in the developer console.",
                retry_at=reset if reset and reset > now else now + 3600,
            )
        if response.status_code == 403 and what == _POST_STATUS:
            raise Permanent(f"X refused the post ({detail}).", status=403)
        if response.status_code == 403 and what.startswith("POST /2/tweets"):
            raise Permanent(
                f"X refused the reply ({detail}). Self-serve apps may only reply to posts that mention the "
                "account or quote it; answer this one on x.com instead.",
                status=403,
            )
        if response.status_code == 403 and kind == "client-forbidden":
            raise AuthExpired(f"X says this app has no API access ({detail}); check the developer console.")
        retry_at = retry_time(response.headers, now=now, reset_at=epoch_header(response.headers, "x-rate-limit-reset"))
        raise_for_status(response, host=self._host, what=what, reason=detail[:300], retry_at=retry_at, now=now)

    async def _me(self) -> dict[str, Any]:
        payload = await self._call("GET", "/2/users/me")
        user = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(user, dict) or not str_field(user, "id"):
            raise Transient(f"{self._host} returned malformed data for GET /2/users/me.")
        self._user_id = str_field(user, "id")
        return user

    # -- Connector protocol ---------------------------------------------------------------------------

    async def verify(self) -> Identity:
        """Check the sign-in (``GET /2/users/me``).

        Returns:
            The user id, @username and name.

        Raises:
            AuthExpired: The tokens are refused and cannot be renewed.
            ChannelError: Any other failure.
        """
        user = await self._me()
        return Identity(
            str_field(user, "id"), str_field(user, "username"), str_field(user, "name") or str_field(user, "username")
        )

    def backfill_cursor(self, horizon: int) -> Cursor:
        """A first sync reading mentions back to ``horizon`` (``start_time``; X serves the newest 800 at most)."""
        return {"start_time": int(horizon)}

    def _note_budget(self, response: httpx.Response) -> None:
        info = epoch_budget(response.headers, "x-rate-limit-")
        if info is not None:
            self._rate_limit = info

    async def fetch_new(self, cursor: Cursor | None) -> Batch:
        """Mentions newer than the cursor (see :meth:`_fetch`); the batch carries the budget and malformed posts.

        Raises:
            AuthExpired, RateLimited, Transient, Permanent: With the budget the answer left (``rate_limit``).
        """
        self._rejected = []
        batch = await carrying_budget(self._fetch(cursor), lambda: self._rate_limit)
        return dataclasses.replace(batch, rejected=tuple(self._rejected))

    async def _fetch(self, cursor: Cursor | None) -> Batch:
        """Mentions newer than ``since_id``, following ``next_token`` to the end (channels.md §3).

        The cursor moves to the newest id only after every page was read. With no cursor only the newest
        page is read (each post read is billed); a first sync started with :meth:`backfill_cursor` reads every
        page since its ``start_time`` (issue 20, sync 1).

        Args:
            cursor: ``{"since_id": "<tweet id>"}``, ``{"start_time": epoch seconds}`` or None.

        Returns:
            Items oldest first and ``{"since_id": newest id}`` (None when nothing new).

        Raises:
            AuthExpired, RateLimited, Transient, Permanent: See :mod:`console.channels.errors`.
        """
        since = cursor.get("since_id") if cursor else None
        since_id = since if isinstance(since, str) and since.isdigit() else None
        start = cursor.get("start_time") if cursor and since_id is None else None
        start_time = start if isinstance(start, int) and not isinstance(start, bool) else None
        user_id = self._user_id or str_field(await self._me(), "id")
        items: dict[str, InboundItem] = {}
        newest: str | None = None
        token: str | None = None
        for _ in range(self._max_pages):
            params: Params = [
                ("max_results", self._page_size),
                ("tweet.fields", TWEET_FIELDS),
                ("expansions", "author_id,referenced_tweets.id"),
                ("user.fields", "username,name"),
            ]
            if since_id:
                params.append(("since_id", since_id))
            elif start_time is not None:
                params.append(("start_time", datetime.fromtimestamp(start_time, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")))
            if token:
                params.append(("pagination_token", token))
            payload = await self._call("GET", f"/2/users/{user_id}/mentions", params=params)
            try:
                page = parse_mentions(payload)
            except ValueError as exc:
                raise Transient(f"{self._host} returned malformed mentions: {exc}.") from exc
            self._rejected.extend(page.rejected)
            if page.skipped:
                log.warning("Skipped %d malformed X mentions: %s", len(page.skipped), page.skipped)
            for item in page.items:
                items.setdefault(item.external_id, item)
            if page.newest_id and (newest is None or _id_key(page.newest_id) > _id_key(newest)):
                newest = page.newest_id
            token = page.next_token
            if token is None or (since_id is None and start_time is None):
                break
        ordered = sorted(items.values(), key=lambda item: _id_key(str(item.raw.get("latest_id", item.external_id))))
        if since_id is not None and newest is not None and _id_key(newest) <= _id_key(since_id):
            newest = None
        backfill = None
        if start_time is not None:
            # Done either way: X serves the newest 800 mentions at most, and start_time bounds them.
            oldest = min((item.posted_at for item in ordered), default=None)
            backfill = Backfill(horizon=start_time, oldest=oldest, done=True, reached_horizon=token is None)
        return Batch(items=ordered, next_cursor={"since_id": newest} if newest else None, backfill=backfill)

    async def fetch_thread(self, external_id: str) -> list[InboundItem]:
        """X threads are not fetched (each read is billed); the stored conversation is used."""
        del external_id
        return []

    async def send_reply(
        self, target: ReplyTarget, text: str, *, idempotency_key: str, visibility: str | None = None
    ) -> ReplyReceipt:
        """Reply with ``POST /2/tweets {"text", "reply": {"in_reply_to_tweet_id"}}``.

        Args:
            target: The post answered.
            text: At most 280 weighted characters (links count 23).
            idempotency_key: Unused (X has none; the outbox guards retries).
            visibility: Ignored (posts are public).

        Returns:
            The new post's id and link.

        Raises:
            Permanent: Too long, or X refused the reply (the post did not mention the account).
            ChannelError: Any other failure.
        """
        del idempotency_key, visibility
        length = weighted_length(text)
        if length > MAX_WEIGHTED_LENGTH:
            raise Permanent(f"The reply is {length} characters; X allows {MAX_WEIGHTED_LENGTH}.")
        payload = await self._call(
            "POST", "/2/tweets", body={"text": text, "reply": {"in_reply_to_tweet_id": target.external_id}}
        )
        return self._posted(payload)

    async def post_status(self, text: str, *, idempotency_key: str, visibility: str = "public") -> ReplyReceipt:
        """Post ``text`` as a post of the account's own, answering no one (``POST /2/tweets {"text"}``).

        Used for the capacity update. X has no idempotency key, so ``idempotency_key`` is unused and a post
        is sent at most once: when the outcome is unknown (a timeout after the request went out, a 5xx, a
        connection closed unanswered, an unreadable answer) it fails as :class:`Permanent` ("may have been
        posted") rather than being retried, and :attr:`status_idempotent` tells the outbox to fail a post it
        finds half-sent after a crash instead of sending it again. A refusal (sign-in, rate limit, 4xx) or a
        connection never made is certain and keeps its own error, so the outbox retries it.

        Args:
            text: The status text; at most 280 weighted characters (links count 23), checked before sending.
            idempotency_key: Unused (X has none).
            visibility: Ignored (posts are public).

        Returns:
            The new post's id, link and time.

        Raises:
            Permanent: Empty or too long (nothing is sent), refused by X, or possibly posted already.
            AuthExpired, RateLimited, Transient: X did not take it, for sure; it may be sent again.
        """
        del idempotency_key, visibility
        if not text.strip():
            raise Permanent("The status update is empty.")
        length = weighted_length(text)
        if length > MAX_WEIGHTED_LENGTH:
            raise Permanent(f"The status update is {length} characters; X allows {MAX_WEIGHTED_LENGTH}.")
        await self._fresh_tokens()  # a failed renewal is certain: nothing was posted
        with sent_at_most_once(
            "X may have posted the status update",
            "It is not sent again, because X has no idempotency key: check the account's posts.",
        ):
            return self._posted(await self._call("POST", "/2/tweets", body={"text": text}, what=_POST_STATUS))

    def _posted(self, payload: object) -> ReplyReceipt:
        """The receipt of a created post (``{"data": {"id", "text"}}``)."""
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, dict) or not str_field(data, "id"):
            raise Transient(f"{self._host} returned malformed data for POST /2/tweets.")
        tweet_id = str_field(data, "id")
        handle = self._account.handle.removeprefix("@") or "i"
        return ReplyReceipt(tweet_id, f"https://x.com/{handle}/status/{tweet_id}", math.floor(self._clock.now()))

    async def aclose(self) -> None:
        """Forget cached tokens (the client belongs to the caller)."""
        self._tokens = None
