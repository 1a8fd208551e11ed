"""Domain value types for the layers above (widgets never import storage directly, STYLE B1)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from console.channels.base import Backfill
from storage.rows import (
    OPEN_STATUSES,
    AccountRow,
    DeadlineKind,
    DeadlineRow,
    EventRow,
    Health,
    MentionKind,
    MentionRow,
    MentionStatus,
    ReplyState,
    UpsertResult,
)
from storage.triage import split_tags

__all__ = [
    "OPEN_STATUSES",
    "AccountRow",
    "DeadlineKind",
    "DeadlineRow",
    "EventRow",
    "Health",
    "MentionKind",
    "MentionRow",
    "MentionStatus",
    "ReplyState",
    "SyncReport",
    "UpsertResult",
    "event_data",
    "split_tags",
]


def event_data(data: str) -> dict[str, object]:
    """An event's ``data`` column as a dict: empty when there is none, it is not JSON, or not a JSON object."""
    try:
        value = json.loads(data) if data else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What one poll of one account did; listeners (status bar, health strip, demo log, CLI) read these."""

    account_id: int
    at: int
    fetched: int = 0
    stored: int = 0
    duplicates: int = 0
    new_items: tuple[int, ...] = ()
    follow_ups: tuple[int, ...] = ()
    error: str | None = None
    health: Health = Health.OK
    next_attempt_at: int | None = None
    #: Malformed items kept aside (raw, with the parse error) in this poll instead of failing the batch.
    quarantined: int = 0
    #: The channel's remaining request budget was low, so the next poll waits longer than the interval.
    throttled: bool = False
    #: The host could not be reached at all (no connection, or it closed without answering).
    unreachable: bool = False
    #: Set while no account's channel can be reached: since when (epoch seconds).
    offline_since: int | None = None
    #: A backlog is being caught up: more follows at once (progress for the status bar).
    catching_up: bool = False
    #: Messages stored so far by the current catch-up, this batch included.
    caught_up: int = 0
    #: A first sync reading back to its horizon: how far it got, whether it is done and reached the horizon.
    backfill: Backfill | None = None

    @property
    def ok(self) -> bool:
        return self.error is None
