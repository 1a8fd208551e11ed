"""Triage: an item's status, priority and tags, each change an event with time and actor, and undo."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum

from console.ports import Clock
from storage.errors import StorageError
from storage.rows import DeadlineKind, DeadlineRow, MentionStatus, ReplyState
from storage.triage import TriageRepo, TriageState

#: ``on_status_change(mention_id, old, new, at)``: the SLA engine pauses, stops or resumes clocks.
StatusListener = Callable[[int, MentionStatus, MentionStatus, int], None]
#: ``on_priority_change(mention_id, old, new, at)``: the SLA engine recomputes the item's deadlines (issue 14).
PriorityListener = Callable[[int, int, int, int], None]

#: How many changes undo can walk back.
UNDO_DEPTH = 50
MAX_TAG_CHARS = 40

_TAG_SPACE = re.compile(r"[\s_]+")
_TAG_DROP = re.compile(r"[^\w\-]+", re.UNICODE)


class Priority(IntEnum):
    URGENT = 1
    NORMAL = 2
    LOW = 3


PRIORITY_LABELS: dict[Priority, str] = {Priority.URGENT: "Urgent", Priority.NORMAL: "Normal", Priority.LOW: "Low"}

STATUS_LABELS: dict[MentionStatus, str] = {
    MentionStatus.NEW: "New",
    MentionStatus.OPEN: "Open",
    MentionStatus.WAITING: "Waiting on customer",
    MentionStatus.RESOLVED: "Resolved",
    MentionStatus.COMMUNITY: "Answered by community",
    MentionStatus.SPAM: "Spam",
}


class TriageField(StrEnum):
    STATUS = "status"
    PRIORITY = "priority"
    TAGS = "tags"


class TriageError(Exception):
    """A triage change was refused; the message says why, for the agent."""


@dataclass(frozen=True, slots=True)
class Change:
    """One triage change, as recorded (and as undo reverts it)."""

    mention_id: int
    field: TriageField
    old: MentionStatus | int | tuple[str, ...]
    new: MentionStatus | int | tuple[str, ...]
    at: int

    def describe(self) -> str:
        """``"Status: Open → Resolved"`` for the status bar and the undo action."""
        return f"{self.field.value.capitalize()}: {_label(self.old)} → {_label(self.new)}"


def _label(value: MentionStatus | int | tuple[str, ...]) -> str:
    if isinstance(value, MentionStatus):
        return STATUS_LABELS[value]
    if isinstance(value, tuple):
        return ", ".join(value) if value else "no tags"
    try:
        return PRIORITY_LABELS[Priority(value)]
    except ValueError:
        return str(value)


def normalize_tag(text: str) -> str:
    """A tag as stored: lower case, words joined by ``-``, no commas or punctuation, at most 40 characters."""
    tag = _TAG_SPACE.sub("-", text.strip().lower())
    tag = _TAG_DROP.sub("", tag).strip("-")
    return tag[:MAX_TAG_CHARS].strip("-")


def normalize_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Normalised, without blanks and duplicates, in the order given."""
    return tuple(dict.fromkeys(t for t in (normalize_tag(tag) for tag in tags) if t))


def close_question(
    handle: str, deadlines: Sequence[DeadlineRow], pending_reply: ReplyState | None, *, now: float
) -> str:
    """Why resolving an item deserves a second thought: no reply has reached the customer and none is on its
    way ("" when one has, or is). A stray key must not close a breached, unanswered item (issue 19 #4).

    Args:
        handle: The customer's handle (without "@").
        deadlines: The item's deadlines.
        pending_reply: The state of its latest unsent reply (queued and sending count as on its way).
        now: The current time.

    Returns:
        A sentence for the status bar, or "".
    """
    if pending_reply in (ReplyState.QUEUED, ReplyState.SENDING):
        return ""
    first = [d for d in deadlines if d.kind is DeadlineKind.FIRST_RESPONSE]
    if not first or any(d.met_at is not None for d in first):
        return ""
    breached = any(d.breached_at is not None or (d.cancelled_at is None and d.due_at <= now) for d in first)
    overdue = " Its first response is overdue." if breached else ""
    return f"No reply was sent to @{handle.removeprefix('@')} yet.{overdue}"


class Triage:
    """Changes status, priority and tags of queue items; every change is an event and can be undone."""

    def __init__(
        self,
        repo: TriageRepo,
        clock: Clock,
        *,
        actor: Callable[[], str] | None = None,
        on_status_change: StatusListener | None = None,
        on_priority_change: PriorityListener | None = None,
    ) -> None:
        self._repo = repo
        self._clock = clock
        self._actor = actor or (lambda: "agent")
        #: Set by the composition root when the SLA engine exists (issue 14).
        self.on_status_change = on_status_change
        #: Told after every priority change (and its undo): the policy may differ per priority.
        self.on_priority_change = on_priority_change
        self._done: list[Change] = []

    @property
    def last_change(self) -> Change | None:
        """The change that ``undo`` would revert."""
        return self._done[-1] if self._done else None

    def _now(self) -> int:
        return int(self._clock.now())

    def _who(self) -> str:
        return self._actor().strip() or "agent"

    def set_status(self, mention_id: int, status: MentionStatus) -> Change | None:
        """Set an item's status (open, waiting, resolved, community, spam).

        Returns:
            The change, or None when the item already had that status.

        Raises:
            TriageError: the item does not exist, "new" was asked for (only the app sets it), or the write
                failed (nothing changed).
        """
        if status is MentionStatus.NEW:
            raise TriageError("An item can be set to open, not back to new")
        state = self._state(mention_id)
        if state.status is status:
            return None
        return self._apply(Change(mention_id, TriageField.STATUS, state.status, status, self._now()))

    def set_priority(self, mention_id: int, priority: int) -> Change | None:
        """Set an item's priority (``Priority``); None when unchanged.

        Raises:
            TriageError: unknown item or priority, or the write failed.
        """
        try:
            level = Priority(priority)
        except ValueError:
            raise TriageError(f"Priority must be one of {[int(p) for p in Priority]}") from None
        state = self._state(mention_id)
        if state.priority == level:
            return None
        return self._apply(Change(mention_id, TriageField.PRIORITY, state.priority, int(level), self._now()))

    def set_tags(self, mention_id: int, tags: Iterable[str]) -> Change | None:
        """Replace an item's tags (normalised with ``normalize_tags``); None when unchanged.

        Raises:
            TriageError: unknown item, or the write failed.
        """
        wanted = normalize_tags(tags)
        state = self._state(mention_id)
        if state.tags == wanted:
            return None
        return self._apply(Change(mention_id, TriageField.TAGS, state.tags, wanted, self._now()))

    def undo(self) -> Change | None:
        """Revert the last change (as a new event marked ``undo``; the log stays append-only).

        Returns:
            The change that was reverted, or None when there is nothing to undo.

        Raises:
            TriageError: the item changed since (e.g. the customer reopened it); the change stays done.
        """
        if not self._done:
            return None
        change = self._done[-1]
        state = self._state(change.mention_id)
        current = {TriageField.STATUS: state.status, TriageField.PRIORITY: state.priority, TriageField.TAGS: state.tags}
        if current[change.field] != change.new:
            self._done.pop()
            raise TriageError(f"Cannot undo “{change.describe()}”: the item changed since")
        self._write(Change(change.mention_id, change.field, change.new, change.old, self._now()), undo=True)
        self._done.pop()
        return change

    # ------------------------------------------------------------------ internals
    def _state(self, mention_id: int) -> TriageState:
        state = self._repo.state(mention_id)
        if state is None:
            raise TriageError(f"Item {mention_id} is not in the queue")
        return state

    def _apply(self, change: Change) -> Change:
        self._write(change, undo=False)
        self._done.append(change)
        del self._done[:-UNDO_DEPTH]
        return change

    def _write(self, change: Change, *, undo: bool) -> None:
        try:
            self._store(change, undo=undo)
        except StorageError as exc:
            raise TriageError(f"Could not save the change ({change.describe()}): {exc}") from exc
        if change.field is TriageField.STATUS and self.on_status_change is not None:
            assert isinstance(change.old, MentionStatus) and isinstance(change.new, MentionStatus)
            self.on_status_change(change.mention_id, change.old, change.new, change.at)
        elif change.field is TriageField.PRIORITY and self.on_priority_change is not None:
            assert isinstance(change.old, int) and isinstance(change.new, int)
            self.on_priority_change(change.mention_id, change.old, change.new, change.at)

    def _store(self, change: Change, *, undo: bool) -> None:
        extra = {"undo": True} if undo else {}
        actor = self._who()
        if change.field is TriageField.STATUS:
            assert isinstance(change.old, MentionStatus) and isinstance(change.new, MentionStatus)
            self._repo.set_status(change.mention_id, change.new, at=change.at, actor=actor, **extra)
        elif change.field is TriageField.PRIORITY:
            assert isinstance(change.new, int)
            self._repo.set_priority(change.mention_id, change.new, at=change.at, actor=actor, **extra)
        else:
            assert isinstance(change.new, tuple)
            self._repo.set_tags(change.mention_id, change.new, at=change.at, actor=actor, **extra)
