"""Frozen row types that storage persists and returns; no behaviour lives here (STYLE B1)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class MentionKind(StrEnum):
    PUBLIC = "public"
    DIRECT = "direct"


class MentionStatus(StrEnum):
    NEW = "new"
    OPEN = "open"
    WAITING = "waiting"
    RESOLVED = "resolved"
    COMMUNITY = "community"
    SPAM = "spam"


#: Statuses that keep an item in the agent's Open queue.
OPEN_STATUSES: tuple[MentionStatus, ...] = (MentionStatus.NEW, MentionStatus.OPEN)


class DeadlineKind(StrEnum):
    FIRST_RESPONSE = "first_response"
    NEXT_RESPONSE = "next_response"
    FOLLOW_UP = "follow_up"
    RESOLUTION = "resolution"


@dataclass(frozen=True, slots=True)
class OffsetPlan:
    """A deadline plan whose clocks are fixed offsets from their start (SLA calendars open around the clock).

    Callable like any plan; the ingest path also reads ``offsets`` to write a batch's deadlines with one
    INSERT ... SELECT per kind instead of a row per mention (``make bench``: ingest).
    """

    #: kind -> (due offset, warning offset) in seconds; a kind not here gets no deadline.
    offsets: tuple[tuple[DeadlineKind, int, int], ...]

    def __call__(self, kind: DeadlineKind, started_at: int) -> tuple[int, int] | None:
        for planned_kind, due, warn in self.offsets:
            if planned_kind is kind:
                return started_at + due, started_at + warn
        return None


class ReplyState(StrEnum):
    DRAFT = "draft"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class Health(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"  # a poll failed; retrying with backoff (sync_state.next_attempt_at says when)
    AUTH_EXPIRED = "auth_expired"
    RATE_LIMITED = "rate_limited"
    FAILING = "failing"


@dataclass(frozen=True, slots=True)
class AccountRow:
    id: int
    kind: str
    handle: str
    base_url: str
    display_name: str
    health: Health
    health_reason: str
    enabled: bool
    is_sandbox: bool
    created_at: int


@dataclass(frozen=True, slots=True)
class SyncStateRow:
    account_id: int
    cursor: dict[str, object] | None
    last_success_at: int | None
    next_attempt_at: int | None
    consecutive_failures: int
    last_error: str


@dataclass(frozen=True, slots=True)
class NewMention:
    """An inbound message ready to store; ids and thread linkage are resolved by the repository."""

    account_id: int
    external_id: str
    author_external_id: str
    author_handle: str
    author_name: str
    text: str
    url: str
    posted_at: int
    kind: MentionKind
    visibility: str
    parent_external_id: str | None
    raw_json: str


@dataclass(frozen=True, slots=True)
class MentionRow:
    id: int
    account_id: int
    external_id: str
    thread_key: str
    head_id: int | None
    parent_external_id: str | None
    customer_id: int | None
    author_handle: str
    author_name: str
    text: str
    url: str
    posted_at: int
    fetched_at: int
    kind: MentionKind
    visibility: str
    status: MentionStatus
    priority: int
    tags: str
    is_first_contact: bool
    due_at: int | None
    warn_at: int | None
    last_message_at: int
    message_count: int
    channel: str
    #: The customer deleted this message on the channel (epoch seconds), else None (issue 6).
    upstream_deleted_at: int | None = None


@dataclass(frozen=True, slots=True)
class DeadlineRow:
    id: int
    mention_id: int
    kind: DeadlineKind
    started_at: int
    due_at: int
    warn_at: int
    met_at: int | None
    paused_at: int | None
    breached_at: int | None
    cancelled_at: int | None


@dataclass(frozen=True, slots=True)
class ReplyRow:
    id: int
    mention_id: int
    text: str
    visibility: str
    idempotency_key: str
    state: ReplyState
    attempts: int
    external_id: str | None
    error: str
    created_at: int
    sent_at: int | None
    purpose: str = "reply"
    template_id: int | None = None
    queued_at: int | None = None
    next_attempt_at: int | None = None
    url: str = ""
    target_id: int | None = None  # the message answered (the newest customer message when queued)
    corrects_id: int | None = None  # purpose "correction": the sent reply this one corrects
    hold_reason: str = ""  # non-empty: queued but held until the agent confirms (freshness)
    seen_at: int | None = None  # when the agent last saw the thread before writing this reply
    holding_until: int | None = None  # purpose "holding": when the promised follow-up is due


@dataclass(frozen=True, slots=True)
class EventRow:
    id: int
    at: int
    actor: str
    mention_id: int | None
    kind: str
    data: str


@dataclass(frozen=True, slots=True)
class UpsertResult:
    """What one stored batch changed: new queue items, follow-ups that joined a thread, duplicates."""

    inserted_ids: tuple[int, ...]
    new_heads: tuple[int, ...]
    follow_up_heads: tuple[int, ...]
    duplicates: int
