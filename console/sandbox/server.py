"""A loopback Mastodon-compatible HTTP server whose simulated customers mention the brand (the sandbox)."""

from __future__ import annotations

import bisect
import contextlib
import email.parser
import email.policy
import email.utils
import functools
import hashlib
import hmac
import itertools
import json
import logging
import math
import os
import random
import re
import socket
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import TCPServer
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson

from console.channels.http import grapheme_count
from console.ports import Clock, SystemClock
from console.sandbox.faults import Drawn, Fault, FaultPlan, FaultRule, parse_fault_spec
from console.sandbox.traffic import (
    CUSTOMERS,
    ArrivalProcess,
    FollowUp,
    Thread,
    Topic,
    TrafficGenerator,
    is_survey_prompt,
)

__all__ = ["SandboxServer", "run_standalone"]

_log = logging.getLogger(__name__)

INSTANCE_DOMAIN: Final = "sandbox.local"
MASTODON_VERSION: Final = "4.3.0"
MAX_CHARACTERS: Final = 500
CHARACTERS_RESERVED_PER_URL: Final = 23
RATE_LIMIT: Final = 300  # requests per window, per token (or per IP without one); docs.joinmastodon.org rate-limits
RATE_PERIOD: Final = 300  # seconds
IDEMPOTENCY_TTL: Final = 3600.0  # Idempotency-Key replays are answered for 1 h (methods/statuses.md)
DEFAULT_NOTIFICATIONS_LIMIT: Final = 40
MAX_NOTIFICATIONS_LIMIT: Final = 80
MAX_BODY_BYTES: Final = 1_000_000
MAX_FOLLOW_UP_DEPTH: Final = 2  # a simulated customer answers at most this many agent replies per thread
VISIBILITIES: Final = ("public", "unlisted", "private", "direct")
NOT_FOUND: Final = "Record not found"
#: The app a status posted through the API names (every install of the app posts with the sandbox's token).
API_APPLICATION: Final = "Care Console"
DEFAULT_ACCOUNT_STATUSES_LIMIT: Final = 20
MAX_ACCOUNT_STATUSES_LIMIT: Final = 40
#: The version of the saved-world file (``sandbox.json`` in the data folder); another version starts afresh.
SAVED_FORMAT: Final = 1
#: How long the saved world keeps a post nobody refers to any more: the file stays small on a data folder used
#: for months (about 1 MB per 2,000 posts), while a shift, and the threads it touched, are kept whole.
SAVED_RETENTION: Final = 14 * 86400.0

Json = dict[str, Any]
RequestLog = list[tuple[str, str, dict[str, list[str]]]]


# -- small pure helpers ---------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _iso(ts: float) -> str:
    """Format epoch seconds like Mastodon: ``2026-08-01T13:51:42.823Z`` (cached: pages repeat instants)."""
    ms = math.floor(ts * 1000)
    moment = datetime.fromtimestamp(ms // 1000, tz=UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


def _id_key(value: str) -> tuple[int, str]:
    # Mastodon ids are opaque strings: order by length, then lexically; never cast to int (channels.md §1).
    return (len(value), value)


def _h(text: str) -> str:
    """HTML-escape like Rails' ``h()``."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


def _stable_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


class _Snowflakes:
    """Mastodon-style ids: ``(milliseconds << 16) | sequence``, strictly increasing.

    The timestamp is the clock at creation time, so a later process always issues larger ids than an earlier
    one (given a clock that moves forward); within one millisecond the low 16 bits count up from ``base``.
    Statuses and notifications use different bases, so an id of one kind never equals an id of the other
    (a connector that mixes them up fails against the sandbox instead of passing by accident).
    """

    def __init__(self, clock: Clock, *, base: int = 0) -> None:
        self._clock = clock
        self._base = base
        self._last = 0

    def next(self) -> str:
        candidate = (max(math.floor(self._clock.now() * 1000), 0) << 16) | self._base
        self._last = max(candidate, self._last + 1)
        return str(self._last)

    @property
    def last(self) -> int:
        """The last id issued (0 before the first)."""
        return self._last

    def continue_after(self, last: int) -> None:
        """Never issue an id at or below ``last`` (a restored world's ids keep growing)."""
        self._last = max(self._last, last)


_URL_RE: Final = re.compile(r"https?://[^\s<>\"]+", re.IGNORECASE)
_MENTION_RE: Final = re.compile(r"(?<![\w/@.])@([a-z0-9_]+(?:@[a-z0-9](?:[a-z0-9.\-]*[a-z0-9])?)?)", re.IGNORECASE)
_TAG_RE: Final = re.compile(r"(?<![\w/&#])#(\w*[^\W\d_]\w*)")
_URL_PREFIX_RE: Final = re.compile(r"(https?://(?:www\.)?)(.*)", re.IGNORECASE | re.DOTALL)
_URL_TRAILING: Final = ".,;:!?)]}'\""


def _url_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    for match in _URL_RE.finditer(text):
        url = match.group(0).rstrip(_URL_TRAILING)
        if len(url) > len("https://"):
            spans.append((match.start(), match.start() + len(url)))
    return spans


def _grapheme_length(text: str) -> int:
    """User-perceived characters, counted by the client's own counter (Unicode extended grapheme clusters).

    One counter for the app and its sandbox: decomposed Hangul, Indic conjuncts and emoji sequences count
    the same on both sides, so a reply the composer accepts is never refused by the sandbox.
    """
    return grapheme_count(text)


def countable_length(text: str) -> int:
    """The length Mastodon validates: each URL counts 23, ``@user@domain`` counts as ``@user``.

    Args:
        text: Spoiler text plus status text.

    Returns:
        The number of characters counted against ``max_characters``.
    """
    pieces = []
    pos = 0
    for start, end in _url_spans(text):
        pieces.append(text[pos:start])
        pieces.append("x" * CHARACTERS_RESERVED_PER_URL)
        pos = end
    pieces.append(text[pos:])
    countable = _MENTION_RE.sub(lambda m: "@" + m.group(1).split("@")[0], "".join(pieces))
    return _grapheme_length(countable.replace("\r\n", "\n"))


# -- the simulated world --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Account:
    id: str
    username: str
    domain: str | None
    display_name: str
    created_at: float
    note: str = ""
    statuses_count: int = 0
    last_status_at: float | None = None

    @property
    def acct(self) -> str:
        return self.username if self.domain is None else f"{self.username}@{self.domain}"


@dataclass(slots=True)
class _Status:
    id: str
    account: _Account
    text: str
    created_at: float
    visibility: str
    language: str
    in_reply_to: _Status | None = None
    spoiler_text: str = ""
    sensitive: bool = False
    replies_count: int = 0
    topic: Topic = Topic.GENERAL  # what a simulated customer wrote about; drives their reaction to replies
    depth: int = 0  # how many customer follow-ups to agent replies precede this status in its thread
    pinned: bool = False
    edited_at: float | None = None  # set by PUT /api/v1/statuses/:id
    application: str = ""  # the app a brand status was posted from ("" for customers' statuses)


@dataclass(slots=True)
class _Notification:
    id: str
    created_at: float
    account: _Account
    status: _Status
    type: str = "mention"


@dataclass(slots=True)
class _AgentReply:
    """A brand reply to a customer status, and how that customer will react to it."""

    status: _Status
    parent: _Status
    ordinal: int
    follow_up: FollowUp | None
    due_at: float
    answered: bool = False
    survey: bool = False  # the reply asked the Net Easy question; the customer answers it (or not)


class _World:
    """Accounts, statuses and notifications of the sandbox instance. Callers hold ``lock``."""

    def __init__(self, *, clock: Clock, seed: int, brand_handle: str, saved: Mapping[str, Any] | None = None) -> None:
        """A new world, or the one ``saved`` by :meth:`snapshot` (then nothing is created anew)."""
        self.lock = threading.RLock()
        self.clock = clock
        self.seed = seed
        #: Grows with every status created: what the saver compares to know the world changed.
        self.version = 0
        self.traffic = TrafficGenerator(seed=seed, brand_handle=brand_handle)
        self._status_ids = _Snowflakes(clock)
        self._notification_ids = _Snowflakes(clock, base=0x8000)
        self._epoch = clock.now()
        self._accounts: dict[str, _Account] = {}
        self._known_names = {c.acct: c.display_name for c in CUSTOMERS}
        self.statuses: dict[str, _Status] = {}
        self.notifications: list[_Notification] = []  # ascending id order: ids only ever grow
        self.notifications_by_id: dict[str, _Notification] = {}
        self.agent_statuses: list[_Status] = []
        self._replies: list[_AgentReply] = []
        self._latest_by_account: dict[str, _Status] = {}
        if saved is not None:
            self._restore(saved, brand_handle)
            return
        self.brand = self.account(
            brand_handle,
            display_name="Care Team",
            note="<p>Official customer care. A real person answers here, weekdays 8–20 CET.</p>",
        )
        self.announcement = self._add_status(
            account=self.brand,
            text=self.traffic.announcement(),
            created_at=self._epoch - 3 * 3600,
            visibility="public",
            language="en",
            in_reply_to=None,
            topic=Topic.ANNOUNCEMENT,
        )
        self.announcement.pinned = True

    # saving and restoring (issue 19 #6: a restarted app continues the same shift on the same sandbox world)

    def _kept_statuses(self) -> list[_Status]:
        """The statuses a snapshot keeps: those newer than ``SAVED_RETENTION``, the pinned announcement, and all
        of their ancestors (a kept reply keeps its thread)."""
        horizon = self.clock.now() - SAVED_RETENTION
        keep: set[str] = set()
        roots = [st for st in self.statuses.values() if st.created_at >= horizon or st.pinned]
        roots.append(self.announcement)
        for st in roots:
            node: _Status | None = st
            while node is not None and node.id not in keep:
                keep.add(node.id)
                node = node.in_reply_to
        return [st for st in self.statuses.values() if st.id in keep]

    def snapshot(self) -> Json:
        """Everything needed to rebuild this world later, as JSON-ready data. Callers hold ``lock``.

        Posts older than ``SAVED_RETENTION`` that nothing kept refers to are left out, with their notifications
        and the replies to them.
        """
        statuses = self._kept_statuses()
        kept = {st.id for st in statuses}

        def reply(r: _AgentReply) -> Json:
            follow = None if r.follow_up is None else {"text": r.follow_up.text, "delay": r.follow_up.delay}
            due = None if math.isinf(r.due_at) else r.due_at
            return {
                "status": r.status.id, "parent": r.parent.id, "ordinal": r.ordinal, "follow_up": follow,
                "due_at": due, "answered": r.answered, "survey": r.survey,
            }  # fmt: skip

        return {
            "format": SAVED_FORMAT,
            "seed": self.seed,
            "brand": self.brand.acct,
            "epoch": self._epoch,
            "generated": self.traffic.generated,
            "status_ids": self._status_ids.last,
            "notification_ids": self._notification_ids.last,
            "accounts": [
                {
                    "acct": a.acct,
                    "id": a.id,
                    "display_name": a.display_name,
                    "created_at": a.created_at,
                    "note": a.note,
                    "statuses_count": a.statuses_count,
                    "last_status_at": a.last_status_at,
                }
                for a in self._accounts.values()
            ],
            "statuses": [
                {
                    "id": st.id,
                    "account": st.account.acct,
                    "text": st.text,
                    "created_at": st.created_at,
                    "visibility": st.visibility,
                    "language": st.language,
                    "in_reply_to": None if st.in_reply_to is None else st.in_reply_to.id,
                    "spoiler_text": st.spoiler_text,
                    "sensitive": st.sensitive,
                    "replies_count": st.replies_count,
                    "topic": st.topic.value,
                    "depth": st.depth,
                    "pinned": st.pinned,
                    "edited_at": st.edited_at,
                    "application": st.application,
                }
                for st in statuses
            ],
            "notifications": [
                {
                    "id": n.id,
                    "created_at": n.created_at,
                    "account": n.account.acct,
                    "status": n.status.id,
                    "type": n.type,
                }
                for n in self.notifications
                if n.status.id in kept
            ],
            "agent_statuses": [st.id for st in self.agent_statuses if st.id in kept],
            "replies": [reply(r) for r in self._replies if r.status.id in kept and r.parent.id in kept],
            # a customer whose latest post was forgotten starts a new thread next time
            "latest": {account_id: st.id for account_id, st in self._latest_by_account.items() if st.id in kept},
            "announcement": self.announcement.id,
        }

    def _restore(self, saved: Mapping[str, Any], brand_handle: str) -> None:
        """Rebuild the world a snapshot describes (raises KeyError, TypeError or ValueError when it is damaged)."""
        self._epoch = float(saved["epoch"])
        for a in saved["accounts"]:
            username, _, domain = str(a["acct"]).partition("@")
            self._accounts[str(a["acct"])] = _Account(
                id=str(a["id"]), username=username, domain=domain or None, display_name=str(a["display_name"]),
                created_at=float(a["created_at"]), note=str(a["note"]), statuses_count=int(a["statuses_count"]),
                last_status_at=None if a["last_status_at"] is None else float(a["last_status_at"]),
            )  # fmt: skip
        for st in saved["statuses"]:
            parent = None if st["in_reply_to"] is None else self.statuses[str(st["in_reply_to"])]
            self.statuses[str(st["id"])] = _Status(
                id=str(st["id"]), account=self._accounts[str(st["account"])], text=str(st["text"]),
                created_at=float(st["created_at"]), visibility=str(st["visibility"]), language=str(st["language"]),
                in_reply_to=parent, spoiler_text=str(st["spoiler_text"]), sensitive=bool(st["sensitive"]),
                replies_count=int(st["replies_count"]), topic=Topic(st["topic"]), depth=int(st["depth"]),
                pinned=bool(st["pinned"]), edited_at=None if st["edited_at"] is None else float(st["edited_at"]),
                # A world saved before statuses named their app: the brand's came through the API.
                application=str(st.get("application", API_APPLICATION if st["account"] == saved["brand"] else "")),
            )  # fmt: skip
        for n in saved["notifications"]:
            notification = _Notification(
                id=str(n["id"]), created_at=float(n["created_at"]), account=self._accounts[str(n["account"])],
                status=self.statuses[str(n["status"])], type=str(n["type"]),
            )  # fmt: skip
            self.notifications.append(notification)
            self.notifications_by_id[notification.id] = notification
        self.agent_statuses = [self.statuses[str(i)] for i in saved["agent_statuses"]]
        for r in saved["replies"]:
            follow = r["follow_up"]
            self._replies.append(
                _AgentReply(
                    self.statuses[str(r["status"])], self.statuses[str(r["parent"])], int(r["ordinal"]),
                    None if follow is None else FollowUp(str(follow["text"]), float(follow["delay"])),
                    math.inf if r["due_at"] is None else float(r["due_at"]),
                    answered=bool(r["answered"]), survey=bool(r["survey"]),
                )
            )  # fmt: skip
        self._latest_by_account = {str(k): self.statuses[str(v)] for k, v in saved["latest"].items()}
        self._status_ids.continue_after(int(saved["status_ids"]))
        self._notification_ids.continue_after(int(saved["notification_ids"]))
        self.traffic.fast_forward(int(saved["generated"]))
        self.brand = self._accounts[brand_handle.removeprefix("@").lower()]
        self.announcement = self.statuses[str(saved["announcement"])]
        self.version = len(self.statuses)

    # accounts

    def account(self, acct: str, *, display_name: str = "", note: str = "") -> _Account:
        """The account for ``acct`` (``user`` or ``user@domain``), created on first use."""
        acct = acct.removeprefix("@").lower().removesuffix(f"@{INSTANCE_DOMAIN}")
        found = self._accounts.get(acct)
        if found is not None:
            return found
        username, _, domain = acct.partition("@")
        if not re.fullmatch(r"[a-z0-9_]+", username) or (domain and not re.fullmatch(r"[a-z0-9.\-]+", domain)):
            raise ValueError(f"not a Mastodon handle: {acct!r}")
        seed = _stable_int(acct)
        # Ids are stable per handle (not per run); join dates are whole UTC days before the sandbox started.
        day = math.floor(self._epoch / 86400) * 86400
        created = _Account(
            id=str(109_000_000_000_000_000 + seed % 10**15),
            username=username,
            domain=domain or None,
            display_name=display_name or self._known_names.get(acct, username),
            created_at=day - (30 + seed % 2500) * 86400,
            note=note,
        )
        self._accounts[acct] = created
        return created

    def known_account_list(self) -> list[_Account]:
        """Every account of the instance."""
        return list(self._accounts.values())

    @property
    def known_accounts(self) -> int:
        """How many accounts exist; they are only ever added, so a new one changes how mentions resolve."""
        return len(self._accounts)

    def resolve(self, acct: str) -> _Account | None:
        """The known account a ``@mention`` in text refers to, if any."""
        key = acct.lower().removesuffix(f"@{INSTANCE_DOMAIN}")
        return self._accounts.get(key)

    # statuses

    def _add_status(
        self,
        *,
        account: _Account,
        text: str,
        created_at: float,
        visibility: str,
        language: str,
        in_reply_to: _Status | None,
        topic: Topic = Topic.GENERAL,
        spoiler_text: str = "",
        sensitive: bool = False,
        depth: int = 0,
    ) -> _Status:
        status = _Status(
            id=self._status_ids.next(),
            account=account,
            text=text,
            created_at=created_at,
            visibility=visibility,
            language=language,
            in_reply_to=in_reply_to,
            spoiler_text=spoiler_text,
            sensitive=sensitive or bool(spoiler_text),
            topic=topic,
            depth=depth,
        )
        self.statuses[status.id] = status
        self.version += 1
        if in_reply_to is not None:
            in_reply_to.replies_count += 1
        account.statuses_count += 1
        account.last_status_at = max(account.last_status_at or created_at, created_at)
        self._latest_by_account[account.id] = status
        return status

    def add_customer_status(
        self,
        *,
        account: _Account,
        text: str,
        visibility: str,
        language: str,
        in_reply_to: _Status | None,
        created_at: float | None = None,
        topic: Topic = Topic.GENERAL,
    ) -> _Notification:
        """Store a status that mentions the brand, and the brand's mention notification for it."""
        if in_reply_to is None:
            depth = 0
        elif in_reply_to.account is self.brand and in_reply_to.in_reply_to is not None:
            depth = in_reply_to.depth + 1
        else:
            depth = in_reply_to.depth
        when = self.clock.now() if created_at is None else created_at
        status = self._add_status(
            account=account,
            text=text,
            created_at=when,
            visibility=visibility,
            language=language,
            in_reply_to=in_reply_to,
            topic=topic,
            depth=depth,
        )
        notification = _Notification(id=self._notification_ids.next(), created_at=when, account=account, status=status)
        self.notifications.append(notification)
        self.notifications_by_id[notification.id] = notification
        return notification

    def generate(self, n: int, *, created_at: Sequence[float] | None = None) -> list[_Notification]:
        """Create the next ``n`` generated customer mentions (at ``created_at`` times, else now)."""
        created: list[_Notification] = []
        for i in range(n):
            mention = self.traffic.next_mention()
            customer = mention.customer
            account = self.account(customer.acct, display_name=customer.display_name)
            parent: _Status | None = None
            if mention.thread is Thread.SELF:
                parent = self._latest_by_account.get(account.id)
            elif mention.thread is Thread.ANNOUNCEMENT:
                parent = self.announcement
            created.append(
                self.add_customer_status(
                    account=account,
                    text=mention.text,
                    visibility=mention.visibility,
                    language=mention.language,
                    in_reply_to=parent,
                    created_at=None if created_at is None else created_at[i],
                    topic=mention.topic,
                )
            )
        return created

    def add_agent_status(
        self,
        *,
        text: str,
        visibility: str,
        language: str,
        in_reply_to: _Status | None,
        spoiler_text: str,
        sensitive: bool,
        application: str = API_APPLICATION,
    ) -> _Status:
        """Store a status the brand posted (from ``application``), and decide whether the customer it answers
        will write back."""
        now = self.clock.now()
        status = self._add_status(
            account=self.brand,
            text=text,
            created_at=now,
            visibility=visibility,
            language=language,
            in_reply_to=in_reply_to,
            spoiler_text=spoiler_text,
            sensitive=sensitive,
            depth=in_reply_to.depth if in_reply_to is not None else 0,
        )
        status.application = application
        self.agent_statuses.append(status)
        if in_reply_to is not None and in_reply_to.account is not self.brand:
            ordinal = len(self._replies)
            follow_up = None
            survey = is_survey_prompt(text)
            if survey:
                follow_up = self.traffic.survey_answer(ordinal=ordinal)
            elif in_reply_to.depth < MAX_FOLLOW_UP_DEPTH:
                follow_up = self.traffic.follow_up(
                    ordinal=ordinal, topic=in_reply_to.topic, language=in_reply_to.language, depth=in_reply_to.depth
                )
            due_at = now + follow_up.delay if follow_up is not None else math.inf
            self._replies.append(_AgentReply(status, in_reply_to, ordinal, follow_up, due_at, survey=survey))
        return status

    def delete_agent_status(self, status: _Status) -> None:
        """Delete one of the brand's statuses (``DELETE /api/v1/statuses/:id``): it leaves the world, and the
        customer it answered no longer reacts to it. Replies to it stay, as on Mastodon, with no parent."""
        self.statuses.pop(status.id, None)
        self.version += 1
        self.agent_statuses = [st for st in self.agent_statuses if st is not status]
        self._replies = [r for r in self._replies if r.status is not status]
        if status.in_reply_to is not None:
            status.in_reply_to.replies_count = max(0, status.in_reply_to.replies_count - 1)
        for other in self.statuses.values():
            if other.in_reply_to is status:
                other.in_reply_to = None
        status.account.statuses_count = max(0, status.account.statuses_count - 1)
        if self._latest_by_account.get(status.account.id) is status:
            own = [st for st in self.statuses.values() if st.account is status.account]
            if own:
                self._latest_by_account[status.account.id] = max(own, key=lambda st: _id_key(st.id))
            else:
                del self._latest_by_account[status.account.id]

    def next_follow_up_due(self) -> float:
        return min((r.due_at for r in self._replies if not r.answered), default=math.inf)

    def post_follow_ups(self, *, now: float | None, force: bool = False) -> list[_Notification]:
        """Let customers answer agent replies: those due by ``now`` (all planned ones when ``now`` is None).

        With ``force``, customers who had decided to stay silent answer too.
        """
        posted: list[_Notification] = []
        for reply in self._replies:
            if reply.answered:
                continue
            follow_up = reply.follow_up
            if follow_up is None:
                if not force:
                    continue
                parent = reply.parent
                if reply.survey:
                    follow_up = self.traffic.survey_answer(ordinal=reply.ordinal, force=True)
                else:
                    follow_up = self.traffic.follow_up(
                        ordinal=reply.ordinal,
                        topic=parent.topic,
                        language=parent.language,
                        depth=parent.depth,
                        force=True,
                    )
                if follow_up is None:
                    continue
            elif now is not None and reply.due_at > now:
                continue
            reply.answered = True
            posted.append(
                self.add_customer_status(
                    account=reply.parent.account,
                    text=follow_up.text,
                    visibility=reply.status.visibility,
                    language=reply.parent.language,
                    in_reply_to=reply.status,
                    # On schedule it was written when due; when hurried or forced, it is written now.
                    created_at=reply.due_at if now is not None else None,
                    topic=reply.parent.topic,
                )
            )
        return posted

    def ancestors(self, status: _Status) -> list[_Status]:
        chain: list[_Status] = []
        parent = status.in_reply_to
        while parent is not None:
            chain.append(parent)
            parent = parent.in_reply_to
        chain.reverse()
        return chain

    def descendants(self, status: _Status) -> list[_Status]:
        children: dict[str, list[_Status]] = {}
        for candidate in self.statuses.values():
            if candidate.in_reply_to is not None:
                children.setdefault(candidate.in_reply_to.id, []).append(candidate)
        ordered: list[_Status] = []
        stack = sorted(children.get(status.id, []), key=lambda s: _id_key(s.id), reverse=True)
        while stack:  # depth-first, oldest reply first, like Mastodon's thread view
            current = stack.pop()
            ordered.append(current)
            stack.extend(sorted(children.get(current.id, []), key=lambda s: _id_key(s.id), reverse=True))
        return ordered


# -- rendering ------------------------------------------------------------------------------------------------


#: Texts whose HTML the renderer keeps (a few MB); past that it starts afresh.
_CONTENT_CACHE_SIZE: Final = 20_000


@dataclass(frozen=True, slots=True)
class _Rendered:
    html: str
    mentions: list[_Account]
    tags: list[str]


class _Renderer:
    """Turns world objects into Mastodon API JSON entities (docs.joinmastodon.org/entities)."""

    def __init__(self, world: _World) -> None:
        self._world = world
        self.base_url = "http://127.0.0.1"
        # Rendering is most of a page's cost (a 100,000-mention backfill renders 100,000 statuses): an account's
        # JSON and a text's HTML are kept while everything they are made of is unchanged (the keys say what).
        self._accounts: dict[str, tuple[tuple[object, ...], Json]] = {}
        self._contents: dict[tuple[str, str, int], _Rendered] = {}

    def account(self, account: _Account) -> Json:
        key = (
            account.username, account.domain, account.display_name, account.created_at, account.note,
            account.statuses_count, account.last_status_at, self.base_url,
        )  # fmt: skip
        cached = self._accounts.get(account.id)
        if cached is None or cached[0] != key:
            cached = (key, self._account(account))
            self._accounts[account.id] = cached
        # A fresh dict with fresh lists each time: callers may change what they get (credential_account does).
        return {**cached[1], "emojis": [], "roles": [], "fields": []}

    def _account(self, account: _Account) -> Json:
        seed = _stable_int(account.acct)
        last = account.last_status_at
        return {
            "id": account.id,
            "username": account.username,
            "acct": account.acct,
            "display_name": account.display_name,
            "locked": False,
            "bot": False,
            "discoverable": True,
            "indexable": True,
            "group": False,
            "created_at": _iso(account.created_at),
            "note": account.note,
            "url": f"{self.base_url}/@{account.acct}",
            "uri": f"{self.base_url}/users/{account.username}",
            "avatar": f"{self.base_url}/avatars/original/missing.png",
            "avatar_static": f"{self.base_url}/avatars/original/missing.png",
            "header": f"{self.base_url}/headers/original/missing.png",
            "header_static": f"{self.base_url}/headers/original/missing.png",
            "followers_count": seed % 900 + 3,
            "following_count": seed // 7 % 400 + 1,
            "statuses_count": account.statuses_count,
            "last_status_at": None if last is None else datetime.fromtimestamp(last, tz=UTC).date().isoformat(),
            "hide_collections": False,
            "noindex": False,
            "emojis": [],
            "roles": [],
            "fields": [],
        }

    def credential_account(self, account: _Account) -> Json:
        rendered = self.account(account)
        rendered["source"] = {
            "privacy": "public",
            "sensitive": False,
            "language": "en",
            "note": re.sub(r"<[^>]+>", "", account.note),
            "fields": [],
            "follow_requests_count": 0,
            "hide_collections": False,
            "discoverable": True,
            "indexable": True,
            "attribution_domains": [],
        }
        rendered["role"] = {"id": "-99", "name": "", "permissions": "0", "color": "", "highlighted": False}
        return rendered

    def status(self, status: _Status) -> Json:
        rendered = self.content(status.text)
        mentions = list(rendered.mentions)
        brand = self._world.brand
        if status.account is not brand and brand not in mentions:
            mentions.append(brand)  # a mention notification exists only because the status mentions the brand
        parent = status.in_reply_to
        url = f"{self.base_url}/@{status.account.acct}/{status.id}"
        result: Json = {
            "id": status.id,
            "created_at": _iso(status.created_at),
            "in_reply_to_id": None if parent is None else parent.id,
            "in_reply_to_account_id": None if parent is None else parent.account.id,
            "sensitive": status.sensitive,
            "spoiler_text": status.spoiler_text,
            "visibility": status.visibility,
            "language": status.language,
            "uri": f"{self.base_url}/users/{status.account.username}/statuses/{status.id}",
            "url": url,
            "replies_count": status.replies_count,
            "reblogs_count": 0,
            "favourites_count": 0,
            "edited_at": None if status.edited_at is None else _iso(status.edited_at),
            "favourited": False,
            "reblogged": False,
            "muted": False,
            "bookmarked": False,
            "content": rendered.html,
            "filtered": [],
            "reblog": None,
            "application": {"name": status.application, "website": None} if status.application else None,
            "account": self.account(status.account),
            "media_attachments": [],
            "mentions": [
                {
                    "id": a.id,
                    "username": a.username,
                    "url": f"{self.base_url}/@{a.acct}",
                    "acct": a.acct,
                }
                for a in mentions
            ],
            "tags": [{"name": t.lower(), "url": f"{self.base_url}/tags/{t.lower()}"} for t in rendered.tags],
            "emojis": [],
            "card": None,
            "poll": None,
        }
        if status.account is brand:
            result["pinned"] = status.pinned  # only present on the viewer's own statuses
        return result

    def notification(self, notification: _Notification) -> Json:
        return {
            "id": notification.id,
            "type": notification.type,
            "created_at": _iso(notification.created_at),
            "group_key": f"ungrouped-{notification.id}",
            "account": self.account(notification.account),
            "status": self.status(notification.status),
        }

    def content(self, text: str) -> _Rendered:
        """Sanitized HTML like Mastodon's TextFormatter: paragraphs, ``<br />``, h-card mentions, short links."""
        key = (text, self.base_url, self._world.known_accounts)
        rendered = self._contents.get(key)
        if rendered is None:
            if len(self._contents) >= _CONTENT_CACHE_SIZE:
                self._contents.clear()
            rendered = self._contents[key] = self._content(text)
        return _Rendered(rendered.html, list(rendered.mentions), list(rendered.tags))

    def _content(self, text: str) -> _Rendered:
        mentions: list[_Account] = []
        tags: list[str] = []
        paragraphs = re.split(r"\n{2,}", text.replace("\r\n", "\n").strip("\n"))
        html = "".join(
            "<p>" + "<br />".join(self._line(line, mentions, tags) for line in paragraph.split("\n")) + "</p>"
            for paragraph in paragraphs
        )
        return _Rendered(html, mentions, tags)

    def _line(self, line: str, mentions: list[_Account], tags: list[str]) -> str:
        urls = _url_spans(line)

        def free(start: int, end: int) -> bool:
            return all(end <= a or start >= b for a, b in urls)

        tokens: list[tuple[int, int, str]] = []
        for start, end in urls:
            tokens.append((start, end, self._link(line[start:end])))
        for match in _MENTION_RE.finditer(line):
            account = self._world.resolve(match.group(1))
            if account is not None and free(match.start(), match.end()):
                if account not in mentions:
                    mentions.append(account)
                tokens.append(
                    (
                        match.start(),
                        match.end(),
                        f'<span class="h-card" translate="no"><a href="{_h(self.base_url)}/@{_h(account.acct)}"'
                        f' class="u-url mention">@<span>{_h(account.username)}</span></a></span>',
                    )
                )
        for match in _TAG_RE.finditer(line):
            if free(match.start(), match.end()):
                name = match.group(1)
                if name.lower() not in (t.lower() for t in tags):
                    tags.append(name)
                tokens.append(
                    (
                        match.start(),
                        match.end(),
                        f'<a href="{_h(self.base_url)}/tags/{_h(name.lower())}" class="mention hashtag"'
                        f' rel="tag">#<span>{_h(name)}</span></a>',
                    )
                )
        out: list[str] = []
        pos = 0
        for start, end, html in sorted(tokens):
            out.append(_h(line[pos:start]))
            out.append(html)
            pos = end
        out.append(_h(line[pos:]))
        return "".join(out)

    @staticmethod
    def _link(url: str) -> str:
        match = _URL_PREFIX_RE.fullmatch(url)
        prefix, rest = (match.group(1), match.group(2)) if match else ("", url)
        display, suffix = rest[:30], rest[30:]
        return (
            f'<a href="{_h(url)}" rel="nofollow noopener" target="_blank">'
            f'<span class="invisible">{_h(prefix)}</span>'
            f'<span class="{"ellipsis" if suffix else ""}">{_h(display)}</span>'
            f'<span class="invisible">{_h(suffix)}</span></a>'
        )

    def instance_v1(self) -> Json:
        """``GET /api/v1/instance``: the older shape, every standard client's first call."""
        v2 = self.instance()
        host = urlsplit(self.base_url).netloc
        return {
            "uri": INSTANCE_DOMAIN,
            "title": v2["title"],
            "short_description": v2["description"],
            "description": v2["description"],
            "email": f"care@{INSTANCE_DOMAIN}",
            "version": MASTODON_VERSION,
            "urls": {"streaming_api": f"ws://{host}"},
            "stats": {"user_count": len(CUSTOMERS) + 1, "status_count": len(self._world.statuses), "domain_count": 1},
            "thumbnail": v2["thumbnail"]["url"],
            "languages": v2["languages"],
            "registrations": False,
            "approval_required": False,
            "invites_enabled": False,
            "configuration": {
                "accounts": {"max_featured_tags": 10},
                "statuses": v2["configuration"]["statuses"],
                "media_attachments": v2["configuration"]["media_attachments"],
                "polls": v2["configuration"]["polls"],
            },
            "contact_account": v2["contact"]["account"],
            "rules": v2.get("rules", []),
        }

    def instance(self) -> Json:
        host = urlsplit(self.base_url).netloc
        brand = self.account(self._world.brand)
        return {
            "domain": INSTANCE_DOMAIN,
            "title": "Care Console Sandbox",
            "version": MASTODON_VERSION,
            "source_url": "https://github.com/mastodon/mastodon",
            "description": "A simulated Mastodon server whose make-believe customers write to @"
            f"{self._world.brand.username}. Nothing here leaves this computer.",
            "usage": {"users": {"active_month": len(CUSTOMERS) + 1}},
            "thumbnail": {
                "url": f"{self.base_url}/packs/media/images/preview.png",
                "blurhash": "UeKUpFxuo~R%0nW;WCnhF6RjaJt757oJodS$",
                "versions": {
                    "@1x": f"{self.base_url}/packs/media/images/preview.png",
                    "@2x": f"{self.base_url}/packs/media/images/preview.png",
                },
            },
            "icon": [],
            "languages": ["en", "de", "es", "fr"],
            "configuration": {
                "urls": {
                    "streaming": f"ws://{host}",
                    "status": None,
                    "about": f"{self.base_url}/about",
                    "privacy_policy": None,
                    "terms_of_service": None,
                },
                "vapid": {"public_key": "BCkMmVlS4_wmD4a5HNm8_fxXWRHIFbU-Sandbox-Only-Not-A-Real-Key="},
                "accounts": {"max_featured_tags": 10, "max_pinned_statuses": 5},
                "statuses": {
                    "max_characters": MAX_CHARACTERS,
                    "max_media_attachments": 4,
                    "characters_reserved_per_url": CHARACTERS_RESERVED_PER_URL,
                },
                "media_attachments": {
                    "supported_mime_types": ["image/jpeg", "image/png", "image/gif", "image/webp", "video/mp4"],
                    "description_limit": 1500,
                    "image_size_limit": 16777216,
                    "image_matrix_limit": 33177600,
                    "video_size_limit": 103809024,
                    "video_frame_rate_limit": 120,
                    "video_matrix_limit": 8294400,
                },
                "polls": {
                    "max_options": 4,
                    "max_characters_per_option": 50,
                    "min_expiration": 300,
                    "max_expiration": 2629746,
                },
                "translation": {"enabled": False},
            },
            "registrations": {"enabled": False, "approval_required": False, "message": None, "url": None},
            "api_versions": {"mastodon": 2},
            "contact": {"email": f"support@{INSTANCE_DOMAIN}", "account": brand},
            "rules": [],
        }


# -- HTTP API -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    client: str
    faults: Drawn = field(default_factory=Drawn)


@dataclass(slots=True)
class _Response:
    status: int
    payload: Any
    headers: dict[str, str] = field(default_factory=dict)
    html: str | None = None  # sent as text/html instead of the JSON payload


def _error(status: HTTPStatus, message: str, **headers: str) -> _Response:
    return _Response(int(status), {"error": message}, dict(headers))


@dataclass(frozen=True, slots=True)
class _Window:
    remaining: int
    reset_at: float
    retry_after: int
    throttled: bool


class _RateLimiter:
    """Fixed 5-minute windows aligned to the epoch, like rack-attack in Mastodon."""

    def __init__(self, limit: int = RATE_LIMIT) -> None:
        self._counts: dict[str, tuple[int, int]] = {}
        self.limit = limit  # requests per window

    def hit(self, key: str, now: float) -> _Window:
        window = math.floor(now) // RATE_PERIOD
        seen_window, count = self._counts.get(key, (window, 0))
        count = count + 1 if seen_window == window else 1
        self._counts[key] = (window, count)
        retry_after = RATE_PERIOD - math.floor(now) % RATE_PERIOD
        return _Window(max(self.limit - count, 0), now + retry_after, retry_after, count > self.limit)


def _first(query: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _limit(raw: str | None) -> int:
    # Rails: params[:limit].to_i.abs, capped; a missing limit means the default.
    if raw is None:
        return DEFAULT_NOTIFICATIONS_LIMIT
    match = re.match(r"\s*[+-]?\d+", raw)
    return min(abs(int(match.group())) if match else 0, MAX_NOTIFICATIONS_LIMIT)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "t", "on", "yes")
    return bool(value)


Handler = Callable[[_Request, "re.Match[str]"], _Response]


class _Api:
    """Routes requests to handlers; applies auth, rate limits and idempotency. Thread-safe via the world lock."""

    def __init__(self, world: _World, *, token: str, requests: RequestLog, faults: FaultPlan) -> None:
        self._world = world
        self._token = token
        self.faults = faults
        self._shuffle = random.Random(0)
        self._generation = 0
        self._requests = requests
        self.render = _Renderer(world)
        self._limiter = _RateLimiter()
        self._idempotency: dict[tuple[str, str], tuple[str, float]] = {}
        self._routes: list[tuple[re.Pattern[str], dict[str, Handler], bool]] = [
            (re.compile(r"/api/v1/notifications"), {"GET": self._notifications}, True),
            (re.compile(r"/api/v1/notifications/(?P<id>[^/]+)"), {"GET": self._notification}, True),
            (re.compile(r"/api/v1/statuses"), {"POST": self._post_status}, True),
            (
                re.compile(r"/api/v1/statuses/(?P<id>[^/]+)"),
                {"GET": self._status, "PUT": self._edit_status, "DELETE": self._delete_status},
                True,
            ),
            (re.compile(r"/api/v1/statuses/(?P<id>[^/]+)/context"), {"GET": self._context}, True),
            (re.compile(r"/api/v1/accounts/verify_credentials"), {"GET": self._verify_credentials}, True),
            (re.compile(r"/api/v1/accounts/(?P<id>[^/]+)/statuses"), {"GET": self._account_statuses}, True),
            (re.compile(r"/api/v2/instance"), {"GET": self._instance}, False),
            # What a standard client needs to sign in (Mastodon.py, Tusky, Ivory…): the sandbox approves at once.
            (re.compile(r"/api/v1/instance"), {"GET": self._instance_v1}, False),
            (re.compile(r"/api/v1/apps"), {"POST": self._create_app}, False),
            (re.compile(r"/oauth/authorize"), {"GET": self._authorize}, False),
            (re.compile(r"/oauth/token"), {"POST": self._oauth_token}, False),
            (re.compile(r"/oauth/revoke"), {"POST": self._oauth_revoke}, False),
        ]
        #: Registered client apps (client_id -> app) and authorization codes not yet exchanged (code -> client_id).
        self._apps: dict[str, Json] = {}
        self._codes: dict[str, str] = {}

    def set_rate_limit(self, requests_per_window: int) -> None:
        with self._world.lock:
            self._limiter.limit = requests_per_window

    @property
    def lock(self) -> threading.RLock:
        return self._world.lock

    def log(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        self._requests.append((method, path, query))

    def handle(self, request: _Request) -> _Response:
        with self._world.lock:
            self.log(request.method, request.path, request.query)
            now = self._world.clock.now()
            authorized = self._authorized(request)
            window = self._limiter.hit(f"token:{self._token}" if authorized else f"ip:{request.client}", now)
            if window.throttled:
                response = _error(HTTPStatus.TOO_MANY_REQUESTS, "Too many requests")
                response.headers["Retry-After"] = str(window.retry_after)
            elif request.faults.replacing is not None:
                response = self._fault_response(request.faults.replacing, now)
            else:
                response = self._route(request, authorized=authorized)
            response.headers.setdefault("X-RateLimit-Limit", str(self._limiter.limit))
            response.headers.setdefault("X-RateLimit-Remaining", str(window.remaining))
            response.headers.setdefault("X-RateLimit-Reset", _iso(window.reset_at))
            low = request.faults.altered(Fault.LOW_BUDGET)
            if low is not None and response.status < 400:
                response.headers["X-RateLimit-Remaining"] = str(min(window.remaining, low.remaining))
                response.headers["X-RateLimit-Reset"] = _iso(now + low.retry_after)
            return response

    def _fault_response(self, rule: FaultRule, now: float) -> _Response:
        """The answer a replacing fault gives instead of handling the request."""
        fault = rule.fault
        if fault is Fault.REVOKED:
            return _error(
                HTTPStatus.UNAUTHORIZED,
                "The access token was revoked",
                **{"WWW-Authenticate": 'Bearer realm="Doorkeeper", error="invalid_token"'},
            )
        if fault in (Fault.RETRY_AFTER, Fault.RETRY_AFTER_DATE, Fault.RATE_LIMIT_RESET):
            response = _error(HTTPStatus.TOO_MANY_REQUESTS, "Too many requests")
            reset = now + rule.retry_after
            response.headers["X-RateLimit-Remaining"] = "0"
            response.headers["X-RateLimit-Reset"] = _iso(reset)
            if fault is Fault.RETRY_AFTER:
                response.headers["Retry-After"] = str(math.ceil(rule.retry_after))
            elif fault is Fault.RETRY_AFTER_DATE:
                response.headers["Retry-After"] = email.utils.formatdate(math.ceil(reset), usegmt=True)
            return response
        if fault is Fault.HTML_ERROR:
            return _Response(
                int(HTTPStatus.BAD_GATEWAY),
                None,
                html="<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>"
                "<center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>",
            )
        if fault is Fault.DELETED:
            return _error(HTTPStatus.NOT_FOUND, NOT_FOUND)
        return _error(HTTPStatus(int(fault.value)), f"Sandbox fault: {HTTPStatus(int(fault.value)).phrase}")

    @property
    def token(self) -> str:
        return self._token

    def rotate_token(self) -> str:
        """Revoke the current token and issue a new one (an admin revoked the app's access)."""
        with self._world.lock:
            self._generation += 1
            self._token = f"{self._token.split('~')[0]}~{self._generation}"
            return self._token

    def _authorized(self, request: _Request) -> bool:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), self._token.encode())

    def _route(self, request: _Request, *, authorized: bool) -> _Response:
        path = request.path.rstrip("/") or "/"
        for pattern, methods, needs_auth in self._routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            handler = methods.get(request.method)
            if handler is None:
                return _error(HTTPStatus.METHOD_NOT_ALLOWED, "Method not allowed", Allow=", ".join(sorted(methods)))
            if needs_auth and not authorized:
                return _error(
                    HTTPStatus.UNAUTHORIZED,
                    "The access token is invalid",
                    **{
                        "WWW-Authenticate": 'Bearer realm="Doorkeeper", error="invalid_token", '
                        'error_description="The access token is invalid"'
                    },
                )
            return handler(request, match)
        return _error(HTTPStatus.NOT_FOUND, NOT_FOUND)

    # handlers

    def _notifications(self, request: _Request, _match: re.Match[str]) -> _Response:
        query = request.query
        types = query.get("types[]", []) + query.get("types", [])
        excluded = query.get("exclude_types[]", []) + query.get("exclude_types", [])
        account_id = _first(query, "account_id")
        limit = _limit(_first(query, "limit"))
        max_id, since_id, min_id = (_first(query, k) or None for k in ("max_id", "since_id", "min_id"))

        def wanted(n: _Notification) -> bool:
            return (
                (not types or n.type in types)
                and n.type not in excluded
                and (account_id is None or n.account.id == account_id)
                and (max_id is None or _id_key(n.id) < _id_key(max_id))
            )

        everything = self._world.notifications  # ascending id order: ids only ever grow
        below: list[_Notification] = []  # the newest few at or below min_id (for the "repeat" fault)
        if min_id is not None:
            # min_id: the items immediately after the cursor, returned newest first (methods/notifications.md).
            start = bisect.bisect_right(everything, _id_key(min_id), key=lambda n: _id_key(n.id))
            page: list[_Notification] = []
            for n in itertools.islice(everything, start, None):
                if len(page) >= limit:
                    break
                if wanted(n):
                    page.append(n)
            page.reverse()
            below = [n for n in everything[max(0, start - 3) : start] if wanted(n)]
        else:
            # max_id / since_id: the newest page below max_id and above since_id (so since_id may skip items).
            # Walked down from max_id, so a first sync paging back through 100,000 items stays linear.
            end = len(everything)
            if max_id is not None:
                end = bisect.bisect_left(everything, _id_key(max_id), key=lambda n: _id_key(n.id))
            page = []
            for i in range(end - 1, -1, -1):
                n = everything[i]
                if len(page) >= limit or (since_id is not None and _id_key(n.id) <= _id_key(since_id)):
                    break
                if wanted(n):
                    page.append(n)
        payload = [self.render.notification(n) for n in page]
        faults = request.faults
        if faults.altered(Fault.REPEAT) is not None:
            # Items already sent: those at or below the cursor, else the page's own newest ones again.
            payload += [self.render.notification(n) for n in reversed(below)] or payload[:2]
        if faults.altered(Fault.OUT_OF_ORDER) is not None:
            self._shuffle.shuffle(payload)
        if faults.altered(Fault.MALFORMED_ITEM) is not None and payload:
            broken = payload[len(payload) // 2]
            broken["status"] = {k: v for k, v in broken["status"].items() if k != "account"}
        response = _Response(int(HTTPStatus.OK), payload)
        if page:
            kept = [
                ("account_id", v)
                for v in query.get("account_id", [])
                if v  # Rails drops blank params from generated URLs
            ]
            kept += [("exclude_types[]", v) for v in excluded]
            kept += [("limit", v) for v in query.get("limit", [])]
            kept += [("types[]", v) for v in types]
            next_url = self._url("/api/v1/notifications", [*kept, ("max_id", page[-1].id)])
            prev_url = self._url("/api/v1/notifications", [*kept, ("min_id", page[0].id)])
            response.headers["Link"] = f'<{next_url}>; rel="next", <{prev_url}>; rel="prev"'
        return response

    def _url(self, path: str, params: Iterable[tuple[str, str]]) -> str:
        return f"{self.render.base_url}{path}?{urlencode(sorted(params, key=lambda kv: kv[0]))}"

    def _notification(self, _request: _Request, match: re.Match[str]) -> _Response:
        notification = self._world.notifications_by_id.get(match["id"])
        if notification is None:
            return _error(HTTPStatus.NOT_FOUND, NOT_FOUND)
        return _Response(int(HTTPStatus.OK), self.render.notification(notification))

    def _status(self, _request: _Request, match: re.Match[str]) -> _Response:
        status = self._world.statuses.get(match["id"])
        if status is None:
            return _error(HTTPStatus.NOT_FOUND, NOT_FOUND)
        return _Response(int(HTTPStatus.OK), self.render.status(status))

    def _edit_status(self, request: _Request, match: re.Match[str]) -> _Response:
        """Edit one of the brand's statuses in place (Mastodon 3.5+ ``PUT /api/v1/statuses/:id``)."""
        status = self._world.statuses.get(match["id"])
        if status is None:
            return _error(HTTPStatus.NOT_FOUND, NOT_FOUND)
        if status.account is not self._world.brand:
            return _error(HTTPStatus.FORBIDDEN, "This action is not allowed")
        params = _body_params(request)
        if params is None:
            return _error(HTTPStatus.BAD_REQUEST, "Error while parsing request parameters")
        text = str(params.get("status") or "")
        if not text.strip():
            return _error(HTTPStatus.UNPROCESSABLE_ENTITY, "Validation failed: Text can't be blank")
        if countable_length(status.spoiler_text + text) > MAX_CHARACTERS:
            return _error(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                f"Validation failed: Text character limit of {MAX_CHARACTERS} exceeded",
            )
        if text != status.text:
            status.text = text
            status.edited_at = self._world.clock.now()
        return _Response(int(HTTPStatus.OK), self.render.status(status))

    def _context(self, _request: _Request, match: re.Match[str]) -> _Response:
        status = self._world.statuses.get(match["id"])
        if status is None:
            return _error(HTTPStatus.NOT_FOUND, NOT_FOUND)
        return _Response(
            int(HTTPStatus.OK),
            {
                "ancestors": [self.render.status(s) for s in self._world.ancestors(status)],
                "descendants": [self.render.status(s) for s in self._world.descendants(status)],
            },
        )

    def _delete_status(self, _request: _Request, match: re.Match[str]) -> _Response:
        """Delete one of the brand's statuses; the answer is the deleted status with its source ``text``."""
        status = self._world.statuses.get(match["id"])
        if status is None:
            return _error(HTTPStatus.NOT_FOUND, NOT_FOUND)
        if status.account is not self._world.brand:
            return _error(HTTPStatus.FORBIDDEN, "This action is not allowed")
        rendered = self.render.status(status)
        self._world.delete_agent_status(status)
        return _Response(int(HTTPStatus.OK), {**rendered, "text": status.text})

    def _instance_v1(self, _request: _Request, _match: re.Match[str]) -> _Response:
        return _Response(int(HTTPStatus.OK), self.render.instance_v1())

    def _create_app(self, request: _Request, _match: re.Match[str]) -> _Response:
        """``POST /api/v1/apps``: register a client; its id and secret are then used at ``/oauth/token``."""
        params = _body_params(request)
        if params is None:
            return _error(HTTPStatus.BAD_REQUEST, "Error while parsing request parameters")
        name = str(params.get("client_name") or "").strip()
        redirect = params.get("redirect_uris") or ""
        redirects = [str(r).strip() for r in redirect] if isinstance(redirect, list) else str(redirect).split()
        if not name:
            return _error(HTTPStatus.UNPROCESSABLE_ENTITY, "Validation failed: Application name can't be blank")
        if not redirects:
            return _error(HTTPStatus.UNPROCESSABLE_ENTITY, "Validation failed: Redirect URI can't be blank")
        scopes = params.get("scopes") or "read"
        scope_list = [str(s) for s in scopes] if isinstance(scopes, list) else str(scopes).split()
        digest = hashlib.sha256(f"{name}\n{len(self._apps)}\n{self._token}".encode()).hexdigest()
        client_id, client_secret = digest[:32], digest[32:]
        app: Json = {
            "id": str(len(self._apps) + 1),
            "name": name,
            "website": str(params.get("website") or "") or None,
            "scopes": scope_list,
            "redirect_uri": "\n".join(redirects),
            "redirect_uris": redirects,
            "client_id": client_id,
            "client_secret": client_secret,
            "vapid_key": "BCkMmVlS4_wmD4a5HNm8_fxXWRHIFbU-Sandbox-Only-Not-A-Real-Key=",
        }
        self._apps[client_id] = app
        return _Response(int(HTTPStatus.OK), app)

    def _authorize(self, request: _Request, _match: re.Match[str]) -> _Response:
        """``GET /oauth/authorize``: the sandbox's user approves at once; the code goes to the redirect URI (or is
        shown, for ``urn:ietf:wg:oauth:2.0:oob``)."""
        query = request.query
        app = self._apps.get(_first(query, "client_id") or "")
        redirect = _first(query, "redirect_uri") or ""
        if app is None or redirect not in app["redirect_uris"] or _first(query, "response_type") != "code":
            return _Response(int(HTTPStatus.BAD_REQUEST), None, html="<p>The authorization request is invalid.</p>")
        code = hashlib.sha256(f"code\n{app['client_id']}\n{len(self._codes)}\n{self._token}".encode()).hexdigest()
        self._codes[code] = app["client_id"]
        if redirect == "urn:ietf:wg:oauth:2.0:oob":
            return _Response(int(HTTPStatus.OK), None, html=f"<p>Authorization code: <code>{code}</code></p>")
        answer = {"code": code}
        state = _first(query, "state")
        if state:
            answer["state"] = state
        target = f"{redirect}{'&' if '?' in redirect else '?'}{urlencode(answer)}"
        return _Response(int(HTTPStatus.FOUND), None, {"Location": target}, html="")

    def _oauth_token(self, request: _Request, _match: re.Match[str]) -> _Response:
        """``POST /oauth/token``: authorization_code, password (the brand's handle; the sandbox takes any
        password) and client_credentials grants all answer the sandbox's access token."""
        params = _body_params(request) or {}
        app = self._apps.get(str(params.get("client_id") or ""))
        if app is None or not hmac.compare_digest(str(params.get("client_secret") or ""), app["client_secret"]):
            return _Response(
                int(HTTPStatus.UNAUTHORIZED),
                {"error": "invalid_client", "error_description": "Client authentication failed."},
            )
        grant = str(params.get("grant_type") or "")
        if grant == "authorization_code":
            if self._codes.pop(str(params.get("code") or ""), None) != app["client_id"]:
                return _error_grant("The authorization code is invalid, expired or was used before.")
        elif grant == "password":
            username = str(params.get("username") or "").strip().removeprefix("@").lower()
            brand = self._world.brand
            accepted = {brand.username.lower(), f"{brand.username}@{INSTANCE_DOMAIN}".lower()}
            if username not in accepted or not str(params.get("password") or ""):
                return _error_grant("The username or password is not right (the sandbox user is @care).")
        elif grant != "client_credentials":
            return _Response(
                int(HTTPStatus.BAD_REQUEST),
                {"error": "unsupported_grant_type", "error_description": f"The grant type {grant!r} is not supported."},
            )
        scope = str(params.get("scope") or "") or " ".join(app["scopes"])
        return _Response(
            int(HTTPStatus.OK),
            {
                "access_token": self._token,
                "token_type": "Bearer",
                "scope": scope,
                "created_at": math.floor(self._world.clock.now()),
            },
        )

    def _oauth_revoke(self, _request: _Request, _match: re.Match[str]) -> _Response:
        # The sandbox has one token (the app's own account uses it): revoking it is acknowledged, not done.
        return _Response(int(HTTPStatus.OK), {})

    def _account_statuses(self, request: _Request, match: re.Match[str]) -> _Response:
        """``GET /api/v1/accounts/:id/statuses``: an account's statuses, newest first, with ``max_id``,
        ``since_id``, ``min_id`` (the oldest ones after it, still listed newest first), ``limit`` (at most 40),
        ``exclude_replies`` and ``exclude_reblogs`` (the sandbox has no reblogs). The brand's list holds every
        status it posted, from this app or any other (a second install, the channel's own app)."""
        world = self._world
        account = next((a for a in world.known_account_list() if a.id == match["id"]), None)
        if account is None:
            return _error(HTTPStatus.NOT_FOUND, NOT_FOUND)
        query = request.query
        raw_limit = _first(query, "limit")
        limit = DEFAULT_ACCOUNT_STATUSES_LIMIT if raw_limit is None else _limit(raw_limit)
        limit = max(1, min(limit, MAX_ACCOUNT_STATUSES_LIMIT))
        max_id, since_id, min_id = (_first(query, k) or None for k in ("max_id", "since_id", "min_id"))
        if account is world.brand:
            own = [world.announcement, *world.agent_statuses]
        else:
            own = [st for st in world.statuses.values() if st.account is account]
        own = [st for st in own if st.id in world.statuses]
        if _truthy(_first(query, "exclude_replies") or False):
            own = [st for st in own if st.in_reply_to is None]
        own.sort(key=lambda st: _id_key(st.id))
        if max_id is not None:
            own = [st for st in own if _id_key(st.id) < _id_key(max_id)]
        if since_id is not None:
            own = [st for st in own if _id_key(st.id) > _id_key(since_id)]
        if min_id is not None:
            own = [st for st in own if _id_key(st.id) > _id_key(min_id)][:limit]  # the oldest after min_id
        page = own[-limit:]
        return _Response(int(HTTPStatus.OK), [self.render.status(st) for st in reversed(page)])

    def brand_reply(self, body: bytes) -> _Response:
        """``POST /_sandbox/brand_reply``: the brand answers from another app (see ``SandboxServer.post_as_brand``)."""
        try:
            data = json.loads(body or b"{}")
            if not isinstance(data, dict) or not str(data.get("text") or "").strip():
                raise ValueError("expected {in_reply_to_id, text, application}")
            parent_id, text = str(data.get("in_reply_to_id") or ""), str(data["text"])
            application = str(data.get("application") or "Mastodon for iOS")
        except ValueError as exc:
            return _error(HTTPStatus.UNPROCESSABLE_ENTITY, f"Invalid brand reply: {exc}")
        with self._world.lock:
            parent = self._world.statuses.get(parent_id)
            if parent is None:
                return _error(HTTPStatus.NOT_FOUND, "The post you are trying to reply to does not appear to exist.")
            status = self._world.add_agent_status(
                text=text, visibility=parent.visibility, language="en", in_reply_to=parent, spoiler_text="",
                sensitive=False, application=application,
            )  # fmt: skip
            return _Response(int(HTTPStatus.OK), self.render.status(status))

    def _verify_credentials(self, _request: _Request, _match: re.Match[str]) -> _Response:
        return _Response(int(HTTPStatus.OK), self.render.credential_account(self._world.brand))

    def _instance(self, _request: _Request, _match: re.Match[str]) -> _Response:
        return _Response(int(HTTPStatus.OK), self.render.instance())

    def _post_status(self, request: _Request, _match: re.Match[str]) -> _Response:
        params = _body_params(request)
        if params is None:
            return _error(HTTPStatus.BAD_REQUEST, "Error while parsing request parameters")
        world = self._world
        now = world.clock.now()

        parent: _Status | None = None
        in_reply_to_id = str(params.get("in_reply_to_id") or "").strip()
        if in_reply_to_id:
            parent = world.statuses.get(in_reply_to_id)
            if parent is None:
                return _error(HTTPStatus.NOT_FOUND, "The post you are trying to reply to does not appear to exist.")

        self._idempotency = {k: v for k, v in self._idempotency.items() if now - v[1] < IDEMPOTENCY_TTL}
        key = request.headers.get("idempotency-key", "").strip()
        if key:
            seen = self._idempotency.get((self._token, key))
            if seen is not None:
                # The same key within an hour answers with the status it created the first time.
                return _Response(int(HTTPStatus.OK), self.render.status(world.statuses[seen[0]]))

        text = str(params.get("status") or "")
        spoiler_text = str(params.get("spoiler_text") or "")
        visibility = str(params.get("visibility") or "public").strip().lower()
        if not text.strip():
            return _error(HTTPStatus.UNPROCESSABLE_ENTITY, "Validation failed: Text can't be blank")
        if visibility not in VISIBILITIES:
            return _error(HTTPStatus.UNPROCESSABLE_ENTITY, "Validation failed: Visibility is not included in the list")
        if countable_length(spoiler_text + text) > MAX_CHARACTERS:
            return _error(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                f"Validation failed: Text character limit of {MAX_CHARACTERS} exceeded",
            )
        status = world.add_agent_status(
            text=text,
            visibility=visibility,
            language=str(params.get("language") or "").strip() or "en",
            in_reply_to=parent,
            spoiler_text=spoiler_text,
            sensitive=_truthy(params.get("sensitive", False)),
        )
        if key:
            self._idempotency[(self._token, key)] = (status.id, now)
        return _Response(int(HTTPStatus.OK), self.render.status(status))


def _error_grant(description: str) -> _Response:
    return _Response(int(HTTPStatus.BAD_REQUEST), {"error": "invalid_grant", "error_description": description})


def _body_params(request: _Request) -> dict[str, Any] | None:
    """Merge query and body parameters (JSON, urlencoded or multipart), body winning, like Rails."""
    params: dict[str, Any] = {k: v[-1] for k, v in request.query.items() if v}
    content_type = request.headers.get("content-type", "")
    mime = content_type.split(";")[0].strip().lower()
    if mime == "application/json":
        try:
            data = json.loads(request.body or b"{}")
        except ValueError:
            return None
        if isinstance(data, dict):
            params.update(data)
    elif mime == "multipart/form-data":
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + request.body
        )
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                params[name] = payload.decode("utf-8", "replace")
    else:
        try:
            fields = parse_qs(request.body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            return None
        params.update({k: v[-1] for k, v in fields.items() if v})
    return params


ADMIN_PREFIX: Final = "/_sandbox/"


def _admin(api: _Api, method: str, path: str, body: bytes) -> _Response:
    """The sandbox's own control endpoints (loopback only; never part of the Mastodon API).

    ``GET /_sandbox/faults`` lists the switches; ``POST /_sandbox/faults`` with ``{"faults": [rules],
    "replace": false, "seed": n}`` or ``{"spec": "503:next=2"}`` switches faults on; ``DELETE
    /_sandbox/faults`` switches them all off; ``POST /_sandbox/revoke`` revokes the token and issues a new one;
    ``POST /_sandbox/brand_reply`` with ``{"in_reply_to_id", "text", "application"}`` posts a reply as the brand
    from another app (a colleague, a second install), which a copy of the app then finds on the channel.
    """
    plan = api.faults
    route = path.rstrip("/")
    if route == "/_sandbox/revoke" and method == "POST":
        api.rotate_token()
        return _Response(int(HTTPStatus.OK), {"revoked": True})
    if route == "/_sandbox/brand_reply" and method == "POST":
        return api.brand_reply(body)
    if route != "/_sandbox/faults":
        return _error(HTTPStatus.NOT_FOUND, NOT_FOUND)
    if method == "DELETE":
        plan.clear()
    elif method == "POST":
        try:
            data = json.loads(body or b"{}")
            if not isinstance(data, dict):
                raise ValueError("expected a JSON object")
            rules = parse_fault_spec(str(data["spec"])) if "spec" in data else []
            raw_rules = data.get("faults", [])
            if not isinstance(raw_rules, list) or not all(isinstance(r, dict) for r in raw_rules):
                raise ValueError("faults must be a list of objects")
            rules += [FaultRule.from_json(r) for r in raw_rules]
            if "seed" in data:
                plan.reseed(int(data["seed"]))
        except (ValueError, TypeError) as exc:
            return _error(HTTPStatus.UNPROCESSABLE_ENTITY, f"Invalid fault settings: {exc}")
        plan.set(rules, replace_all=bool(data.get("replace", False)))
    elif method != "GET":
        return _error(HTTPStatus.METHOD_NOT_ALLOWED, "Method not allowed", Allow="DELETE, GET, POST")
    return _Response(int(HTTPStatus.OK), {"faults": [rule.to_json() for rule in plan.rules()], "fired": plan.fired()})


def _json_bytes(payload: Any) -> bytes:
    """``json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()``, by orjson (10x faster on a
    page) where it can: the same bytes but for floats under 1e-4 and non-finite ones; what orjson refuses (a lone
    surrogate, an integer past 64 bits, a key that is not a string) is written by the standard library."""
    try:
        return orjson.dumps(payload)
    except orjson.JSONEncodeError:
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], *, api: _Api, clock: Clock) -> None:
        self.api = api
        self.clock = clock
        self.stopping = threading.Event()
        super().__init__(address, _RequestHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls socket.getfqdn(), a reverse DNS lookup that can stall for seconds.
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        _log.exception("sandbox: error while handling a request from %s", client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    server_version = "Mastodon"
    sys_version = ""
    protocol_version = "HTTP/1.0"  # one request per connection, so stop() leaves no live keep-alive sessions

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def date_time_string(self, timestamp: float | None = None) -> str:
        sandbox = self._sandbox
        return email.utils.formatdate(sandbox.clock.now() if timestamp is None else timestamp, usegmt=True)

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("sandbox %s - %s", self.address_string(), format % args)

    @property
    def _sandbox(self) -> _HTTPServer:
        server = self.server
        assert isinstance(server, _HTTPServer)
        return server

    def _dispatch(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self._send(_error(HTTPStatus.BAD_REQUEST, "Invalid request body"))
            return
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        api = self._sandbox.api
        if parts.path.startswith(ADMIN_PREFIX):
            self._send(_admin(api, self.command, parts.path, body))
            return
        drawn = api.faults.draw(self.command, parts.path)
        if drawn.replacing is not None and drawn.replacing.fault is Fault.GONE:
            with api.lock:
                api.log(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True))
            self.close_connection = True  # no status line, no body: like a host that went away
            return
        request = _Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            client=str(self.client_address[0]),
            faults=drawn,
        )
        try:
            response = api.handle(request)
        except Exception:
            _log.exception("sandbox: %s %s failed", self.command, self.path)
            response = _error(HTTPStatus.INTERNAL_SERVER_ERROR, "Internal server error")
        slow = drawn.altered(Fault.SLOW)
        if slow is not None:
            # Handled already (a POST took effect), but the answer arrives after the client gave up.
            self._sandbox.stopping.wait(slow.delay)
        self._send(
            response,
            truncate=drawn.altered(Fault.MALFORMED_JSON) is not None,
            drop=drawn.altered(Fault.DROP) is not None,
        )

    def _send(self, response: _Response, *, truncate: bool = False, drop: bool = False) -> None:
        if response.html is not None:
            data = response.html.encode()
            content_type = "text/html; charset=utf-8"
        else:
            data = _json_bytes(response.payload)
            content_type = "application/json; charset=utf-8"
        if truncate:
            data = data[: max(1, len(data) // 2)]
        self.send_response(response.status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "private, no-store")
        self.send_header("Connection", "close")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if drop:
            # Half the promised body, then the connection ends.
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(data)


class _TrafficPump:
    """Schedules simulated arrivals and customer follow-ups against the clock."""

    MAX_CATCH_UP: Final = 50  # after a long suspend, skip ahead instead of flooding the inbox

    def __init__(self, world: _World, arrivals: ArrivalProcess | None) -> None:
        self._world = world
        self._arrivals = arrivals
        self._next_at = math.inf if arrivals is None else world.clock.now() + arrivals.next_gap()

    def step(self) -> tuple[list[_Notification], float]:
        """Create what is due now; return it and the seconds until something else is due."""
        world = self._world
        with world.lock:
            now = world.clock.now()
            created: list[_Notification] = []
            arrivals = self._arrivals
            while arrivals is not None and self._next_at <= now:
                if len(created) >= self.MAX_CATCH_UP:
                    self._next_at = now + arrivals.next_gap()
                    break
                created += world.generate(1, created_at=[self._next_at])
                self._next_at += arrivals.next_gap()
            created += world.post_follow_ups(now=now)
            return created, min(self._next_at, world.next_follow_up_due()) - now


# -- public API -----------------------------------------------------------------------------------------------


class SandboxServer:
    """An in-process Mastodon-compatible server on loopback, with simulated customers writing to the brand.

    Everything happens in memory and is determined by ``seed``; timestamps come from ``clock``.

    Example::

        with SandboxServer(backlog=12) as server:
            client = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {server.token}"})
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 1,
        rate_per_minute: float = 0.0,
        backlog: int = 0,
        token: str = "sandbox-token",
        brand_handle: str = "care",
        clock: Clock | None = None,
        faults: Iterable[FaultRule] = (),
        fault_seed: int | None = None,
        state_path: Path | None = None,
    ) -> None:
        """Create a stopped server.

        Args:
            host: Interface to bind; keep it on loopback.
            port: TCP port; 0 picks a free one.
            seed: Determines customers, texts and arrival times.
            rate_per_minute: Average rate of new mentions from a background thread; 0 disables it.
            backlog: Mentions created at ``start()``, posted over the last ~40 minutes.
            token: The only bearer token the server accepts.
            brand_handle: Username of the brand account the customers mention.
            clock: Source of every timestamp and id (default: the system clock).
            faults: Fault switches on from the start (more at run time: ``faults`` or ``POST /_sandbox/faults``).
            fault_seed: Seed of the faults' random draws (default: ``seed``).
            state_path: Where the world is kept between runs (the app's data folder). A world saved there with
                the same seed and brand is continued (no new backlog: its posts, replies and ids carry on);
                without one the world lives in memory only.
        """
        if rate_per_minute < 0 or backlog < 0:
            raise ValueError("rate_per_minute and backlog must not be negative")
        self._state_path = state_path
        self._saved_version = -1
        self.brand_handle = brand_handle
        self.requests: RequestLog = []
        self._host = host
        self._port = port
        self._rate = rate_per_minute
        self._backlog = backlog
        self._clock: Clock = clock if clock is not None else SystemClock()
        saved = _load_world(state_path, seed=seed, brand_handle=brand_handle)
        self._world = _World(clock=self._clock, seed=seed, brand_handle=brand_handle, saved=saved)
        #: The world was continued from ``state_path`` (no backlog is created at start).
        self.restored = saved is not None
        if saved is not None:
            self._saved_version = self._world.version
        self.faults = FaultPlan(faults, seed=seed if fault_seed is None else fault_seed)
        self._api = _Api(self._world, token=token, requests=self.requests, faults=self.faults)
        self._base_url: str | None = None
        self._httpd: _HTTPServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._traffic_thread: threading.Thread | None = None
        self._save_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        arrivals = ArrivalProcess(seed=seed, rate_per_minute=rate_per_minute) if rate_per_minute > 0 else None
        self._pump = _TrafficPump(self._world, arrivals)

    @property
    def token(self) -> str:
        """The one bearer token the server accepts now (it changes when revoked)."""
        return self._api.token

    def revoke_token(self) -> str:
        """Revoke the current token, as an admin or the user would on the instance; returns the new one.

        Clients keep getting 401 until they sign in again, i.e. use :attr:`token` anew.
        """
        return self._api.rotate_token()

    def set_faults(self, rules: Iterable[FaultRule], *, replace_all: bool = False) -> None:
        """Switch faults on at run time (the same as ``POST /_sandbox/faults``)."""
        self.faults.set(rules, replace_all=replace_all)

    def set_rate_limit(self, requests_per_window: int) -> None:
        """Requests per 5-minute window and token (Mastodon's 300 by default); ``make bench`` lifts it to measure
        the client alone."""
        self._api.set_rate_limit(requests_per_window)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``; available once ``start()`` has bound the socket."""
        if self._base_url is None:
            raise RuntimeError("SandboxServer.base_url is only known after start()")
        return self._base_url

    def start(self) -> None:
        """Bind the socket, create the backlog and serve from daemon threads.

        Raises:
            RuntimeError: If the server was started before.
            OSError: If the address cannot be bound.
        """
        if self._base_url is not None:
            raise RuntimeError("a SandboxServer can only be started once")
        httpd = _HTTPServer((self._host, self._port), api=self._api, clock=self._clock)
        self._httpd = httpd
        self._base_url = f"http://{self._host}:{httpd.server_port}"
        with self._world.lock:
            self._api.render.base_url = self._base_url
            if self._backlog and not self.restored:
                now = self._clock.now()
                ages = self._world.traffic.backlog_ages(self._backlog)
                self._world.generate(self._backlog, created_at=[now - age for age in ages])
        self._serve_thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="sandbox-http", daemon=True
        )
        self._serve_thread.start()
        if self._rate > 0:
            self._traffic_thread = threading.Thread(target=self._run_traffic, name="sandbox-traffic", daemon=True)
            self._traffic_thread.start()
        if self._state_path is not None:
            self.save()
            self._save_thread = threading.Thread(target=self._run_saver, name="sandbox-save", daemon=True)
            self._save_thread.start()
        _log.info("sandbox Mastodon server listening on %s", self._base_url)

    def stop(self) -> None:
        """Stop the background traffic, shut the HTTP server down and wait for its thread. Idempotent."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.stopping.set()
        if self._traffic_thread is not None:
            self._traffic_thread.join()
        if self._save_thread is not None:
            self._save_thread.join()
        self.save(force=True)  # edits in place (PUT) do not add a status: write whatever the world is now
        httpd.shutdown()
        httpd.server_close()
        if self._serve_thread is not None:
            self._serve_thread.join()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def generate(self, n: int = 1) -> list[str]:
        """Create ``n`` new customer mentions now, continuing the seed's sequence.

        Returns:
            The new notification ids, oldest first.
        """
        with self._world.lock:
            return [notification.id for notification in self._world.generate(n)]

    def post_mention(
        self,
        *,
        author: str,
        text: str,
        visibility: str = "public",
        in_reply_to_id: str | None = None,
        display_name: str = "",
    ) -> str:
        """Add one explicit customer status that mentions the brand, plus its notification.

        Args:
            author: ``user`` (local) or ``user@domain`` (remote); a leading ``@`` is ignored.
            text: The status text, verbatim (it is HTML-escaped when rendered).
            visibility: ``public``, ``unlisted``, ``private`` or ``direct``.
            in_reply_to_id: A status id this one answers.
            display_name: Used when the author is new; known customers keep their name.

        Returns:
            The notification id.

        Raises:
            ValueError: For an unknown visibility, a malformed handle or an unknown ``in_reply_to_id``.
        """
        if visibility not in VISIBILITIES:
            raise ValueError(f"visibility must be one of {VISIBILITIES}, not {visibility!r}")
        with self._world.lock:
            parent = None
            if in_reply_to_id is not None:
                parent = self._world.statuses.get(in_reply_to_id)
                if parent is None:
                    raise ValueError(f"no status with id {in_reply_to_id!r}")
            account = self._world.account(author, display_name=display_name)
            notification = self._world.add_customer_status(
                account=account, text=text, visibility=visibility, language="en", in_reply_to=parent
            )
            return notification.id

    def simulate_follow_ups(self, *, force: bool = False) -> list[str]:
        """Let customers answer the agent's replies now instead of after their simulated delay.

        Args:
            force: Make every customer who has not answered yet answer, even those who would stay silent.

        Returns:
            The notification ids of the follow-ups.
        """
        with self._world.lock:
            return [n.id for n in self._world.post_follow_ups(now=None, force=force)]

    def post_as_brand(
        self, *, in_reply_to_id: str, text: str, application: str = "Mastodon for iOS", visibility: str | None = None
    ) -> str:
        """Post a reply as the brand from elsewhere (a colleague on the channel's own app, another install), not
        through this API: what a copy of the app then finds on the channel as a reply it did not write.

        Args:
            in_reply_to_id: The status answered.
            text: The reply, verbatim.
            application: The app it was posted from (Mastodon names it in the status's ``application``).
            visibility: Default: the answered status's.

        Returns:
            The new status id.

        Raises:
            ValueError: No status ``in_reply_to_id``.
        """
        with self._world.lock:
            parent = self._world.statuses.get(in_reply_to_id)
            if parent is None:
                raise ValueError(f"no status with id {in_reply_to_id!r}")
            status = self._world.add_agent_status(
                text=text,
                visibility=visibility or parent.visibility,
                language="en",
                in_reply_to=parent,
                spoiler_text="",
                sensitive=False,
                application=application,
            )
            return status.id

    def statuses_posted(self) -> list[dict[str, Any]]:
        """The statuses created through ``POST /api/v1/statuses``, oldest first, as API JSON (copies); not those
        :meth:`post_as_brand` made."""
        with self._world.lock:
            return [
                self._api.render.status(status)
                for status in self._world.agent_statuses
                if status.application == API_APPLICATION
            ]

    def pump(self) -> list[str]:
        """Do now what the background traffic thread does when it wakes up.

        Creates the mentions whose simulated arrival time has passed on the clock (only with
        ``rate_per_minute > 0``) and the customer follow-ups that are due. With a fake clock this drives
        the simulation deterministically, without waiting.

        Returns:
            The new notification ids, oldest first.
        """
        created, _wait = self._pump.step()
        return [n.id for n in created]

    def save(self, *, force: bool = False) -> bool:
        """Write the world to ``state_path`` when it changed since the last write (atomically: a crash mid-write
        keeps the previous file). Also done every second while running, and at ``stop()``.

        Returns:
            Whether a file was written.
        """
        path = self._state_path
        if path is None:
            return False
        with self._world.lock:
            if self._world.version == self._saved_version and not force:
                return False
            version = self._world.version
            snapshot = self._world.snapshot()  # fresh lists and dicts: encoded below without holding the lock
        data = json.dumps(snapshot, separators=(",", ":"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            scratch = path.with_name(path.name + ".tmp")
            scratch.write_text(data, encoding="utf-8")
            os.replace(scratch, path)
        except OSError as exc:
            _log.warning("could not keep the sandbox world in %s: %s", path, exc)
            return False
        self._saved_version = version
        return True

    def _run_saver(self) -> None:
        while not self._stopping.wait(1.0):
            self.save()

    def _run_traffic(self) -> None:
        while not self._stopping.is_set():
            _created, wait = self._pump.step()
            # Real waiting happens only here; re-check at least every second in case the clock jumps.
            self._stopping.wait(min(max(wait, 0.01), 1.0))


def _load_world(path: Path | None, *, seed: int, brand_handle: str) -> Mapping[str, Any] | None:
    """The saved world at ``path`` when it belongs to this seed and brand; None (a fresh world) otherwise."""
    if path is None:
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        _log.warning("the saved sandbox world in %s cannot be read (%s); starting a new one", path, exc)
        return None
    if (
        not isinstance(saved, dict)
        or saved.get("format") != SAVED_FORMAT
        or saved.get("seed") != seed
        or saved.get("brand") != brand_handle.removeprefix("@").lower()
    ):
        _log.info("the saved sandbox world in %s is for another seed or format; starting a new one", path)
        return None
    try:  # a damaged file must not stop the app: check it rebuilds before using it
        _World(clock=SystemClock(), seed=seed, brand_handle=brand_handle, saved=saved)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        _log.warning("the saved sandbox world in %s is damaged (%r); starting a new one", path, exc)
        return None
    return saved


def run_standalone(
    *,
    port: int,
    seed: int = 1,
    rate_per_minute: float = 6.0,
    backlog: int = 12,
    faults: Iterable[FaultRule] = (),
    fault_seed: int | None = None,
) -> None:
    """Serve the sandbox on ``port`` until Ctrl+C (``care-console sandbox --port N``).

    Args:
        port: TCP port on 127.0.0.1.
        seed: Determines the simulated customers and their messages.
        rate_per_minute: Average rate of new mentions.
        backlog: Mentions that already exist when the server starts.
        faults: Fault switches on from the start (``--faults``).
        fault_seed: Seed of the faults' random draws (default: ``seed``).
    """
    server = SandboxServer(
        port=port, seed=seed, rate_per_minute=rate_per_minute, backlog=backlog, faults=faults, fault_seed=fault_seed
    )
    with server:
        print(f"Sandbox Mastodon server on {server.base_url} (token: {server.token})", flush=True)
        print(f"Fault switches: GET/POST/DELETE {server.base_url}{ADMIN_PREFIX}faults", flush=True)
        print(f"Answer as the brand from another app: POST {server.base_url}{ADMIN_PREFIX}brand_reply", flush=True)
        for rule in server.faults.rules():
            print(f"  fault on: {rule.to_json()}", flush=True)
        idle = threading.Event()  # never set: wait in short slices so Ctrl+C is seen on every platform
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                idle.wait(1.0)
