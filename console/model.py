"""Domain value types for the layers above (widgets never import storage directly, STYLE B1)."""

from __future__ import annotations

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
    "UpsertResult",
]
