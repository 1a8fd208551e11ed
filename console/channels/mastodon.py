"""Mastodon connector: pure parsers for the REST API's JSON and an httpx client for mentions and replies."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from html import unescape
from html.parser import HTMLParser
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
    RateLimitInfo,
    Rejected,
    ReplyReceipt,
    ReplyTarget,
    carrying_budget,
    read_secret,
)
from console.channels.errors import AuthExpired, ChannelError, Permanent, RateLimited, Transient
from console.channels.http import (
    Params,
    error_json,
    grapheme_count,
    json_body,
    parse_iso,
    parse_retry_after,
    raise_for_status,
    retry_time,
    send,
    str_field,
)
from console.ports import Clock, SecretStore
from storage.rows import MentionKind

__all__ = [
    "InstanceLimits",
    "MastodonConnector",
    "ParsedPage",
    "RateLimitInfo",
    "StatusCheck",
    "html_to_text",
    "html_to_text_fast",
    "html_to_text_reference",
    "id_key",
    "parse_instance",
    "parse_notifications",
    "parse_rate_limit",
    "parse_retry_after",
    "parse_status",
    "parse_time",
    "reply_length",
]

log = logging.getLogger(__name__)

#: Mastodon's defaults when an instance does not publish its own (channels.md §1 "Text limit").
DEFAULT_MAX_CHARACTERS = 500
#: Statuses per read of the account's own posts (Mastodon's maximum for this list).
OWN_POSTS_LIMIT = 40
#: A first read of the account's own posts goes back at most this many pages.
OWN_POSTS_FIRST_PAGES = 3
DEFAULT_CHARACTERS_RESERVED_PER_URL = 23

# --------------------------------------------------------------------------------------------------------
# Pure parsing
# --------------------------------------------------------------------------------------------------------

#: Tags that start and end a paragraph (Mastodon 4 keeps these for remote content).
_BLOCK_TAGS = frozenset(
    {"p", "div", "blockquote", "pre", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article"}
)
#: Tags whose text must never reach the agent.
_SKIPPED_TAGS = frozenset({"script", "style", "template", "head", "title"})


class _TextExtractor(HTMLParser):
    """Collects the readable text of Mastodon's sanitized status HTML, paragraph by paragraph."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._blocks: list[str] = []
        self._current: list[str] = []
        self._spans: list[str] = []  # one class marker per open <span>: "invisible", "ellipsis" or ""
        self._hidden = 0  # open span.invisible elements
        self._skipping = 0  # open script/style-like elements

    def _visible(self) -> bool:
        return self._hidden == 0 and self._skipping == 0

    def _break_block(self) -> None:
        self._blocks.append("".join(self._current))
        self._current = []

    def _break_line(self) -> None:
        # List items start on their own line, without blank lines between consecutive items.
        if self._current and not self._current[-1].endswith("\n"):
            self._current.append("\n")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping += 1
        elif tag == "br":
            if self._visible():
                self._current.append("\n")
        elif tag in _BLOCK_TAGS:
            self._break_block()
        elif tag == "li":
            self._break_line()
        elif tag == "span":
            classes = " ".join(value or "" for name, value in attrs if name == "class").split()
            if "invisible" in classes:
                self._spans.append("invisible")
                self._hidden += 1
            elif "ellipsis" in classes:
                self._spans.append("ellipsis")
            else:
                self._spans.append("")
        elif tag == "img" and self._visible():
            alt = next((value for name, value in attrs if name == "alt" and value), None)
            if alt:
                self._current.append(alt)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self._break_block()
        elif tag == "li":
            self._break_line()
        elif tag == "span" and self._spans:
            marker = self._spans.pop()
            if marker == "invisible":
                self._hidden -= 1
            elif marker == "ellipsis" and self._visible():
                # Mastodon's web client draws the ellipsis with CSS (::after); text clients append it.
                self._current.append("…")

    def handle_data(self, data: str) -> None:
        if self._visible():
            self._current.append(data)

    def parse_marked_section(self, i: int, report: bool = True) -> int:
        # The stdlib raises AssertionError on unknown "<![keyword" sections; treat them as bogus comments.
        try:
            return super().parse_marked_section(i, report)
        except AssertionError:
            end = self.rawdata.find(">", i + 3)
            return -1 if end < 0 else end + 1

    def text(self) -> str:
        blocks = [*self._blocks, "".join(self._current)]
        paragraphs: list[str] = []
        for block in blocks:
            cleaned = "\n".join(line.rstrip() for line in block.split("\n")).strip()
            if cleaned:
                paragraphs.append(cleaned)
        return "\n\n".join(paragraphs)


def html_to_text(content: str) -> str:
    """Turn a status's sanitized HTML ``content`` into the plain text a Mastodon client shows.

    ``<p>`` become paragraphs separated by a blank line, ``<br>`` a newline, ``span.invisible`` (the
    scheme and tail of long links) is dropped and ``span.ellipsis`` gets a trailing "…"; mentions and
    hashtags keep their visible text ("@user", "#tag") and entities are unescaped. Never raises.

    Args:
        content: The ``content`` field of a Mastodon Status (channels.md §1, pitfalls).

    Returns:
        Plain text without markup; paragraphs separated by ``"\\n\\n"``.
    """
    fast = html_to_text_fast(content)
    return html_to_text_reference(content) if fast is None else fast


#: A tag as Mastodon's sanitizer writes it: a lower-case name, attributes as `` name="value"``, ``<br />``.
_SIMPLE_TAG = re.compile(r'<(/?)([a-z][a-z0-9]*)((?: [a-z][a-z0-9_.:-]*(?:="[^"<>]*")?)*) ?(/?)>')
_SIMPLE_ATTR = re.compile(r' ([a-z][a-z0-9_.:-]*)(?:="([^"<>]*)")?')
#: The tags the fast path reads; any other tag (lists, images, scripts, comments…) goes to the reference parser.
_SIMPLE_TAGS = frozenset({"p", "br", "a", "span"})


def html_to_text_fast(content: str) -> str | None:
    """:func:`html_to_text` for the HTML Mastodon itself writes, several times faster; None for anything else.

    The same :class:`_TextExtractor` reads the same tags, attributes and text; only the tokenizing differs: one
    regular expression instead of ``html.parser``'s general one. It reads only ``p``, ``br``, ``a`` and ``span``
    tags with plain double-quoted attributes, and text without a stray ``<``; anything else answers None.
    """
    extractor = _TextExtractor()
    pos = 0
    for match in _SIMPLE_TAG.finditer(content):
        closing, tag, attributes, self_closing = match.groups()
        if tag not in _SIMPLE_TAGS or (closing and (attributes or self_closing)):
            return None
        start = match.start()
        if start > pos:
            text = content[pos:start]
            if "<" in text:
                return None
            extractor.handle_data(unescape(text) if "&" in text else text)
        if closing:
            extractor.handle_endtag(tag)
        else:
            attrs: list[tuple[str, str | None]] = [
                (name, unescape(value) if "&" in value else value) for name, value in _SIMPLE_ATTR.findall(attributes)
            ]
            extractor.handle_starttag(tag, attrs)
            if self_closing:
                extractor.handle_endtag(tag)
        pos = match.end()
    text = content[pos:]
    if "<" in text:
        return None
    if text:
        extractor.handle_data(unescape(text) if "&" in text else text)
    return extractor.text()


def html_to_text_reference(content: str) -> str:
    """:func:`html_to_text` by ``html.parser`` for any HTML: what the fast path must always agree with."""
    parser = _TextExtractor()
    try:
        parser.feed(content)
        parser.close()
    except AssertionError:  # pragma: no cover - defensive: the stdlib parser asserts on odd markup
        log.debug("html.parser gave up on status content; keeping the text read so far")
    return parser.text()


def parse_time(iso: str) -> int:
    """Parse a Mastodon ISO-8601 timestamp (``2026-08-01T13:51:42.823Z``) to UTC epoch seconds.

    Args:
        iso: The timestamp; a missing offset is read as UTC.

    Returns:
        Whole epoch seconds (fractions are floored).

    Raises:
        ValueError: ``iso`` is not an ISO-8601 timestamp.
    """
    return math.floor(parse_iso(iso))


def id_key(id: str) -> tuple[int, str]:
    """Sort key for Mastodon ids: by length, then lexically (channels.md §1: never cast ids to int).

    Args:
        id: An opaque id string (Snowflake digits, ULIDs, …).

    Returns:
        ``(len(id), id)``; for digit strings without leading zeros this is numeric order.
    """
    return (len(id), id)


def _max_id(ids: list[str]) -> str | None:
    return max(ids, key=id_key) if ids else None


def _oldest_first_once(collected: list[tuple[str, InboundItem]]) -> list[InboundItem]:
    """The items of ``(notification id, item)`` pairs, oldest notification first, each status once (a status
    that several notifications name keeps the place of its oldest)."""
    items: list[InboundItem] = []
    seen_statuses: set[str] = set()
    for _, item in sorted(collected, key=lambda pair: id_key(pair[0])):
        if item.external_id not in seen_statuses:
            seen_statuses.add(item.external_id)
            items.append(item)
    return items


def _as_id(value: object) -> str | None:
    """A JSON id as a string; ints (some forks) become their decimal string, nothing is cast to int."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _require_id(mapping: Mapping[str, Any], key: str, where: str) -> str:
    value = _as_id(mapping.get(key))
    if value is None:
        raise ValueError(f"{where}.{key} is missing or not an id")
    return value


def parse_status(status: dict[str, Any]) -> InboundItem:
    """Turn one Mastodon Status entity into an :class:`InboundItem`.

    Args:
        status: The Status JSON object (``notification.status``, a context entry, a posted status).

    Returns:
        The item: ``external_id`` is the status id, ``text`` the plain text of ``content``, ``kind`` is
        DIRECT for ``visibility == "direct"``, ``url`` falls back to ``uri``, ``raw`` is ``status``.

    Raises:
        ValueError: A required field (id, account, created_at, visibility) is missing or has the wrong type.
    """
    if not isinstance(status, dict):
        raise ValueError("status is not an object")
    external_id = _require_id(status, "id", "status")
    account = status.get("account")
    if not isinstance(account, dict):
        raise ValueError("status.account is missing")
    author_id = _require_id(account, "id", "status.account")
    acct = str_field(account, "acct") or str_field(account, "username")
    if not acct:
        raise ValueError("status.account.acct is missing")
    visibility = status.get("visibility")
    if not isinstance(visibility, str) or not visibility:
        raise ValueError("status.visibility is missing")
    content = status.get("content")
    if content is not None and not isinstance(content, str):
        raise ValueError("status.content is not a string")
    created_at = status.get("created_at")
    if not isinstance(created_at, str):
        raise ValueError("status.created_at is missing")
    posted_at = parse_time(created_at)
    return InboundItem(
        external_id=external_id,
        author_id=author_id,
        author_handle=acct.removeprefix("@"),
        author_name=str_field(account, "display_name") or str_field(account, "username") or acct,
        text=html_to_text(content or ""),
        url=str_field(status, "url") or str_field(status, "uri"),
        posted_at=posted_at,
        kind=MentionKind.DIRECT if visibility == "direct" else MentionKind.PUBLIC,
        visibility=visibility,
        parent_external_id=_as_id(status.get("in_reply_to_id")),
        raw=status,
    )


@dataclass(frozen=True, slots=True)
class ParsedPage:
    """One page of ``GET /api/v1/notifications``, parsed.

    ``items`` keep the page's order (newest first) and ``notification_ids[i]`` is the notification that
    carried ``items[i]``. ``ids`` lists every notification id on the page, mentions or not, since the
    cursor must move past all of them. ``skipped`` names the entries that were dropped as malformed.
    """

    items: list[InboundItem] = field(default_factory=list)
    notification_ids: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    size: int = 0  # entries in the payload, for the "short page" test
    rejected: list[object] = field(default_factory=list)  # the raw JSON of each ``skipped`` entry, same order

    @property
    def max_id(self) -> str | None:
        """The newest notification id on the page (by :func:`id_key`), or None for an empty page."""
        return _max_id(self.ids)


def parse_notifications(payload: object) -> ParsedPage:
    """Parse a notifications page; keep ``mention`` notifications that carry a status.

    Malformed entries are collected in ``skipped`` as ``(notification id or "?", reason)`` instead of
    failing the page; other notification types are ignored silently (their ids still count for paging).

    Args:
        payload: The decoded JSON body, expected to be a list of Notification objects.

    Returns:
        A :class:`ParsedPage`.

    Raises:
        ValueError: ``payload`` is not a list.
    """
    if not isinstance(payload, list):
        raise ValueError(f"expected a list of notifications, got {type(payload).__name__}")
    items: list[InboundItem] = []
    notification_ids: list[str] = []
    ids: list[str] = []
    skipped: list[tuple[str, str]] = []
    rejected: list[object] = []
    for entry in payload:
        if not isinstance(entry, dict):
            skipped.append(("?", f"entry is {type(entry).__name__}, not an object"))
            rejected.append(entry)
            continue
        notification_id = _as_id(entry.get("id"))
        if notification_id is None:
            skipped.append(("?", "notification has no id"))
            rejected.append(entry)
            continue
        ids.append(notification_id)
        if entry.get("type") != "mention":
            continue
        status = entry.get("status")
        if not isinstance(status, dict):
            skipped.append((notification_id, "mention notification without a status"))
            rejected.append(entry)
            continue
        try:
            item = parse_status(status)
        except ValueError as exc:
            skipped.append((notification_id, str(exc)))
            rejected.append(entry)
            continue
        items.append(item)
        notification_ids.append(notification_id)
    return ParsedPage(
        items=items,
        notification_ids=notification_ids,
        ids=ids,
        skipped=skipped,
        size=len(payload),
        rejected=rejected,
    )


def parse_own_posts(payload: object, *, own_id: str | None = None) -> tuple[list[OwnPost], list[str]]:
    """Parse a page of ``GET /api/v1/accounts/:id/statuses``: the replies among the account's own statuses.

    Statuses that answer nothing, reblogs, statuses of another account (when ``own_id`` is given) and
    malformed entries are left out (malformed ones logged); every readable id still counts for paging.

    Args:
        payload: The decoded JSON body, a list of Status objects (newest first).
        own_id: The account's id, when known.

    Returns:
        The replies, oldest first, and every status id on the page.

    Raises:
        ValueError: ``payload`` is not a list.
    """
    if not isinstance(payload, list):
        raise ValueError(f"expected a list of statuses, got {type(payload).__name__}")
    posts: list[OwnPost] = []
    ids: list[str] = []
    for entry in payload:
        try:
            item = parse_status(entry)
        except ValueError as exc:
            log.warning("Skipped a malformed status among the account's own posts: %s", exc)
            continue
        ids.append(item.external_id)
        if item.parent_external_id is None or entry.get("reblog") or (own_id and item.author_id != own_id):
            continue
        application = entry.get("application")
        client = str_field(application, "name") if isinstance(application, dict) else ""
        posts.append(
            OwnPost(
                external_id=item.external_id,
                parent_external_id=item.parent_external_id,
                text=item.text,
                url=item.url,
                posted_at=item.posted_at,
                visibility=item.visibility,
                client=client,
            )
        )
    posts.sort(key=lambda post: id_key(post.external_id))
    return posts, ids


def parse_rate_limit(headers: Mapping[str, str]) -> RateLimitInfo | None:
    """Read ``X-RateLimit-Limit/Remaining/Reset`` (the reset is an ISO-8601 timestamp).

    Args:
        headers: Response headers; names are matched case-insensitively.

    Returns:
        The info, or None when limit or remaining is absent or not an integer.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        limit = int(lowered["x-ratelimit-limit"].strip())
        remaining = int(lowered["x-ratelimit-remaining"].strip())
    except (KeyError, ValueError):
        return None
    try:
        reset_at: float | None = parse_iso(lowered.get("x-ratelimit-reset"))
    except ValueError:
        reset_at = None
    return RateLimitInfo(limit=limit, remaining=remaining, reset_at=reset_at)


@dataclass(frozen=True, slots=True)
class InstanceLimits:
    """What an instance allows in one status (``configuration.statuses`` of ``/api/v2/instance``)."""

    max_characters: int = DEFAULT_MAX_CHARACTERS
    characters_reserved_per_url: int = DEFAULT_CHARACTERS_RESERVED_PER_URL


def _positive_int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def parse_instance(payload: object) -> InstanceLimits:
    """Read the status limits from an Instance entity (v2, or v1 / Pleroma's ``max_toot_chars``).

    Args:
        payload: The decoded JSON of ``GET /api/v2/instance`` (or ``/api/v1/instance``).

    Returns:
        The limits; Mastodon's defaults (500, 23) fill whatever the instance does not publish.

    Raises:
        ValueError: ``payload`` is not an object.
    """
    if not isinstance(payload, dict):
        raise ValueError(f"expected an instance object, got {type(payload).__name__}")
    statuses: object = {}
    configuration = payload.get("configuration")
    if isinstance(configuration, dict):
        statuses = configuration.get("statuses", {})
    if not isinstance(statuses, dict):
        statuses = {}
    max_characters = _positive_int(statuses.get("max_characters")) or _positive_int(payload.get("max_toot_chars"))
    per_url = _positive_int(statuses.get("characters_reserved_per_url"))
    return InstanceLimits(
        max_characters=max_characters or DEFAULT_MAX_CHARACTERS,
        characters_reserved_per_url=per_url or DEFAULT_CHARACTERS_RESERVED_PER_URL,
    )


# Mastodon's Account::MENTION_RE; "@user@domain" counts as "@user" (app/validators/status_length_validator.rb).
_MENTION_RE = re.compile(
    r"(?<![=/\w])@(?P<user>[a-z0-9_]+(?:[.-]+[a-z0-9_]+)*)(?:@[^\W_]+(?:[.-]+[^\W_]+)*)?", re.IGNORECASE
)
# A simplified FetchLinkCardService::URL_PATTERN: only http(s) URLs with a scheme get the concession.
_URL_RE = re.compile(r"(?<![\w/])https?://[^\s<>\"]+", re.IGNORECASE)
_URL_TRAILING = ".,:;!?'\""


def _trim_url(url: str) -> str:
    while url and (url[-1] in _URL_TRAILING or (url[-1] == ")" and url.count("(") < url.count(")"))):
        url = url[:-1]
    return url


def reply_length(text: str, *, characters_reserved_per_url: int = DEFAULT_CHARACTERS_RESERVED_PER_URL) -> int:
    """Count ``text`` the way Mastodon's status length validator does.

    Every http(s) URL counts as ``characters_reserved_per_url``; a remote mention ``@user@domain`` counts
    as ``@user``; the rest is counted in grapheme clusters (approximated: combining marks, variation
    selectors, skin tones, ZWJ sequences and flag pairs do not add characters).

    Args:
        text: The reply as it will be posted.
        characters_reserved_per_url: The instance's ``characters_reserved_per_url``.

    Returns:
        The length to compare with ``InstanceLimits.max_characters``.
    """
    placeholders = 0
    pieces: list[str] = []
    last = 0
    for match in _URL_RE.finditer(text):
        url = _trim_url(match.group())
        if not url.partition("://")[2]:
            continue
        pieces.append(text[last : match.start()])
        placeholders += 1
        pieces.append("\x00")  # a marker no mention can match across
        last = match.start() + len(url)
    pieces.append(text[last:])
    countable = _MENTION_RE.sub(lambda m: "@" + m.group("user"), "".join(pieces))
    return grapheme_count(countable.replace("\x00", "")) + placeholders * characters_reserved_per_url


def _mention_present(text: str, handle: str) -> bool:
    # Word-bounded: "@alice" is not in "@alice@other.social" (another account) nor "@alice.smith".
    pattern = rf"(?<![=/\w@])@{re.escape(handle)}(?![\w@]|[.-]\w)"
    return re.search(pattern, text, re.IGNORECASE) is not None


def with_mention(text: str, handle: str) -> str:
    """Make sure the reply addresses ``@handle``, or the customer is not notified (channels.md §1).

    Args:
        text: The agent's reply.
        handle: The customer's ``acct`` ("user" or "user@domain"), with or without a leading "@".

    Returns:
        ``text`` unchanged when it already mentions the handle (case-insensitive, word-bounded),
        otherwise ``"@handle " + text``.
    """
    handle = handle.strip().removeprefix("@")
    if not handle or _mention_present(text, handle):
        return text
    return f"@{handle} {text}" if text else f"@{handle}"


def on_page(exc: ChannelError, page: int) -> ChannelError:
    """``exc`` said of the ``page``-th page of a sync ("the server failed on page 2 (…)"), same type and fields.

    Args:
        exc: Why the page could not be read.
        page: Its number in this sync, from 1.

    Returns:
        An error of the same class (so the poller schedules it the same way), caused by ``exc``.
    """
    message = f"the server failed on page {page} ({exc})"
    error: ChannelError
    if isinstance(exc, RateLimited):
        error = RateLimited(message, retry_at=exc.retry_at)
    elif isinstance(exc, Permanent):
        error = Permanent(message, status=exc.status)
    else:
        error = type(exc)(message)
    error.__cause__ = exc
    return error


@dataclass(frozen=True, slots=True)
class StatusCheck:
    """What :meth:`MastodonConnector.check_statuses` found: edited statuses and deleted status ids."""

    edited: list[InboundItem] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------------------
# The connector
# --------------------------------------------------------------------------------------------------------

_VISIBILITIES = ("public", "unlisted", "private", "direct")


class MastodonConnector:
    """Mentions and DMs from one Mastodon account, and replies in their threads (channels.md §1).

    The connector keeps no persistent state: the Poller stores the cursor after the batch (STYLE B3).
    Every failure surfaces as a :mod:`console.channels.errors` exception; httpx exceptions never escape.
    """

    kind: ClassVar[str] = "mastodon"

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        account: AccountRef,
        secrets: SecretStore,
        clock: Clock,
        token_key: str | None = None,
        page_limit: int = 40,
        max_pages: int = 10,
    ) -> None:
        """Wire the connector; nothing is read or sent until the first call.

        Args:
            client: A long-lived client owned by the caller (STYLE B2); :meth:`aclose` does not close it.
            account: The account; ``account.base_url`` is the instance (loopback in tests).
            secrets: Where the access token lives, under ``token_key``.
            clock: Time source for rate-limit arithmetic.
            token_key: Secret key; defaults to ``"mastodon:<account.id>"``.
            page_limit: ``limit`` per notifications page (Mastodon allows up to 80 since 4.1, 30 before).
            max_pages: Upper bound on pages per :meth:`fetch_new`; the rest comes on the next poll, which
                the poller makes at once while the batch's ``has_more`` is set. Small batches keep a backlog's
                catch-up smooth: less in memory at once, so garbage-collection pauses stay short.
        """
        if page_limit < 1 or max_pages < 1:
            raise ValueError("page_limit and max_pages must be positive")
        self._client = client
        self._account = account
        self._secrets = secrets
        self._clock = clock
        self._token_key = token_key or f"mastodon:{account.id}"
        self._page_limit = page_limit
        self._max_pages = max_pages
        self._base_url = account.base_url.rstrip("/")
        self._host = urlsplit(self._base_url).netloc or self._base_url
        self._token: str | None = None
        self._instance_limits: InstanceLimits | None = None
        #: The ``X-RateLimit-*`` headers of the latest response that carried them.
        self.rate_limit: RateLimitInfo | None = None
        # What the fetch under way found, for its Batch (``rejected``, ``partial_error``, ``has_more``):
        # entries dropped as malformed, ``(notification id or "?", reason)``, and the raw JSON of each;
        self._skipped: list[tuple[str, str]] = []
        self._rejected_raw: list[object] = []
        # an error after some pages were read (the batch holds those pages; the poll counts as failed);
        self._partial_error: ChannelError | None = None
        # stopped at ``max_pages`` with full pages: more is waiting.
        self._has_more = False

    # -- transport ------------------------------------------------------------------------------------

    async def _access_token(self) -> str:
        if self._token is None:
            token = await read_secret(
                self._secrets,
                self._token_key,
                unreadable=f"Could not read the access token for {self._account.handle} on {self._host}",
            )
            if not token:
                raise AuthExpired(f"No access token stored for {self._account.handle} on {self._host}; sign in again.")
            self._token = token
        return self._token

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        token = await self._access_token()
        request_headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        request_headers.update(headers or {})
        what = f"{method} {path}"
        response = await send(
            self._client, method, self._base_url + path, host=self._host, params=params, data=data,
            headers=request_headers,
        )  # fmt: skip

        info = parse_rate_limit(response.headers)
        if info is not None:
            self.rate_limit = info
        if response.is_success:
            return response
        self._raise_for_status(response, what)

    def _raise_for_status(self, response: httpx.Response, what: str) -> NoReturn:
        if response.status_code in (401, 403):
            self._token = None  # read the store again next time: the agent may have signed in anew
        now = self._clock.now()
        try:
            reset_at: float | None = parse_iso(response.headers.get("X-RateLimit-Reset"))
        except ValueError:
            reset_at = None
        raise_for_status(
            response,
            host=self._host,
            what=what,
            reason=_error_text(response),
            retry_at=retry_time(response.headers, now=now, reset_at=reset_at),
            now=now,
            auth_statuses=(401, 403),
            credential="access token",
        )

    async def _json(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        response = await self._request(method, path, params=params, data=data, headers=headers)
        return json_body(response, host=self._host, what=f"{method} {path}")

    def _malformed(self, method: str, path: str, detail: str) -> Transient:
        return Transient(f"{self._host} returned malformed data for {method} {path}: {detail}.")

    # -- Connector protocol ---------------------------------------------------------------------------

    async def verify(self) -> Identity:
        """Check the token and say whose it is (``GET /api/v1/accounts/verify_credentials``).

        Returns:
            The account's id, ``acct`` and display name.

        Raises:
            AuthExpired: No token, or the server rejected it.
            ChannelError: Any other failure, mapped as in :meth:`fetch_new`.
        """
        path = "/api/v1/accounts/verify_credentials"
        payload = await self._json("GET", path)
        if not isinstance(payload, dict):
            raise self._malformed("GET", path, "expected an account object")
        external_id = _as_id(payload.get("id"))
        handle = str_field(payload, "acct") or str_field(payload, "username")
        if external_id is None or not handle:
            raise self._malformed("GET", path, "the account has no id or acct")
        username = str_field(payload, "username") or handle
        return Identity(
            external_id=external_id,
            handle=handle,
            display_name=str_field(payload, "display_name") or username,
        )

    async def instance_limits(self) -> InstanceLimits:
        """The instance's status limits, fetched once and cached (``GET /api/v2/instance``).

        Servers without v2 (Mastodon < 4.0, some forks) answer 404; then ``/api/v1/instance`` is read.

        Returns:
            The limits.

        Raises:
            ChannelError: The instance could not be read.
        """
        if self._instance_limits is None:
            path = "/api/v2/instance"
            try:
                payload = await self._json("GET", path)
            except Permanent as exc:
                if exc.status != 404:
                    raise
                path = "/api/v1/instance"
                payload = await self._json("GET", path)
            try:
                self._instance_limits = parse_instance(payload)
            except ValueError as exc:
                raise self._malformed("GET", path, str(exc)) from exc
        return self._instance_limits

    async def _notifications_page(self, min_id: str | None, *, max_id: str | None = None) -> ParsedPage:
        path = "/api/v1/notifications"
        params: Params = [("types[]", "mention"), ("limit", self._page_limit)]
        # Mentions from strangers can be held back by the account's NotificationPolicy (4.3+), and
        # strangers are exactly the customers we care about (channels.md §1 "List mentions").
        params.append(("include_filtered", "true"))
        if min_id is not None:
            params.append(("min_id", min_id))
        if max_id is not None:
            params.append(("max_id", max_id))
        response = await self._request("GET", path, params=params)
        # Decoding and parsing a full page is milliseconds of CPU per page, tens during a backlog: it runs on a
        # worker thread so the event loop keeps painting (DESIGN: no loop stall over 50 ms).
        return await asyncio.to_thread(self._parse_notifications_body, response, path)

    def _parse_notifications_body(self, response: httpx.Response, path: str) -> ParsedPage:
        payload = json_body(response, host=self._host, what=f"GET {path}")
        try:
            return parse_notifications(payload)
        except ValueError as exc:
            raise self._malformed("GET", path, str(exc)) from exc

    def backfill_cursor(self, horizon: int) -> Cursor:
        """The cursor of a first sync that reads back to ``horizon`` (see :meth:`fetch_new`)."""
        return {"backfill": {"horizon": int(horizon)}}

    async def _backfill(self, cursor: Cursor, state: dict[str, Any]) -> Batch:
        """Read back in time from the newest notification (``max_id`` paging) until the horizon.

        Each call reads at most ``max_pages`` pages; the cursor keeps the newest id seen (where forward paging
        starts once the backfill is done) and how far back the backfill got, so a restart resumes it.
        """
        horizon = state.get("horizon")
        if not isinstance(horizon, int) or isinstance(horizon, bool):
            log.warning("Mastodon backfill cursor for %s has no horizon; syncing the newest page", self._host)
            return await self._fetch(None)
        newest = _as_id(cursor.get("min_id"))
        max_id = _as_id(state.get("max_id"))
        oldest = state.get("oldest") if isinstance(state.get("oldest"), int) else None
        self._skipped = []
        self._rejected_raw = []
        self._partial_error = None
        self._has_more = False
        collected: list[tuple[str, InboundItem]] = []
        pages = 0
        done = reached = False
        while True:
            try:
                page = await self._notifications_page(None, max_id=max_id)
            except ChannelError as exc:
                if pages == 0:
                    raise
                self._partial_error = on_page(exc, pages + 1)  # the pages read are contiguous: store them
                break
            pages += 1
            self._skipped.extend(page.skipped)
            self._rejected_raw.extend(page.rejected)
            if newest is None and max_id is None:
                newest = page.max_id  # the backfill's first page: forward paging starts above it, once done
            for notification_id, item in zip(page.notification_ids, page.items, strict=True):
                if item.posted_at < horizon:
                    reached = True
                    continue
                collected.append((notification_id, item))
                oldest = item.posted_at if oldest is None else min(oldest, item.posted_at)
            lowest = min(page.ids, key=id_key) if page.ids else None
            if lowest is None:
                done = True  # an empty page: the server has nothing older
                break
            if max_id is not None and id_key(lowest) >= id_key(max_id):
                log.warning("%s ignored max_id=%s; ending the backfill here", self._host, max_id)
                done = True
                break
            max_id = lowest
            if reached:
                done = True
                break
            if pages >= self._max_pages:
                break
        self._has_more = not done and self._partial_error is None
        if self._skipped:
            log.warning("Skipped %d malformed Mastodon notifications: %s", len(self._skipped), self._skipped)
        items = _oldest_first_once(collected)
        next_cursor: Cursor | None
        if done:
            next_cursor = {"min_id": newest} if newest is not None else None
        else:
            progress: dict[str, Any] = {"horizon": horizon, "max_id": max_id, "oldest": oldest}
            next_cursor = {"backfill": progress} if newest is None else {"min_id": newest, "backfill": progress}
        return Batch(
            items=items,
            next_cursor=next_cursor,
            backfill=Backfill(horizon=horizon, oldest=oldest, done=done, reached_horizon=reached),
        )

    async def fetch_new(self, cursor: Cursor | None) -> Batch:
        """Fetch mentions and DMs newer than ``cursor`` (see :meth:`_fetch`), saying everything in the batch.

        The batch carries the request budget of the latest response, the malformed entries (raw, for the
        quarantine), whether more pages are waiting and an error met after some pages were read; a raised
        :class:`ChannelError` carries the budget its answer left (issue 21 item 1).
        """
        batch = await carrying_budget(self._fetch(cursor), lambda: self.rate_limit)
        rejected = tuple(
            Rejected(str(external_id), str(reason), raw)
            for (external_id, reason), raw in zip(self._skipped, self._rejected_raw, strict=True)
        )
        return dataclasses.replace(
            batch,
            rejected=rejected,
            has_more=self._has_more,
            partial_error=self._partial_error,
        )

    async def _fetch(self, cursor: Cursor | None) -> Batch:
        """Fetch mentions and DMs newer than ``cursor``.

        A first sync started with :meth:`backfill_cursor` reads back in time, page by page, to its horizon
        (issue 20, sync 1), then pages forward from the newest notification it saw. With no cursor at all
        only the newest page is read. With ``{"min_id": id}`` pages are read forward with
        ``min_id = max(id in page)`` until a page is empty or short, at most ``max_pages`` of them
        (channels.md §1 "Cursor semantics").

        Args:
            cursor: The cursor of the previous batch, ``{"min_id": "<notification id>"}``, or None.
                A cursor without a usable ``min_id`` is treated like None.

        Returns:
            Items oldest first, deduplicated by status id, and ``{"min_id": newest notification id}``
            (None when nothing newer than the cursor was seen; never lower than the input cursor).
            Malformed entries are left out and listed in the batch's ``rejected``.

        Raises:
            AuthExpired, RateLimited, Transient, Permanent: See :mod:`console.channels.errors`. Raised only
                when no page could be read; a later page's error is the batch's ``partial_error`` instead.
        """
        backfill = cursor.get("backfill") if cursor else None
        if cursor and isinstance(backfill, dict):
            return await self._backfill(cursor, backfill)
        start = _as_id(cursor.get("min_id")) if cursor else None
        if cursor and start is None:
            log.warning("Mastodon cursor for %s has no usable min_id; syncing the newest page", self._host)
        self._skipped = []
        self._rejected_raw = []
        collected: list[tuple[str, InboundItem]] = []
        seen_ids: list[str] = []
        current = start
        pages = 0
        self._partial_error = None
        self._has_more = False
        while True:
            try:
                page = await self._notifications_page(current)
            except ChannelError as exc:
                if pages == 0:
                    raise
                # Keep the pages read so far: they are contiguous after the cursor, so storing them and
                # moving the cursor is safe, and a flaky link still makes progress (the poller reports exc).
                self._partial_error = on_page(exc, pages + 1)
                break
            pages += 1
            self._skipped.extend(page.skipped)
            self._rejected_raw.extend(page.rejected)
            for notification_id, item in zip(page.notification_ids, page.items, strict=True):
                collected.append((notification_id, item))
            seen_ids.extend(page.ids)
            newest = page.max_id
            if start is None or newest is None:
                break  # first sync reads the newest page only; an empty page means we are caught up
            if id_key(newest) <= id_key(current or start):
                log.warning("%s ignored min_id=%s; stopping this sync", self._host, current)
                break
            current = newest
            if page.size < self._page_limit:
                break  # a short page is the last one (servers may cap limit lower; the next poll resumes)
            if pages >= self._max_pages:
                self._has_more = True
                log.info("Mastodon sync for %s stopped after %d pages; resuming next poll", self._host, pages)
                break

        if start is not None:
            # Nothing at or below the cursor is new, whatever a misbehaving server sends back.
            collected = [(nid, item) for nid, item in collected if id_key(nid) > id_key(start)]
            seen_ids = [nid for nid in seen_ids if id_key(nid) > id_key(start)]
        if self._skipped:
            log.warning("Skipped %d malformed Mastodon notifications: %s", len(self._skipped), self._skipped)

        items = _oldest_first_once(collected)
        newest_seen = _max_id(seen_ids)
        next_cursor: Cursor | None = {"min_id": newest_seen} if newest_seen is not None else None
        return Batch(items=items, next_cursor=next_cursor)

    async def fetch_thread(self, external_id: str) -> list[InboundItem]:
        """Fetch a status with its ancestors and descendants (``/statuses/:id`` and ``/context``).

        Args:
            external_id: The status id.

        Returns:
            Ancestors, the status, then descendants, in the server's (conversation) order. Malformed
            context entries are left out and logged.

        Raises:
            Permanent: The status is gone or not visible (404), among other errors.
            ChannelError: Any other failure.
        """
        path = f"/api/v1/statuses/{quote(external_id, safe='')}"
        status = await self._json("GET", path)
        try:
            head = parse_status(status)
        except ValueError as exc:
            raise self._malformed("GET", path, str(exc)) from exc
        context = await self._json("GET", path + "/context")
        if not isinstance(context, dict):
            raise self._malformed("GET", path + "/context", "expected {ancestors, descendants}")
        parts: dict[str, list[InboundItem]] = {}
        for key in ("ancestors", "descendants"):
            entries = context.get(key, [])
            if not isinstance(entries, list):
                raise self._malformed("GET", path + "/context", f"{key} is not a list")
            parsed: list[InboundItem] = []
            for entry in entries:
                try:
                    parsed.append(parse_status(entry))
                except ValueError as exc:
                    log.warning("Skipped a malformed %s in the context of %s: %s", key, external_id, exc)
            parts[key] = parsed
        return [*parts["ancestors"], head, *parts["descendants"]]

    async def send_reply(
        self, target: ReplyTarget, text: str, *, idempotency_key: str, visibility: str | None = None
    ) -> ReplyReceipt:
        """Post ``text`` as a reply to ``target`` (``POST /api/v1/statuses``).

        The reply mentions ``@target.author_handle`` (prepended when missing), copies the target's
        visibility unless told otherwise, and is always ``direct`` when the target is a DM, so a private
        conversation never leaks (channels.md §1 pitfalls). ``Idempotency-Key`` makes a retry after a
        timeout safe: the server answers with the status it already created.

        Args:
            target: The message answered.
            text: The agent's reply.
            idempotency_key: A key stable across retries of this one reply (Mastodon keeps it 1 h).
            visibility: Override the copied visibility (ignored for replies to DMs).

        Returns:
            The posted status's id, URL and time.

        Raises:
            Permanent: 422 (too long, empty, …) or 404 (the target was deleted); too long is caught before
                sending once :meth:`instance_limits` was read.
            ChannelError: Any other failure; Transient ones may be retried with the same key.
        """
        chosen = "direct" if target.visibility == "direct" else (visibility or target.visibility or "public")
        status_text = with_mention(text, target.author_handle)
        if self._instance_limits is not None:
            self.check_length(status_text)
        if chosen not in _VISIBILITIES:
            log.info("Sending a reply with non-standard visibility %r to %s", chosen, self._host)
        path = "/api/v1/statuses"
        payload = await self._json(
            "POST",
            path,
            data={
                "status": status_text,
                "in_reply_to_id": target.external_id,
                "visibility": chosen,
            },
            headers={"Idempotency-Key": idempotency_key},
        )
        return self._posted(payload, path)

    async def post_status(self, text: str, *, idempotency_key: str, visibility: str = "public") -> ReplyReceipt:
        """Post ``text`` as a status of its own, answering no one (``POST /api/v1/statuses``).

        Used for the capacity update ("We're answering in about 25 minutes right now"). No handle is added.

        Args:
            text: The status text.
            idempotency_key: Stable across retries of this one post (Mastodon keeps it 1 h).
            visibility: "public" (default), "unlisted", "private" or "direct".

        Returns:
            The posted status's id, URL and time.

        Raises:
            Permanent: 422 (too long, empty, unknown visibility), among others.
            ChannelError: Any other failure; Transient ones may be retried with the same key.
        """
        if self._instance_limits is not None:
            self.check_length(text)
        path = "/api/v1/statuses"
        payload = await self._json(
            "POST",
            path,
            data={"status": text, "visibility": visibility},
            headers={"Idempotency-Key": idempotency_key},
        )
        return self._posted(payload, path)

    def _posted(self, payload: object, path: str) -> ReplyReceipt:
        """The receipt of a created status (its id, URL and time)."""
        if not isinstance(payload, dict):
            raise self._malformed("POST", path, "expected the posted status")
        external_id = _as_id(payload.get("id"))
        if external_id is None:
            raise self._malformed("POST", path, "the posted status has no id")
        created_at = payload.get("created_at")
        try:
            posted_at = parse_time(created_at) if isinstance(created_at, str) else math.floor(self._clock.now())
        except ValueError:
            posted_at = math.floor(self._clock.now())
        url = str_field(payload, "url") or str_field(payload, "uri")
        return ReplyReceipt(external_id=external_id, url=url, posted_at=posted_at)

    async def edit_reply(self, external_id: str, text: str) -> ReplyReceipt:
        """Replace the text of one of our posted statuses (``PUT /api/v1/statuses/:id``, Mastodon 3.5+).

        The edit is idempotent (the same text twice gives the same status), so retries are safe. Mentions
        already in the status are kept only if ``text`` repeats them; callers pass the full new text.

        Args:
            external_id: The id of our status.
            text: The corrected text.

        Returns:
            The status's id (unchanged), URL and edit time.

        Raises:
            Permanent: 404 (deleted), 422 (too long), 403 (not ours), among others.
            ChannelError: Any other failure.
        """
        path = f"/api/v1/statuses/{quote(external_id, safe='')}"
        payload = await self._json("PUT", path, data={"status": text})
        if not isinstance(payload, dict):
            raise self._malformed("PUT", path, "expected the edited status")
        edited_id = _as_id(payload.get("id")) or external_id
        stamp = payload.get("edited_at") or payload.get("created_at")
        try:
            at = parse_time(stamp) if isinstance(stamp, str) else math.floor(self._clock.now())
        except ValueError:
            at = math.floor(self._clock.now())
        url = str_field(payload, "url") or str_field(payload, "uri")
        return ReplyReceipt(external_id=edited_id, url=url, posted_at=at)

    def check_length(self, text: str) -> None:
        """Refuse a reply the instance would reject as too long (422), before it is sent.

        Uses the limits cached by :meth:`instance_limits` (or Mastodon's defaults when not read yet).
        URLs count as ``characters_reserved_per_url`` and ``@user@domain`` as ``@user`` (channels.md §1).

        Args:
            text: The reply as it will be posted (with the mention).

        Raises:
            Permanent: The reply is longer than ``max_characters``.
        """
        limits = self._instance_limits or InstanceLimits()
        length = reply_length(text, characters_reserved_per_url=limits.characters_reserved_per_url)
        if length > limits.max_characters:
            raise Permanent(
                f"The reply is {length} characters; the limit on {self._host} is {limits.max_characters} "
                f"(each link counts as {limits.characters_reserved_per_url}).",
                status=422,
            )

    async def check_statuses(self, known: Mapping[str, str | None]) -> StatusCheck:
        """Re-read stored statuses to catch edits and deletions (channels.md §1 pitfalls).

        Mastodon sends no notification when a customer edits or deletes a post, so open threads are
        re-fetched: a 404 means "deleted upstream", a changed ``edited_at`` means the text changed.

        Args:
            known: ``{status id: the edited_at we stored (None when never edited)}``.

        Returns:
            The edited statuses (as items with their new text) and the ids of deleted ones.

        Raises:
            AuthExpired, RateLimited, Transient: The check could not run; nothing is concluded.
        """
        edited: list[InboundItem] = []
        deleted: list[str] = []
        for external_id, stored_edit in known.items():
            path = f"/api/v1/statuses/{quote(external_id, safe='')}"
            try:
                payload = await self._json("GET", path)
            except Permanent as exc:
                if exc.status in (404, 410):
                    deleted.append(external_id)
                    continue
                raise
            try:
                item = parse_status(payload)
            except ValueError as exc:
                log.warning("Skipped a malformed status %s while checking for edits: %s", external_id, exc)
                continue
            edited_at = payload.get("edited_at") if isinstance(payload, dict) else None
            if isinstance(edited_at, str) and edited_at and edited_at != stored_edit:
                edited.append(item)
        return StatusCheck(edited=edited, deleted=deleted)

    async def fetch_own_posts(self, cursor: Cursor | None, *, since: int | None) -> OwnPostsBatch:
        """The account's own replies, posted from any app (``GET /api/v1/accounts/:id/statuses``, reblogs
        excluded, replies included): one request per call once there is a cursor.

        The cursor is ``{"account_id": id, "min_id": newest status id read}``; forward paging with ``min_id``
        returns the oldest statuses after it first, so a busy account loses nothing between polls. A first
        read (no cursor) looks up the account's id and reads back from the newest status, at most
        ``OWN_POSTS_FIRST_PAGES`` pages, until a status older than ``since``.

        Raises:
            ChannelError: The account or its statuses could not be read.
        """
        own_id = _as_id(cursor.get("account_id")) if cursor else None
        if own_id is None:
            own_id = (await self.verify()).external_id
        path = f"/api/v1/accounts/{quote(own_id, safe='')}/statuses"
        params: Params = [("limit", OWN_POSTS_LIMIT), ("exclude_reblogs", "true")]
        start = _as_id(cursor.get("min_id")) if cursor else None
        if start is not None:
            payload = await self._json("GET", path, params=[*params, ("min_id", start)])
            try:
                posts, ids = parse_own_posts(payload, own_id=own_id)
            except ValueError as exc:
                raise self._malformed("GET", path, str(exc)) from exc
            posts = [post for post in posts if id_key(post.external_id) > id_key(start)]
            newest = _max_id([i for i in ids if id_key(i) > id_key(start)])
            next_cursor = None if newest is None else {"account_id": own_id, "min_id": newest}
            return OwnPostsBatch(posts, next_cursor, has_more=len(ids) >= OWN_POSTS_LIMIT)
        collected: list[OwnPost] = []
        newest = None
        max_id: str | None = None
        for _page in range(OWN_POSTS_FIRST_PAGES):
            page_params = params if max_id is None else [*params, ("max_id", max_id)]
            payload = await self._json("GET", path, params=page_params)
            try:
                posts, ids = parse_own_posts(payload, own_id=own_id)
            except ValueError as exc:
                raise self._malformed("GET", path, str(exc)) from exc
            if not ids:
                break
            newest = newest or _max_id(ids)
            collected += [post for post in posts if since is None or post.posted_at >= since]
            oldest = min(ids, key=id_key)
            if since is None or len(ids) < OWN_POSTS_LIMIT or any(p.posted_at < since for p in posts):
                break
            if max_id is not None and id_key(oldest) >= id_key(max_id):
                break  # the server ignored max_id
            max_id = oldest
        collected.sort(key=lambda post: id_key(post.external_id))
        return OwnPostsBatch(collected, {"account_id": own_id, "min_id": newest or "0"})

    async def aclose(self) -> None:
        """Forget the cached token and instance limits.

        The ``httpx.AsyncClient`` is injected and owned by the caller, who closes it (STYLE B2).
        """
        self._token = None
        self._instance_limits = None


def _error_text(response: httpx.Response) -> str:
    """The server's ``{"error": …}`` sentence, or the reason phrase for non-JSON bodies (HTML pages)."""
    body = error_json(response)
    if isinstance(body, dict):
        error = body.get("error")
        description = body.get("error_description")
        if isinstance(error, str) and error:
            if isinstance(description, str) and description and description != error:
                error = f"{error}: {description}"
            return error[:300]
    return response.reason_phrase or "no details"
