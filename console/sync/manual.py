"""Manual intake: a pasted link and text from any channel enters the queue like a synced mention."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from console.ports import Clock
from storage.accounts import AccountRepo
from storage.mentions import DeadlinePlan, MentionRepo
from storage.rows import AccountRow, MentionKind, NewMention

__all__ = [
    "MANUAL_ACTOR",
    "MANUAL_BASE_URL",
    "MANUAL_HANDLE",
    "MANUAL_KIND",
    "IntakeError",
    "IntakeResult",
    "ManualIntake",
    "ManualReply",
    "guess_source",
    "normalise_link",
    "reply_handoff",
]

MANUAL_KIND = "manual"
#: The actor of the events of a hand-added post ("received", "follow_up"): the history says "Added by hand".
MANUAL_ACTOR = "manual"
MANUAL_HANDLE = "manual"
MANUAL_BASE_URL = "manual://intake"
MAX_TEXT = 20_000

#: Hosts we recognise in a pasted link, to name the channel and the author.
_SOURCES: tuple[tuple[str, str, re.Pattern[str] | None], ...] = (
    ("x", r"(^|\.)(x|twitter)\.com$", re.compile(r"^/(?P<user>[A-Za-z0-9_]{1,15})/status(?:es)?/\d+")),
    ("bluesky", r"(^|\.)bsky\.app$", re.compile(r"^/profile/(?P<user>[^/]+)/post/")),
    ("instagram", r"(^|\.)instagram\.com$", None),
    ("facebook", r"(^|\.)(facebook|fb)\.com$", None),
    ("youtube", r"(^|\.)(youtube\.com|youtu\.be)$", None),
    ("reddit", r"(^|\.)reddit\.com$", re.compile(r"^/(?:u|user)/(?P<user>[^/]+)")),
    ("linkedin", r"(^|\.)linkedin\.com$", None),
    ("tiktok", r"(^|\.)tiktok\.com$", re.compile(r"^/@(?P<user>[^/]+)")),
)


class IntakeError(ValueError):
    """The pasted input cannot become a queue item; ``str()`` says what to fix."""


@dataclass(frozen=True, slots=True)
class IntakeResult:
    mention_id: int | None  # the new queue item or follow-up; None when the link was already taken in
    duplicate: bool
    source: str


@dataclass(frozen=True, slots=True)
class ManualReply:
    """How a reply to a manual item leaves the app: the agent pastes it at the original link."""

    clipboard_text: str
    open_url: str


def normalise_link(link: str) -> str:
    """Validate a pasted link and drop what does not identify the post (fragment, tracking query on x.com).

    Args:
        link: What the agent pasted.

    Returns:
        The link to store.

    Raises:
        IntakeError: Not an http(s) link with a host.
    """
    text = link.strip()
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise IntakeError("Paste the full link of the post, starting with https://")
    host = parts.hostname.lower()
    query = "" if re.search(r"(^|\.)(x|twitter)\.com$", host) else parts.query
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, query, ""))


def guess_source(link: str) -> tuple[str, str]:
    """Name the channel and the author's handle from a link, where the link says it.

    Args:
        link: A normalised link.

    Returns:
        ``(source, handle)``; ``("web", "")`` when the host is not recognised.
    """
    parts = urlsplit(link)
    host = (parts.hostname or "").lower()
    for source, host_pattern, path_pattern in _SOURCES:
        if re.search(host_pattern, host):
            match = path_pattern.match(parts.path) if path_pattern else None
            return source, match.group("user") if match else ""
    return "web", ""


def reply_handoff(link: str, text: str) -> ManualReply:
    """A manual item's reply: copied to the clipboard, with the original link to open in the browser."""
    return ManualReply(clipboard_text=text, open_url=link)


class ManualIntake:
    """Creates queue items from pasted posts through ``MentionRepo.store_batch`` (one 'manual' account)."""

    def __init__(
        self,
        mentions: MentionRepo,
        accounts: AccountRepo,
        clock: Clock,
        plan: DeadlinePlan,
        *,
        on_follow_ups: Callable[[Sequence[int]], object] | None = None,
    ) -> None:
        """Wire the service.

        Args:
            mentions: Where items are stored (``store_batch``, as the poller does).
            accounts: For the one 'manual' account.
            clock: Time source.
            plan: The deadline planner for manual items (the SLA engine's, or ``SlaPolicy.plan``).
            on_follow_ups: Told about threads that got a follow-up (the SLA engine recomputes them).
        """
        self._mentions = mentions
        self._accounts = accounts
        self._clock = clock
        self._plan = plan
        self._on_follow_ups = on_follow_ups

    def account(self) -> AccountRow:
        """The manual account, created on first use."""
        return self._accounts.add(
            kind=MANUAL_KIND,
            handle=MANUAL_HANDLE,
            base_url=MANUAL_BASE_URL,
            display_name="Manual intake",
            now=math.floor(self._clock.now()),
        )

    def add(
        self,
        *,
        link: str,
        text: str,
        author: str = "",
        posted_at: int | None = None,
        direct: bool = False,
        parent_link: str | None = None,
    ) -> IntakeResult:
        """Put a pasted post in the queue with its SLA deadlines, like a synced mention.

        Args:
            link: The post's link (its identity: pasting the same link twice stores it once).
            text: The post's text, as copied.
            author: The author's handle; guessed from the link when empty.
            posted_at: When it was posted (epoch seconds); now when unknown.
            direct: It is a private message.
            parent_link: The link of an earlier pasted post it answers (joins that thread).

        Returns:
            The new item's id, or ``duplicate=True`` when the link is already in.

        Raises:
            IntakeError: Bad input (nothing is stored).
            StorageError: The database refused the write.
        """
        url = normalise_link(link)
        body = text.strip()
        if not body:
            raise IntakeError("Paste the text of the post as well; it is what the queue shows.")
        if len(body) > MAX_TEXT:
            raise IntakeError(f"The text is longer than {MAX_TEXT} characters; paste only the post.")
        source, guessed = guess_source(url)
        handle = (author.strip().removeprefix("@") or guessed or "unknown").strip()
        now = math.floor(self._clock.now())
        when = posted_at if posted_at is not None and 0 < posted_at <= now + 300 else now
        account = self.account()
        item = NewMention(
            account_id=account.id,
            external_id=_external_id(url),
            author_external_id=f"{source}:{handle.lower()}",
            author_handle=handle,
            author_name=handle,
            text=body,
            url=url,
            posted_at=when,
            kind=MentionKind.DIRECT if direct else MentionKind.PUBLIC,
            visibility="direct" if direct else "public",
            parent_external_id=_external_id(normalise_link(parent_link)) if parent_link else None,
            raw_json=json.dumps({"source": source, "link": url}),
        )
        result = self._mentions.store_batch(
            [item], channel=MANUAL_KIND, fetched_at=now, plan=self._plan, actor=MANUAL_ACTOR
        )
        if result.follow_up_heads and self._on_follow_ups is not None:
            self._on_follow_ups(result.follow_up_heads)
        if not result.inserted_ids:
            return IntakeResult(None, True, source)
        mention_id = (result.new_heads or result.follow_up_heads or result.inserted_ids)[0]
        return IntakeResult(mention_id, False, source)


def _external_id(url: str) -> str:
    return "link:" + hashlib.sha256(url.encode("utf-8")).hexdigest()[:32]
