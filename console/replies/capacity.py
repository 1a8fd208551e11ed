"""Honest capacity: the expected wait for a new item from the queue and the agent's recent pace, and its status post.

DESIGN.md "Be honest about capacity"; issue 14 "Expected wait". The figure is

    wait = (items awaiting a reply + 1) / replies per hour over the recent window

where the window is the last two hours, cut to the running shift and to the first reply in it (at least 30
minutes), so that an agent who started answering 20 minutes ago is not taken for a slow one. That is working
time: with business hours (the SLA policy's default calendar) it is laid on the calendar from now, so a message
at 16:45 with an hour's work ahead of it waits until 09:45 the next working day, and one that arrives while
closed waits for the opening too. The result is clamped to a floor (nobody is answered in 0 minutes) and a
ceiling ("more than 8 hours"), and rounded *up* to a figure a customer can read ("about 25 minutes"). With too
few replies in the window there is no pace yet: the wait is unknown, and the console says so rather than
publishing a made-up number.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from console.ports import Clock
from console.replies.checks import LengthCheck, check_length
from console.replies.outbox import Outbox, OutboxError, StatusConnector
from console.sla.calendar import Calendar, add_running
from console.wording import count
from storage.accounts import AccountRepo
from storage.capacity import CapacityRepo, StatusPostRow
from storage.errors import StorageError

__all__ = [
    "DEFAULT_STATUS_TEMPLATE",
    "CapacityService",
    "StatusAccount",
    "WaitEstimate",
    "expected_wait",
    "fill_status",
    "format_wait",
    "round_wait",
]

#: The pace is measured over this much recent time (or since the shift started, or the first reply, if later).
DEFAULT_WINDOW_SECONDS = 2 * 3600
#: ... but never over less than this: three replies in five minutes are not a pace of 36 an hour.
MIN_WINDOW_SECONDS = 30 * 60
#: Fewer replies than this in the window: no pace yet, the wait is unknown.
MIN_REPLIES = 2
FLOOR_SECONDS = 5 * 60
CEILING_SECONDS = 8 * 3600
#: Items awaiting a reply are counted up to here (beyond it the wait is past the ceiling at any real pace).
AHEAD_CAP = 10_000
#: Replies that answer a customer (not surveys, corrections or status posts).
PACE_PURPOSES = ("reply", "holding")

#: The status post; ``{expected_wait}`` is "about 25 minutes", ``{open_items}`` the items ahead.
DEFAULT_STATUS_TEMPLATE = (
    "We're answering new messages in {expected_wait} right now. Thanks for your patience – "
    "every message gets a reply from a person, and we'll get to yours as soon as we can."
)


@dataclass(frozen=True, slots=True)
class WaitEstimate:
    """The expected wait for an item arriving now, with what it was computed from."""

    ahead: int  # items awaiting a reply (first or next response running)
    replies: int  # replies sent in the window
    window_seconds: int
    seconds: int | None  # rounded; None = unknown (no pace yet)
    capped: bool = False  # the wait is longer than the ceiling ("more than 8 hours")
    #: Working time the queue needs, before it was laid on the calendar (None: unknown, or no calendar).
    working_seconds: int | None = None

    @property
    def known(self) -> bool:
        return self.seconds is not None

    @property
    def pace_per_hour(self) -> float | None:
        """Replies per hour over the window (None without a pace)."""
        if self.replies < MIN_REPLIES or self.window_seconds <= 0:
            return None
        return self.replies * 3600 / self.window_seconds

    def phrase(self) -> str:
        """``"about 25 minutes"``, ``"more than 8 hours"``; ``""`` when unknown (never a made-up figure)."""
        return "" if self.seconds is None else format_wait(self.seconds, capped=self.capped)

    def short(self) -> str:
        """For the status bar: ``"~25 min"``, ``"~1 h 30 min"``, ``"> 8 h"``, ``"not known yet"``."""
        if self.seconds is None:
            return "not known yet"
        if self.capped:
            return f"> {self.seconds // 3600} h"
        hours, minutes = divmod(self.seconds // 60, 60)
        if not hours:
            return f"~{minutes} min"
        return f"~{hours} h {minutes} min" if minutes else f"~{hours} h"

    def basis(self) -> str:
        """How the figure was reached, for a tooltip."""
        window = _hours_text(self.window_seconds)
        if self.seconds is None:
            return (
                f"{self.ahead:,} waiting for a reply. Not enough replies sent in the last {window} "
                f"({self.replies}) to know your pace yet."
            )
        pace = self.pace_per_hour or 0.0
        text = (
            f"{self.ahead:,} waiting for a reply; you sent {count(self.replies, 'reply')} in the last {window} "
            f"({pace:.1f} an hour). A new message waits for those and its own reply."
        )
        if self.working_seconds is not None:
            text += f" That is {_hours_text(self.working_seconds)} of work, counted in business hours only."
        return text


def round_wait(seconds: float) -> int:
    """Round a wait *up* to what a customer can read: 5 minutes under an hour, then quarter hours."""
    step = 5 * 60 if seconds <= 3600 else 15 * 60
    return max(step, math.ceil(seconds / step) * step)


def expected_wait(
    *,
    ahead: int,
    replies: int,
    window_seconds: int,
    floor_seconds: int = FLOOR_SECONDS,
    ceiling_seconds: int = CEILING_SECONDS,
    min_replies: int = MIN_REPLIES,
    now: int | None = None,
    calendar: Calendar | None = None,
) -> WaitEstimate:
    """The expected wait for a new item: the items ahead of it, and its own reply, at the recent pace.

    Args:
        ahead: Items awaiting a reply now.
        replies: Replies sent in the window.
        window_seconds: Length of the window the replies were counted over.
        floor_seconds: The shortest wait said (an empty queue still takes a moment to answer).
        ceiling_seconds: Longer waits are said as "more than …".
        min_replies: Fewer replies than this means no pace yet (unknown).
        now: When the new item arrives (epoch seconds); needed with ``calendar``.
        calendar: When the team works; the working time is laid on it from ``now``. None or around the
            clock: the wait is the working time.

    Returns:
        The estimate; ``seconds`` is None when unknown.
    """
    ahead = max(0, ahead)
    if replies < min_replies or window_seconds <= 0:
        return WaitEstimate(ahead, max(0, replies), max(0, window_seconds), None)
    raw = (ahead + 1) * window_seconds / replies
    working: int | None = None
    if calendar is not None and now is not None and not calendar.always_open and raw <= ceiling_seconds:
        working = math.ceil(max(floor_seconds, raw))
        done = add_running(calendar, now, working)
        raw = ceiling_seconds + 1 if done is None else done - now
    if raw > ceiling_seconds:
        return WaitEstimate(ahead, replies, window_seconds, ceiling_seconds, capped=True, working_seconds=working)
    return WaitEstimate(ahead, replies, window_seconds, round_wait(max(floor_seconds, raw)), working_seconds=working)


def format_wait(seconds: int, *, capped: bool = False) -> str:
    """``"about 25 minutes"``, ``"about 1 hour"``, ``"about 2 hours 15 minutes"``, ``"more than 8 hours"``."""
    if capped:
        return f"more than {_hours_text(seconds)}"
    hours, minutes = divmod(max(0, seconds) // 60, 60)
    parts = []
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if minutes or not hours:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    return "about " + " ".join(parts)


def _hours_text(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    if rest == 0:
        return f"{hours} hour{'s' if hours != 1 else ''}"
    if hours == 0:
        return f"{rest // 60} minutes"
    return f"{seconds / 3600:.1f} hours"


def fill_status(template: str, estimate: WaitEstimate) -> str:
    """The status text with the real figure; an unknown wait leaves a ``[expected wait]`` blank to fill.

    Only ``{expected_wait}`` and ``{open_items}`` are replaced; other braces stay as they are.
    """
    wait = estimate.phrase() or "[expected wait]"
    return template.replace("{expected_wait}", wait).replace("{open_items}", f"{estimate.ahead:,}")


@dataclass(frozen=True, slots=True)
class StatusAccount:
    """An account that can post a status update."""

    id: int
    channel: str
    handle: str

    @property
    def label(self) -> str:
        return f"{self.channel.capitalize()} · @{self.handle}"


class CapacityService:
    """The expected wait from the queue and the pace in the event log, and publishing it through the outbox."""

    def __init__(
        self,
        repo: CapacityRepo,
        accounts: AccountRepo,
        outbox: Outbox,
        clock: Clock,
        *,
        shift_start: Callable[[], int | None] | None = None,
        calendar: Callable[[], Calendar] | None = None,
        window_seconds: int = DEFAULT_WINDOW_SECONDS,
        template: str = DEFAULT_STATUS_TEMPLATE,
    ) -> None:
        """Wire the service.

        Args:
            repo: The counts (items awaiting a reply, replies sent).
            accounts: Which accounts exist (to offer those that can post).
            outbox: Status posts leave through it, committed before any network call.
            clock: Time source.
            shift_start: When the running shift started (the pace is not measured over time off shift).
            calendar: The team's working hours now (the SLA policy's default calendar); None: around the clock.
            window_seconds: The recent window the pace is measured over.
            template: The status post's starting text.
        """
        self._repo = repo
        self._accounts = accounts
        self.outbox = outbox
        self._clock = clock
        self._shift_start = shift_start
        self._calendar = calendar
        self._window = window_seconds
        self.template = template

    def estimate(self) -> WaitEstimate:
        """The expected wait for an item arriving now."""
        now = int(self._clock.now())
        start = now - self._window
        shift = self._shift_start() if self._shift_start is not None else None
        if shift is not None:
            start = max(start, shift)  # time before the shift is no one's pace
        replies = self._repo.replies_sent(start, now, PACE_PURPOSES)
        # The pace runs from the first reply in the window: an agent who started 20 minutes ago is not slow.
        first = self._repo.first_reply_sent(start, now, PACE_PURPOSES)
        begin = min(max(start, first if first is not None else start), now - MIN_WINDOW_SECONDS)
        ahead = self._repo.awaiting_response(cap=AHEAD_CAP)
        calendar = self._calendar() if self._calendar is not None else None
        return expected_wait(ahead=ahead, replies=replies, window_seconds=now - begin, now=now, calendar=calendar)

    def status_text(self, estimate: WaitEstimate | None = None) -> str:
        """The status template filled with the real figure (the agent previews and edits it)."""
        return fill_status(self.template, estimate if estimate is not None else self.estimate())

    def accounts(self) -> list[StatusAccount]:
        """Enabled accounts whose channel can post a status update (Mastodon, Bluesky, X, Facebook Pages)."""
        connectors = self.outbox.connectors
        return [
            StatusAccount(row.id, row.kind, row.handle)
            for row in self._accounts.list(enabled_only=True)
            if isinstance(connectors.get(row.id), StatusConnector)
        ]

    def check_length(self, account: StatusAccount, text: str) -> LengthCheck:
        """The channel's length limit for the text (no handle is added to a status post)."""
        return check_length(account.channel, text)

    def post(self, account_id: int, text: str, *, estimate: WaitEstimate | None = None) -> int:
        """Queue the approved text as a public status post (purpose "status"); it leaves with the outbox.

        Returns:
            The status post's id.

        Raises:
            OutboxError: Empty text, an account that cannot post statuses, or nothing could be written.
        """
        seconds = estimate.seconds if estimate is not None else None
        try:
            return self.outbox.post_status(account_id, text, wait_seconds=seconds)
        except StorageError as exc:
            raise OutboxError(f"Could not save the status update: {exc}") from exc

    def post_row(self, post_id: int) -> StatusPostRow | None:
        return self.outbox.status_post(post_id)

    def post_state(self, post_id: int) -> tuple[str, int | None, str]:
        """``(state, sent_at, error)`` of a status post ("queued", "sending", "sent", "failed"; "" if unknown)."""
        row = self.outbox.status_post(post_id)
        if row is None:
            return "", None, ""
        return row.state.value, row.sent_at, row.error

    def subscribe(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(status_post_id)`` whenever a status post changes (queued, sent, failed)."""
        self.outbox.subscribe_status(listener)
