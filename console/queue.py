"""The queue as the widgets see it: ordered ids from SQL, rows in batches, threads, deadlines, history."""

from __future__ import annotations

from collections.abc import Iterable

from console.ports import Clock
from storage.events import EventRepo
from storage.mentions import MentionRepo, QueueView
from storage.rows import DeadlineRow, EventRow, MentionRow

__all__ = ["QueueService", "QueueView"]


class QueueService:
    """A thin facade so that widgets depend on console only; sorting and filtering stay in SQL (STYLE B5)."""

    def __init__(self, mentions: MentionRepo, events: EventRepo, clock: Clock) -> None:
        self._mentions = mentions
        self._events = events
        self.clock = clock

    def queue_ids(self, view: QueueView = QueueView.OPEN) -> list[int]:
        return self._mentions.queue_ids(view)

    def rows_by_id(self, ids: Iterable[int]) -> dict[int, MentionRow]:
        return self._mentions.rows_by_id(ids)

    def thread(self, head_id: int) -> list[MentionRow]:
        return self._mentions.thread(head_id)

    def deadlines(self, mention_id: int) -> list[DeadlineRow]:
        return self._mentions.deadlines(mention_id)

    def history(self, mention_id: int) -> list[EventRow]:
        return self._events.for_mention(mention_id)

    def open_count(self) -> int:
        return self._mentions.count(QueueView.OPEN)

    def record_breaches(self) -> list[int]:
        """Log every deadline that has just passed as a breach (once); returns the affected mention ids."""
        return self._mentions.mark_breaches(int(self.clock.now()))
