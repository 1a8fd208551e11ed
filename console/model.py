"""Domain value types for the layers above (widgets never import storage directly, STYLE B1)."""

from __future__ import annotations

import json

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
    "event_data",
]


def event_data(data: str) -> dict[str, object]:
    """An event's ``data`` column as a dict: empty when there is none, it is not JSON, or not a JSON object."""
    try:
        value = json.loads(data) if data else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
