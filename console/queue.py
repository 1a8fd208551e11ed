"""The queue as the widgets see it: ordered ids from SQL, rows in batches, threads, deadlines, history."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime

from console.ports import Clock
from storage.events import EventRepo
from storage.mentions import MentionRepo, QueueView
from storage.queue_queries import AlertItem, QueueQuery, QueueQueryRepo, SortColumn, search_terms
from storage.rows import DeadlineRow, EventRow, MentionRow, ReplyState

__all__ = [
    "AlertItem",
    "QueueQuery",
    "QueueService",
    "QueueView",
    "SortColumn",
    "local_day_start",
    "search_terms",
]

#: ``notes(head_id, deadlines, now) -> {deadline id: note}`` (``SlaEngine.notes``): why a clock is not running.
DeadlineNotes = Callable[[int, Sequence[DeadlineRow], float], dict[int, str]]

#: Filtered counts stop here, so that a count never walks a million rows ("10,000+").
COUNT_CAP = 10_000


def local_day_start(now: float) -> int:
    """Local midnight of the day ``now`` falls in, as epoch seconds (the "Resolved today" view)."""
    local = datetime.fromtimestamp(now).astimezone()
    return int(local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp())


class QueueService:
    """A thin facade so that widgets depend on console only; sorting and filtering stay in SQL (STYLE B5)."""

    def __init__(
        self,
        mentions: MentionRepo,
        events: EventRepo,
        clock: Clock,
        *,
        queries: QueueQueryRepo | None = None,
        deadline_notes: DeadlineNotes | None = None,
    ) -> None:
        self._mentions = mentions
        self._deadline_notes = deadline_notes
        self._events = events
        self._queries = queries if queries is not None else QueueQueryRepo(mentions.db)
        self.clock = clock

    def queue_ids(
        self, query: QueueQuery | QueueView = QueueView.OPEN, *, limit: int | None = None, offset: int = 0
    ) -> list[int]:
        """Ids of the items of a view (with its filters and search), in the view's order; a page with ``limit``."""
        if isinstance(query, QueueView):
            query = QueueQuery(view=query)
        now = self.clock.now()
        return self._queries.queue_ids(query, now=int(now), day_start=local_day_start(now), limit=limit, offset=offset)

    def count(self, query: QueueQuery, *, cap: int | None = COUNT_CAP) -> int:
        """How many items the query shows, counting at most ``cap``."""
        now = self.clock.now()
        return self._queries.count(query, now=int(now), day_start=local_day_start(now), cap=cap)

    def rows_by_id(self, ids: Iterable[int]) -> dict[int, MentionRow]:
        return self._mentions.rows_by_id(ids)

    def reply_states(self, ids: Sequence[int]) -> dict[int, ReplyState]:
        """The latest unsent reply's state per item (draft, queued, sending, failed)."""
        return self._queries.reply_states(ids)

    def answered(self, ids: Sequence[int]) -> set[int]:
        """The items a sent reply has answered (the NEW badge is for unanswered first contacts)."""
        return self._queries.answered(ids)

    def thread(self, head_id: int) -> list[MentionRow]:
        return self._mentions.thread(head_id)

    def deadlines(self, mention_id: int) -> list[DeadlineRow]:
        return self._mentions.deadlines(mention_id)

    def deadline_notes(self, head_id: int, deadlines: Sequence[DeadlineRow], now: float) -> dict[int, str]:
        """Why a running deadline's clock stands still, by deadline id (empty without an SLA engine).

        ``"42:00 left when paused"`` while waiting on the customer; ``"outside business hours · resumes Mon 09:00"``.
        """
        if self._deadline_notes is None or not deadlines:
            return {}
        return self._deadline_notes(head_id, deadlines, now)

    def history(self, mention_id: int) -> list[EventRow]:
        return self._events.for_mention(mention_id)

    def other_conversations(self, mention_id: int) -> list[tuple[int, int, str, str]]:
        """The same customer's other items, newest first: ``(id, posted_at, status, text)``."""
        return self._queries.other_conversations(mention_id)

    def last_survey_answer(self, mention_id: int) -> tuple[int, int | None, str] | None:
        """The customer's latest Net Easy answer ``(answered_at, score, text)``, or None."""
        return self._queries.last_survey_answer(mention_id)

    def known_tags(self, prefix: str = "") -> list[str]:
        return self._queries.known_tags(prefix)

    def accounts(self) -> list[tuple[int, str, str]]:
        """``(id, channel kind, handle)`` of every account."""
        return self._queries.accounts()

    def open_count(self) -> int:
        return self._mentions.count(QueueView.OPEN)

    def near_breach_count(self) -> int:
        return self._queries.near_breach_count(int(self.clock.now()))

    def deadline_overview(self, now: float | None = None) -> tuple[int, AlertItem | None]:
        """The whole open queue at ``now`` (default: the clock), never a filtered view: ``(items past due, the
        next deadline or None)``; the status bar's alerts speak of this, whatever the agent searches."""
        return self._queries.deadline_overview(int(self.clock.now() if now is None else now))

    def entered_warning(self, since: int, until: int) -> list[AlertItem]:
        return self._queries.entered_warning(since, until)

    def entered_breach(self, since: int, until: int) -> list[AlertItem]:
        return self._queries.entered_breach(since, until)

    def record_breaches(self) -> list[int]:
        """Log every deadline that has just passed as a breach (once); returns the affected mention ids."""
        return self._mentions.mark_breaches(int(self.clock.now()))
