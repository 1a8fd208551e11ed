"""The outbox: replies are committed before any network call and leave exactly once, in order, crash or not."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
import unicodedata
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar, Protocol, runtime_checkable

import regex

from console.channels.base import Connector, InboundItem, ReplyReceipt, ReplyTarget
from console.channels.errors import AuthExpired, ChannelError, Permanent, RateLimited
from console.ports import Clock
from console.sync.inbox import backoff_seconds
from console.sync.manual import MANUAL_KIND, ManualReply, reply_handoff
from console.sync.own_posts import channel_label
from storage.accounts import AccountRepo
from storage.capacity import StatusPostRepo, StatusPostRow
from storage.errors import StorageError
from storage.mentions import MentionRepo
from storage.replies import WITHDRAWN_ERROR, ReplyRepo
from storage.rows import MentionRow, ReplyRow, ReplyState

__all__ = [
    "DEFAULT_FRESHNESS_SECONDS",
    "HAND_OFF",
    "EditingConnector",
    "GateOutcome",
    "GateVerdict",
    "Outbox",
    "OutboxError",
    "ReopeningGate",
    "SendGate",
    "SendOutcome",
    "StatusConnector",
    "StatusIdempotence",
    "is_withdrawn",
    "plain_reason",
    "same_reply_text",
]

log = logging.getLogger(__name__)

#: A reply written longer ago than this is checked against the thread before it leaves (issue 8, "Freshness").
DEFAULT_FRESHNESS_SECONDS = 300
#: Transient failures back off from this many seconds, doubling up to the inbox's cap.
RETRY_BASE_SECONDS = 15.0
#: An account whose sign-in expired is retried this often (the agent may have signed in again).
AUTH_RETRY_SECONDS = 300
#: The run loop wakes at least this often to look for due retries.
IDLE_SECONDS = 30.0
#: A reply the team's send gate held (the team server unreachable) is asked about again after this long.
GATE_RETRY_SECONDS = 30
#: Why a reply was sent anyway when the window gives no reason of its own (it is marked for review).
SEND_ANYWAY_REASON = "Sent anyway: a colleague may have been answering this customer."

#: Why a reply to a hand-added post waits: no API sends it; the agent does (issue 19 #3).
HAND_OFF = "Send it by hand: copy the reply, post it at the original link, then mark it as sent."

#: A mention is "@" and everything up to the next space: handles can hold any character ("+", accents, scripts).
_MENTION_RE = re.compile(r"(?<![\w/])@\S+")
_SPACE_RE = re.compile(r"\s+")
#: Characters a server may drop or a client may add without changing what a reply says: format characters
#: (bidirectional controls, zero-width spaces and joiners, the BOM, soft hyphens) and control characters
#: other than tab, line feed, vertical tab, form feed and carriage return.
_INVISIBLE_RE = regex.compile(r"[\p{Cf}\x00-\x08\x0e-\x1f\x7f-\x9f]+")


def is_withdrawn(reply: ReplyRow) -> bool:
    """The agent took this reply back before it left (it is stored as failed, but nothing failed)."""
    return reply.state is ReplyState.FAILED and reply.error == WITHDRAWN_ERROR


#: What a refusal means for the agent, by HTTP status (the channel's own words follow where they help).
_REFUSALS: dict[int, str] = {
    400: "The channel could not read the reply",
    403: "The channel does not allow this reply (the post may be private, or replies are closed)",
    404: "The post this answers is gone from the channel (deleted, or it never reached it)",
    410: "The post this answers is gone from the channel (deleted)",
    413: "The reply is too long for the channel",
    422: "The channel did not accept the reply",
}
_REFUSAL_RE = re.compile(r"^.+? refused (?:[A-Z]+ )?\S+ \((?P<status>\d{3}): (?P<reason>.*)\)\.?$", re.DOTALL)
_TECHNICAL_RE = re.compile(r"[<>{}]|https?://|\b[A-Z][A-Za-z]*(?:Error|Exception)\b|\bHTTP\b|Errno")


def plain_reason(error: str) -> str:
    """Why a reply did not leave, in words an agent reads: no status lines, request paths or exception names.

    Args:
        error: The reason stored with the reply (a connector's message, possibly technical).

    Returns:
        A sentence (the stored reason stays in the log and the database for diagnostics).
    """
    match = _REFUSAL_RE.match(error.strip())
    if match is None:
        return error if not _TECHNICAL_RE.search(error) else "The channel did not take the reply."
    status = int(match["status"])
    base = _REFUSALS.get(status, "The channel refused the reply")
    said = match["reason"].strip().rstrip(".")
    if status in (404, 410) or not said or len(said) > 160 or _TECHNICAL_RE.search(said):
        return base + "."
    return f"{base}: {said}."


class OutboxError(Exception):
    """A reply cannot be queued (unknown item, empty text, nothing to correct); the message says why."""


class SendOutcome(StrEnum):
    SENT = "sent"  # posted now
    RECONCILED = "reconciled"  # found already posted (after a crash or a lost answer); not posted again
    HELD = "held"  # the thread moved on since the agent wrote it; waits for the agent's confirmation
    WAITING = "waiting"  # offline, rate limited or signed out; stays queued
    FAILED = "failed"  # the channel refused it for good


class GateOutcome(StrEnum):
    PROCEED = "proceed"  # send now
    HOLD = "hold"  # cannot tell now (the team server unreachable): stays queued with the reason, asked again later
    REFUSED = "refused"  # a colleague answered first or is answering: the reply fails with the reason


@dataclass(frozen=True, slots=True)
class GateVerdict:
    """What the send gate decided about one reply, with the reason in words the agent reads."""

    outcome: GateOutcome
    reason: str = ""
    #: For REFUSED: the colleague who answered or holds the item.
    by: str = ""

    @classmethod
    def proceed(cls) -> GateVerdict:
        return cls(GateOutcome.PROCEED)

    @classmethod
    def hold(cls, reason: str) -> GateVerdict:
        return cls(GateOutcome.HOLD, reason)

    @classmethod
    def refused(cls, reason: str, by: str) -> GateVerdict:
        return cls(GateOutcome.REFUSED, reason, by)


class SendGate(Protocol):
    """Asked right before a reply leaves whether it may (team mode: no two members answer one item).

    The outbox owns this port so replies never import the team package (docs/TEAM.md); team mode fills it
    (``console.team.claims.TeamSendGate``), solo leaves it None and nothing changes. An implementation records
    the send on the team server before answering PROCEED (so a crash after the post is recovered by the
    outbox's thread lookup, and two members can never both pass), and never raises: trouble is HOLD.
    """

    async def check(self, reply: ReplyRow, mention: MentionRow, *, override: bool) -> GateVerdict:
        """Whether ``reply`` (to queue item ``mention``, the thread head) may leave now.

        Args:
            reply: The reply about to be posted.
            mention: The queue item it belongs to (the thread head).
            override: The agent chose to send it anyway (over a claim, or while offline from the team).
        """
        ...


@runtime_checkable
class ReopeningGate(Protocol):
    """A send gate that can say when the replies it HELD may be asked about again (team mode: the team server is
    reachable again), so they leave then instead of after ``GATE_RETRY_SECONDS``. The outbox subscribes when the
    gate is set (see :attr:`Outbox.gate`)."""

    def on_reopen(self, listener: Callable[[], object]) -> None: ...


@runtime_checkable
class EditingConnector(Protocol):
    """A connector whose channel lets a sent reply be edited in place (Mastodon ``PUT /api/v1/statuses/:id``)."""

    async def edit_reply(self, external_id: str, text: str) -> ReplyReceipt: ...


@runtime_checkable
class StatusConnector(Protocol):
    """A connector that can post a status of its own, answering no one (Mastodon ``POST /api/v1/statuses``).

    Mastodon, Bluesky, X and Facebook Pages implement it. Discourse and YouTube do not: on a forum a post
    belongs in a topic (a status would be a new topic in someone's category, not an account's own feed), and
    the YouTube Data API has no text posts (community posts have no API). A connector whose channel has no
    idempotency key (X, Facebook) sets the class attribute ``status_idempotent = False``: a post found
    half-sent after a crash then fails instead of being sent again (see :meth:`Outbox._send_status`).
    """

    async def post_status(self, text: str, *, idempotency_key: str, visibility: str = "public") -> ReplyReceipt: ...


@runtime_checkable
class StatusIdempotence(Protocol):
    """A status-posting connector that says whether its channel honours an idempotency key (X and Facebook don't)."""

    status_idempotent: ClassVar[bool]


#: A status post attempted before is re-sent with its key only within this window (Mastodon keeps keys 1 h);
#: later, a second post could be a duplicate, so it fails with the reason instead.
STATUS_RESEND_SECONDS = 3000


def same_reply_text(posted: str, ours: str) -> bool:
    """Whether a status found in the thread is our reply: same words once mentions and spacing are ignored.

    Args:
        posted: The plain text of a status in the thread (the channel may have rendered mentions differently).
        ours: The reply text as queued.

    Returns:
        True when both texts match once normalised: invisible characters removed (bidirectional and zero-width
        controls), NFC, ``@handles`` removed, whitespace collapsed, case folded. A handle holding a combining
        accent, a right-to-left override or a ``+`` is still recognised as a mention, so a reply posted before
        a crash is found and never posted twice.
    """
    return _comparable(posted) == _comparable(ours)


def _comparable(text: str) -> str:
    # Controls first, then NFC: a removed zero-width character can let an accent compose with its letter.
    plain = unicodedata.normalize("NFC", _INVISIBLE_RE.sub("", text))
    return _SPACE_RE.sub(" ", _MENTION_RE.sub(" ", plain)).strip().casefold()


@dataclass(frozen=True, slots=True)
class _Target:
    head: MentionRow
    message: MentionRow


class Outbox:
    """Queues replies, sends them through the account's connector and reconciles after crashes.

    Every reply row is committed as ``queued`` with an idempotency key before any network call. The sender
    marks it ``sending`` (attempts + 1) right before the call, then ``sent`` with the external id and URL.
    A row that was attempted before (``sending`` after a crash, or queued again after an unclear failure) is
    looked up in the thread first, so it is posted exactly once. Per account, replies leave in the order they
    were queued: when the head of the line cannot leave, the rest wait with it.
    """

    def __init__(
        self,
        replies: ReplyRepo,
        mentions: MentionRepo,
        accounts: AccountRepo,
        connectors: Mapping[int, Connector],
        clock: Clock,
        *,
        actor: Callable[[], str] = lambda: "agent",
        on_sent: Callable[[ReplyRow], None] | None = None,
        freshness_seconds: int = DEFAULT_FRESHNESS_SECONDS,
        rng: random.Random | None = None,
        statuses: StatusPostRepo | None = None,
        gate: SendGate | None = None,
    ) -> None:
        """Wire the outbox; nothing is sent until :meth:`drain` or :meth:`run`.

        Args:
            replies: The outbox table.
            mentions: Threads (the message a reply answers).
            accounts: Account handles (to recognise our own replies in a thread).
            connectors: Connector per account id (shared with the poller).
            clock: Time source.
            actor: The agent's name for the event log, read when a reply is queued.
            on_sent: Called with each reply once it is known to be posted (SLA engine, surveys).
            freshness_seconds: Replies written longer ago are checked against the thread before they leave.
            rng: Jitter for retry backoff.
            statuses: The status-post table (capacity updates); without it :meth:`post_status` refuses.
            gate: Team mode's send gate, asked before each reply leaves (not status posts); None when solo.
        """
        self._replies = replies
        self._mentions = mentions
        self._accounts = accounts
        self.connectors = connectors
        self._clock = clock
        self._actor = actor
        self.on_sent = on_sent
        self._freshness = freshness_seconds
        self._rng = rng or random.Random()
        self._lock = asyncio.Lock()
        self._wake: asyncio.Event | None = None
        self._listeners: list[Callable[[int], None]] = []
        self._statuses = statuses
        self._status_listeners: list[Callable[[int], None]] = []
        self._gate_held: set[int] = set()  # replies the gate HELD, tried again as soon as it reopens
        self._gate: SendGate | None = None
        self.gate = gate

    @property
    def gate(self) -> SendGate | None:
        """Team mode's send gate (None when solo)."""
        return self._gate

    @gate.setter
    def gate(self, gate: SendGate | None) -> None:
        # A gate that says when it reopens (the team server is back) gets the held replies tried at once.
        self._gate = gate
        reopening: object = gate  # a SendGate may also be a ReopeningGate (two ports, one object)
        if isinstance(reopening, ReopeningGate):
            reopening.on_reopen(self.retry_gate_held)

    def retry_gate_held(self) -> int:
        """Make the replies the send gate held due now and wake the sender (the gate says it can answer again).

        Only those held by the gate in this session: other waits (a channel's backoff, a rate limit) keep theirs;
        one held before a restart is asked again after ``GATE_RETRY_SECONDS`` as before.

        Returns:
            How many replies were made due.
        """
        held, self._gate_held = self._gate_held, set()
        if not held:
            return 0
        now = self._clock.now()
        made_due = 0
        for row in self._replies.pending():
            if (
                row.id in held
                and row.state is ReplyState.QUEUED
                and row.next_attempt_at is not None
                and row.next_attempt_at > now
            ):
                self._replies.mark_waiting(row.id, error=row.error, next_attempt_at=None)
                self._changed(row.mention_id)
                made_due += 1
        self.wake()
        return made_due

    # ------------------------------------------------------------------ agent actions (synchronous, no network)
    def queue(
        self,
        mention_id: int,
        text: str,
        *,
        visibility: str | None = None,
        purpose: str = "reply",
        template_id: int | None = None,
        holding_until: int | None = None,
        seen_at: int | None = None,
        override: bool = False,
        override_reason: str = "",
    ) -> int:
        """Commit a reply as ``queued`` and wake the sender (when :meth:`run` is running).

        The reply answers the newest message of the item's thread and follows its visibility unless told
        otherwise (a reply to a direct message is always direct).

        Args:
            mention_id: The queue item, or any message of its thread.
            text: The reply text (the channel adds the customer's handle when it is missing).
            visibility: The channel's visibility word; default: the answered message's.
            purpose: "reply", "holding", "survey", "correction" or "status".
            template_id: The template the reply started from.
            holding_until: For holding replies: when the promised follow-up is due.
            seen_at: When the agent last looked at the thread (default now); older than the freshness window
                means the thread is re-read before sending.
            override: The agent chose to "send anyway" (team mode: over a colleague's claim, or while cut off
                from the team server): the send gate lets it pass and it is marked for review (see
                :meth:`send_anyway`).
            override_reason: Why, in the agent's words or the window's; a general sentence by default.

        Returns:
            The reply id.

        Raises:
            OutboxError: Unknown item or empty text.
            StorageError: The row could not be written.
        """
        if not text.strip():
            raise OutboxError("The reply is empty.")
        target = self._target(mention_id)
        chosen = visibility or target.message.visibility
        if target.message.visibility == "direct":
            chosen = "direct"
        row = self._replies.enqueue(
            mention_id=target.head.id,
            target_id=target.message.id,
            text=text,
            visibility=chosen,
            purpose=purpose,
            idempotency_key=str(uuid.uuid4()),
            now=int(self._clock.now()),
            actor=self._actor(),
            template_id=template_id,
            seen_at=seen_at,
            holding_until=holding_until,
        )
        if override:
            # Same loop turn as the enqueue (no await between): the sender cannot see it without the mark.
            self._replies.mark_override(
                row.id, reason=override_reason or SEND_ANYWAY_REASON, now=int(self._clock.now()), actor=self._actor()
            )
        self._changed(row.mention_id)
        self.wake()
        return row.id

    def post_status(
        self, account_id: int, text: str, *, visibility: str = "public", wait_seconds: int | None = None
    ) -> int:
        """Commit a status post (purpose "status": not a reply to anyone) as ``queued`` and wake the sender.

        Args:
            account_id: The account to post from; its connector must be able to post statuses.
            text: The status text, as the agent approved it.
            visibility: The channel's visibility word.
            wait_seconds: The expected wait the text publishes (kept with the post and its events).

        Returns:
            The status post's id.

        Raises:
            OutboxError: Empty text, no status table, or the account cannot post statuses.
            StorageError: The row could not be written.
        """
        if not text.strip():
            raise OutboxError("The status update is empty.")
        if self._statuses is None:
            raise OutboxError("Status updates are not available.")
        if not isinstance(self.connectors.get(account_id), StatusConnector):
            raise OutboxError("This account cannot post status updates.")
        row = self._statuses.enqueue(
            account_id=account_id,
            text=text,
            visibility=visibility,
            idempotency_key=str(uuid.uuid4()),
            now=int(self._clock.now()),
            actor=self._actor(),
            wait_seconds=wait_seconds,
        )
        self._status_changed(row.id)
        self.wake()
        return row.id

    def status_post(self, post_id: int) -> StatusPostRow | None:
        return None if self._statuses is None else self._statuses.get(post_id)

    def subscribe_status(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(status_post_id)`` after every change of a status post."""
        self._status_listeners.append(listener)

    def correct(self, reply_id: int, text: str) -> int:
        """Queue a correction of a sent reply: an edit where the channel allows it, else a follow-up reply.

        The original row keeps its text; the correction is its own row (purpose "correction") and a
        ``reply_corrected`` event records the mode once it is sent.

        Raises:
            OutboxError: The reply is unknown, not sent yet, or the text is empty.
        """
        original = self._replies.get(reply_id)
        if original is None or original.state is not ReplyState.SENT or original.external_id is None:
            raise OutboxError("Only a sent reply can be corrected; withdraw or edit a queued one instead.")
        if not text.strip():
            raise OutboxError("The correction is empty.")
        row = self._replies.enqueue(
            mention_id=original.mention_id,
            target_id=original.target_id if original.target_id is not None else original.mention_id,
            text=text,
            visibility=original.visibility,
            purpose="correction",
            idempotency_key=str(uuid.uuid4()),
            now=int(self._clock.now()),
            actor=self._actor(),
            corrects_id=original.id,
        )
        self._changed(row.mention_id)
        self.wake()
        return row.id

    def confirm(self, reply_id: int) -> None:
        """The agent has read what was posted since and still wants this held reply sent."""
        row = self._replies.release(reply_id, now=int(self._clock.now()))
        self._changed(row.mention_id)
        self.wake()

    def retry(self, reply_id: int) -> None:
        """Send a failed reply again (the composer's Retry button); it leaves with the next pass.

        Raises:
            OutboxError: It did not fail, or the agent withdrew it.
        """
        try:
            row = self._replies.requeue(reply_id, now=int(self._clock.now()), actor=self._actor())
        except StorageError as exc:
            raise OutboxError(str(exc)) from exc
        self._changed(row.mention_id)
        self.wake()

    def send_anyway(self, reply_id: int, *, reason: str = "") -> None:
        """The agent sends a reply anyway (team mode): one the gate refused (a colleague answered or is
        answering) or one waiting while the team server is unreachable. It passes the gate, is marked for review
        and leaves with the next pass; a ``send_anyway`` event records the choice for the team.

        Raises:
            OutboxError: It is sending or sent already, or was withdrawn.
        """
        try:
            row = self._replies.mark_override(
                reply_id, reason=reason or SEND_ANYWAY_REASON, now=int(self._clock.now()), actor=self._actor()
            )
        except StorageError as exc:
            raise OutboxError(str(exc)) from exc
        self._changed(row.mention_id)
        self.wake()

    def hand_off(self, reply_id: int) -> ManualReply | None:
        """How to send a reply to a hand-added post: its text to copy and the post's link to open.

        Returns:
            None when the reply is not for a hand-added post, or has left already.
        """
        row = self._replies.get(reply_id)
        if row is None or row.state is not ReplyState.QUEUED or not self._is_manual(self._replies.account_of(reply_id)):
            return None
        target = self._target_of(row)
        head = self._mentions.rows_by_id([row.mention_id]).get(row.mention_id)
        link = target.url if target is not None and target.url else (head.url if head is not None else "")
        return reply_handoff(link, row.text)

    def mark_sent_by_hand(self, reply_id: int) -> ReplyRow:
        """The agent posted a hand-added post's reply themselves: it counts as sent now, and meets the
        deadlines a sent reply meets (issue 19 #3).

        Raises:
            OutboxError: It is not a queued reply to a hand-added post.
        """
        handoff = self.hand_off(reply_id)
        if handoff is None:
            raise OutboxError("Only a queued reply to a post added by hand can be marked as sent.")
        at = int(self._clock.now())
        sent = self._replies.mark_sent(
            reply_id, external_id=f"by-hand:{reply_id}", url=handoff.open_url, at=at, actor=self._actor()
        )
        if self.on_sent is not None:
            try:
                self.on_sent(sent)
            except Exception:  # a listener's bug must not make a posted reply look unsent
                log.exception("on_sent listener failed for reply %s", reply_id)
        self._changed(sent.mention_id)
        return sent

    def _is_manual(self, account_id: int) -> bool:
        account = self._accounts.get(account_id)
        return account is not None and account.kind == MANUAL_KIND

    def withdraw(self, reply_id: int) -> None:
        """Take back a queued reply that has not started sending.

        A reply that was tried before without a clear answer (a connection cut after the request went out) may
        already be on the channel; it stays, so that the next pass finds it in the thread and records it as
        sent, instead of calling "withdrawn" a reply the customer can read (issue 19, found by the robot).

        Raises:
            OutboxError: It is already sending or sent, or may already be posted.
        """
        row = self._replies.get(reply_id)
        if row is not None and row.state is ReplyState.QUEUED and row.attempts > 0:
            raise OutboxError(
                "This reply may already be on the channel: its last try got no answer. It is checked against "
                "the conversation before anything else, and never posted twice; correct it once it shows as sent."
            )
        try:
            row = self._replies.cancel(reply_id, now=int(self._clock.now()), actor=self._actor())
        except StorageError as exc:
            raise OutboxError(str(exc)) from exc
        self._changed(row.mention_id)

    def save_draft(self, mention_id: int, text: str) -> None:
        """Keep the unsent text of an item (survives a restart); empty text forgets it."""
        self._replies.save_draft(mention_id, text, key=str(uuid.uuid4()), now=int(self._clock.now()))

    def draft(self, mention_id: int) -> str:
        row = self._replies.draft(mention_id)
        return "" if row is None else row.text

    def replies(self, mention_id: int) -> list[ReplyRow]:
        """The item's replies (not drafts), oldest first."""
        return self._replies.for_mention(mention_id)

    def reply(self, reply_id: int) -> ReplyRow | None:
        """One reply by id (what ``sync --once`` prints about a reply that did not leave)."""
        return self._replies.get(reply_id)

    def reply_states(self, mention_ids: list[int]) -> dict[int, ReplyState]:
        return self._replies.latest_states(mention_ids)

    def waiting_count(self) -> int:
        """Replies queued or sending (the status bar's "N waiting to send")."""
        return self._replies.waiting_count()

    def subscribe(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(mention_id)`` after every change of one of that queue item's replies."""
        self._listeners.append(listener)

    def wake(self) -> None:
        """Make :meth:`run` send now (a reply was queued, an account came back)."""
        if self._wake is not None:
            self._wake.set()

    def retry_account(self, account_id: int) -> int:
        """Make an account's waiting replies and status posts due now and wake the sender.

        Called once the account works again (the agent signed in anew): what waited for the sign-in leaves
        now rather than after ``AUTH_RETRY_SECONDS`` or its backoff. The queue order is unchanged; replies
        held for the agent's confirmation stay held; the reason they waited is kept until they are tried.

        Args:
            account_id: The account that is connected again.

        Returns:
            How many replies and status posts were made due.
        """
        now = self._clock.now()
        made_due = 0
        for row in self._replies.pending(account_id):
            if row.state is ReplyState.QUEUED and row.next_attempt_at is not None and row.next_attempt_at > now:
                self._replies.mark_waiting(row.id, error=row.error, next_attempt_at=None)
                self._changed(row.mention_id)
                made_due += 1
        if self._statuses is not None:
            for post in self._statuses.pending():
                if (
                    post.account_id == account_id
                    and post.state is ReplyState.QUEUED
                    and post.next_attempt_at is not None
                    and post.next_attempt_at > now
                ):
                    self._statuses.mark_waiting(post.id, error=post.error, next_attempt_at=None)
                    self._status_changed(post.id)
                    made_due += 1
        self.wake()
        return made_due

    # ------------------------------------------------------------------ sending
    async def run(self) -> None:
        """Send forever: drain, then sleep until woken or the next retry is due. Cancel to stop."""
        self._wake = asyncio.Event()
        while True:
            self._wake.clear()
            try:
                await self.drain()
            except StorageError:
                log.exception("outbox pass failed; retrying later")
            delay = self._next_delay()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    def _next_delay(self) -> float:
        now = self._clock.now()
        due = [r.next_attempt_at for r in self._replies.pending() if r.next_attempt_at is not None]
        if self._statuses is not None:
            due += [p.next_attempt_at for p in self._statuses.pending() if p.next_attempt_at is not None]
        if not due:
            return IDLE_SECONDS
        return max(0.5, min(IDLE_SECONDS, min(due) - now))

    async def drain(self, account_id: int | None = None) -> dict[int, SendOutcome]:
        """One pass over the pending replies that are due, per account in queue order.

        Returns:
            What happened to each reply looked at, by reply id.
        """
        outcomes: dict[int, SendOutcome] = {}
        async with self._lock:
            blocked: set[int] = set()
            for row in self._replies.pending(account_id):
                account = self._replies.account_of(row.id)
                if account in blocked:
                    continue
                if row.hold_reason:
                    blocked.add(account)  # later replies wait behind the held one, so the order holds
                    continue
                if row.next_attempt_at is not None and row.next_attempt_at > self._clock.now():
                    blocked.add(account)
                    continue
                connector = self.connectors.get(account)
                if connector is None and self._is_manual(account):
                    # A hand-added post has no API: the agent posts the reply and marks it sent (issue 19 #3).
                    if row.error != HAND_OFF:
                        self._replies.mark_waiting(row.id, error=HAND_OFF, next_attempt_at=None)
                        self._changed(row.mention_id)
                    continue
                if connector is None:
                    self._replies.mark_waiting(row.id, error="This account is not connected.", next_attempt_at=None)
                    self._changed(row.mention_id)
                    blocked.add(account)
                    continue
                outcome = await self._send(row, account, connector)
                outcomes[row.id] = outcome
                self._changed(row.mention_id)
                if outcome in (SendOutcome.HELD, SendOutcome.WAITING):
                    blocked.add(account)
            await self._drain_statuses(account_id)
        return outcomes

    async def _drain_statuses(self, account_id: int | None) -> dict[int, SendOutcome]:
        """Send the due status posts, per account in queue order (they never wait behind a held reply)."""
        outcomes: dict[int, SendOutcome] = {}
        if self._statuses is None:
            return outcomes
        blocked: set[int] = set()
        for post in self._statuses.pending():
            account = post.account_id
            if account in blocked or (account_id is not None and account != account_id):
                continue
            if post.next_attempt_at is not None and post.next_attempt_at > self._clock.now():
                blocked.add(account)
                continue
            outcome = await self._send_status(post)
            outcomes[post.id] = outcome
            self._status_changed(post.id)
            if outcome is SendOutcome.WAITING:
                blocked.add(account)
        return outcomes

    async def _send_status(self, post: StatusPostRow) -> SendOutcome:
        assert self._statuses is not None
        statuses = self._statuses
        now = int(self._clock.now())
        connector: object = self.connectors.get(post.account_id)  # any connector; only some post statuses
        if not isinstance(connector, StatusConnector):
            self._statuses.mark_waiting(post.id, error="This account is not connected.", next_attempt_at=None)
            return SendOutcome.WAITING
        # No idempotency key: a resend could post it twice.
        once_only = isinstance(connector, StatusIdempotence) and not connector.status_idempotent
        if post.attempted_at is not None and (
            now - post.attempted_at > STATUS_RESEND_SECONDS or (once_only and post.state is ReplyState.SENDING)
        ):
            # The channel forgets the idempotency key after an hour, or has none and the app stopped mid-call:
            # sending again could post it twice.
            self._statuses.mark_failed(
                post.id, error="Not sent again: an earlier attempt may have posted it. Check the account.", at=now
            )
            return SendOutcome.FAILED
        if self._statuses.mark_sending(post.id, now=now) is None:
            return SendOutcome.FAILED
        try:
            receipt = await connector.post_status(
                post.text, idempotency_key=post.idempotency_key, visibility=post.visibility
            )
        except ChannelError as exc:
            return self._refused(
                exc,
                attempts=post.attempts,
                now=now,
                waiting=lambda error, when: statuses.mark_waiting(post.id, error=error, next_attempt_at=when),
                failed=lambda error: statuses.mark_failed(post.id, error=error, at=now),
            )
        at = receipt.posted_at if receipt.posted_at > 0 else now
        self._statuses.mark_sent(post.id, external_id=receipt.external_id, url=receipt.url, at=at)
        return SendOutcome.SENT

    def _refused(
        self,
        exc: ChannelError,
        *,
        attempts: int,
        now: int,
        waiting: Callable[[str, int], object],
        failed: Callable[[str], object],
    ) -> SendOutcome:
        """How a send the channel did not take ends, for replies and status posts alike.

        An expired sign-in or a rate limit waits (with the reason and when to try again), a permanent refusal
        fails, anything else (network, 5xx) waits with backoff and jitter.
        """
        if isinstance(exc, AuthExpired):
            waiting(f"Not sent: sign-in expired. {exc}", now + AUTH_RETRY_SECONDS)
            return SendOutcome.WAITING
        if isinstance(exc, RateLimited):
            waiting(f"Waiting: {exc}", int(exc.retry_at) + 1)
            return SendOutcome.WAITING
        if isinstance(exc, Permanent):
            failed(str(exc))
            return SendOutcome.FAILED
        delay = backoff_seconds(max(1, attempts + 1), base=RETRY_BASE_SECONDS, rng=self._rng)
        waiting(f"Waiting to retry: {exc}", now + delay)
        return SendOutcome.WAITING

    def _status_changed(self, post_id: int) -> None:
        for listener in list(self._status_listeners):
            listener(post_id)

    async def _send(self, row: ReplyRow, account_id: int, connector: Connector) -> SendOutcome:
        now = int(self._clock.now())
        target = self._target_of(row)
        if target is None:
            self._replies.mark_failed(row.id, error="The message this reply answers is no longer stored.", at=now)
            return SendOutcome.FAILED
        if (elsewhere := self._answered_elsewhere(row)) is not None:
            self._replies.mark_failed(row.id, error=elsewhere, at=now)
            return SendOutcome.FAILED
        reply_target = ReplyTarget(target.external_id, target.author_handle, target.visibility)
        editing = row.corrects_id is not None and isinstance(connector, EditingConnector)
        stale = row.seen_at is not None and now - row.seen_at > self._freshness
        try:
            if (row.attempts > 0 and not editing) or stale:
                thread = await connector.fetch_thread(target.external_id)
                if row.attempts > 0 and not editing:
                    found = self._find_posted(thread, row, account_id, target.external_id)
                    if found is not None:
                        log.info("reply %s was already posted as %s; not posting it again", row.id, found.external_id)
                        self._sent(row, found.external_id, found.url, found.posted_at)
                        return SendOutcome.RECONCILED
                if stale:
                    reason = self._newer_posts(thread, row, account_id)
                    if reason:
                        self._replies.hold(row.id, reason=reason)
                        return SendOutcome.HELD
            if not editing and (gated := await self._pass_gate(row, now)) is not None:
                return gated
            if self._replies.mark_sending(row.id, now=now) is None:
                return SendOutcome.FAILED  # withdrawn while the thread was being checked: never send it
            if editing:
                original = self._replies.get(row.corrects_id or 0)
                if original is None or original.external_id is None:
                    raise Permanent("The reply to correct has no id on the channel.")
                assert isinstance(connector, EditingConnector)
                receipt = await connector.edit_reply(original.external_id, row.text)
            else:
                receipt = await connector.send_reply(
                    reply_target, row.text, idempotency_key=row.idempotency_key, visibility=row.visibility
                )
        except ChannelError as exc:
            return self._refused(
                exc,
                attempts=row.attempts,
                now=now,
                waiting=lambda error, when: self._replies.mark_waiting(row.id, error=error, next_attempt_at=when),
                failed=lambda error: self._replies.mark_failed(row.id, error=error, at=now),
            )
        self._sent(row, receipt.external_id, receipt.url, receipt.posted_at)
        return SendOutcome.SENT

    async def _pass_gate(self, row: ReplyRow, now: int) -> SendOutcome | None:
        """Ask the team's send gate whether ``row`` may leave; None means it may (or there is no gate).

        Right before the network call: the gate records the send on the team server first, so after a crash in
        ``sending`` the thread lookup above still finds a posted reply, and a retry is recorded again under the
        same reply key (idempotent). An edit in place answers no one anew and is not asked about.
        """
        if self.gate is None:
            return None
        head = self._mentions.rows_by_id([row.mention_id]).get(row.mention_id)
        if head is None:
            return None
        try:
            verdict = await self.gate.check(row, head, override=self._replies.is_override(row.id))
        except Exception:  # a gate must not stop the outbox; not knowing is waiting
            log.exception("send gate failed for reply %s", row.id)
            verdict = GateVerdict.hold("Waiting: could not ask the team whether a colleague answered this.")
        current = self._replies.get(row.id)
        if current is None or current.state not in (ReplyState.QUEUED, ReplyState.SENDING):
            return SendOutcome.FAILED  # withdrawn while the gate was asked: never send it, never revive it
        if verdict.outcome is GateOutcome.PROCEED:
            return None
        if verdict.outcome is GateOutcome.HOLD:
            self._replies.mark_waiting(row.id, error=verdict.reason, next_attempt_at=now + GATE_RETRY_SECONDS)
            self._gate_held.add(row.id)
            return SendOutcome.WAITING
        self._replies.mark_failed(row.id, error=verdict.reason, at=now)
        return SendOutcome.FAILED

    def _answered_elsewhere(self, row: ReplyRow) -> str | None:
        """Why ``row`` must not leave blindly: the brand answered the customer from elsewhere (another install, a
        colleague, the channel's own app; found by the sync, see console.sync.own_posts) after the customer's
        latest message, and the agent had not seen that answer when writing. None: nothing in the way.

        Only a first attempt is checked: a reply tried before may be the very post the sync found (the thread
        lookup then reconciles it as ours). Retry queues it anew as seen now, so the agent's second word sends.
        """
        if row.attempts > 0 or row.purpose not in ("reply", "holding") or row.corrects_id is not None:
            return None
        head = self._mentions.rows_by_id([row.mention_id]).get(row.mention_id)
        if head is None:
            return None
        seen = self._replies.answered_elsewhere(
            row.mention_id, after=head.last_message_at, found_since=row.seen_at or row.queued_at or row.created_at
        )
        if seen is None or seen.sent_at is None:
            return None
        at = time.strftime("%H:%M", time.localtime(seen.sent_at))
        return f"Answered on {channel_label(head.channel)} at {at} from another app; your reply was not sent."

    def _sent(self, row: ReplyRow, external_id: str, url: str, posted_at: int) -> None:
        at = posted_at if posted_at > 0 else int(self._clock.now())
        sent = self._replies.mark_sent(row.id, external_id=external_id, url=url, at=at)
        if self.on_sent is not None:
            try:
                self.on_sent(sent)
            except Exception:  # a listener's bug must not make a posted reply look unsent
                log.exception("on_sent listener failed for reply %s", row.id)

    def _find_posted(
        self, thread: list[InboundItem], row: ReplyRow, account_id: int, parent: str
    ) -> InboundItem | None:
        ours = self._our_handle(account_id)
        for item in thread:
            if (
                item.parent_external_id == parent
                and (ours is None or item.author_handle.casefold() == ours)
                and same_reply_text(item.text, row.text)
            ):
                return item
        return None

    def _newer_posts(self, thread: list[InboundItem], row: ReplyRow, account_id: int) -> str:
        ours = self._our_handle(account_id)
        seen = row.seen_at or row.queued_at or row.created_at
        newer = [i for i in thread if i.posted_at > seen and (ours is None or i.author_handle.casefold() != ours)]
        if not newer:
            return ""
        latest = newer[-1]
        preview = latest.text if len(latest.text) <= 140 else latest.text[:139] + "…"
        more = f" (and {len(newer) - 1} more)" if len(newer) > 1 else ""
        return f"@{latest.author_handle} posted since you wrote this{more}: “{preview}”"

    def _our_handle(self, account_id: int) -> str | None:
        account = self._accounts.get(account_id)
        return None if account is None else account.handle.removeprefix("@").casefold()

    # ------------------------------------------------------------------ targets
    def _target(self, mention_id: int) -> _Target:
        row = self._mentions.rows_by_id([mention_id]).get(mention_id)
        if row is None:
            raise OutboxError(f"There is no item {mention_id} to reply to.")
        head_id = row.head_id if row.head_id is not None else row.id
        thread = self._mentions.thread(head_id)
        if not thread:
            raise OutboxError(f"There is no item {mention_id} to reply to.")
        return _Target(head=thread[0], message=thread[-1])

    def _target_of(self, row: ReplyRow) -> MentionRow | None:
        target_id = row.target_id if row.target_id is not None else row.mention_id
        return self._mentions.rows_by_id([target_id]).get(target_id)

    def notify_changed(self, mention_id: int) -> None:
        """Tell the listeners an item's replies changed outside the outbox (a reply seen on the channel)."""
        self._changed(mention_id)

    def _changed(self, mention_id: int) -> None:
        for listener in list(self._listeners):
            listener(mention_id)
