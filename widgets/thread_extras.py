"""Conversation pane extras: channel messages fetched for the thread, upstream edits and deletions, channel notes."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QColor, QFont, QTextBlockFormat, QTextCharFormat, QTextCursor

from console.sla.bands import format_countdown
from console.sync.threads import ContextMessage, FetchResult, MessageMarks
from widgets.dark import text as theme_text
from widgets.theme import SECONDARY_TEXT, channel_label, local_time

__all__ = [
    "ThreadExtrasSource",
    "ThreadFetcher",
    "channel_note",
    "context_meta",
    "insert_marks",
    "marks_meta",
]

log = logging.getLogger(__name__)

DELETED_COLOUR = "#B3261E"
EDITED_COLOUR = "#7A4B00"


class QuotaLike(Protocol):
    @property
    def used(self) -> int: ...

    @property
    def limit(self) -> int: ...

    @property
    def remaining(self) -> int: ...


class ThreadExtrasSource(Protocol):
    """What the pane reads besides the stored thread (console.sync.threads.ThreadService)."""

    def context(self, head_id: int) -> list[ContextMessage]: ...

    def marks(self, head_id: int) -> dict[int, MessageMarks]: ...

    def links(self, head_id: int) -> dict[int, list[tuple[str, str]]]: ...

    def window_closes_at(self, head_id: int) -> int | None: ...

    def quota(self, head_id: int) -> QuotaLike | None: ...

    def needs_fetch(self, head_id: int) -> bool: ...

    def is_fetching(self, head_id: int) -> bool: ...

    async def fetch(self, head_id: int) -> FetchResult: ...


def channel_note(channel: str, window_closes_at: int | None, quota: QuotaLike | None, now: float) -> str:
    """``Messenger reply window: 3:12:05 left`` / ``YouTube quota today: 9,450 of 10,000 units left``, or ""."""
    parts = []
    if window_closes_at is not None:
        if now < window_closes_at:
            parts.append(
                f"Messenger reply window: {format_countdown(window_closes_at, now)} left "
                f"(closes {local_time(window_closes_at, now=now)})"
            )
        else:
            parts.append(
                f"Messenger reply window closed at {local_time(window_closes_at, now=now)}: "
                "only a human-agent tagged message can be sent"
            )
    if quota is not None:
        parts.append(
            f"{channel_label(channel)} quota today: {quota.remaining:,} of {quota.limit:,} units left "
            f"(a reply costs 50)"
        )
    return " · ".join(parts)


def context_meta(message: ContextMessage, now: float) -> str:
    """The meta line of a message read from the channel (not stored here)."""
    return f"  @{message.author_handle}  ·  {local_time(message.posted_at, now=now)}  ·  from the channel"


def marks_meta(marks: MessageMarks, now: float) -> str:
    """``Deleted upstream 14:05`` / ``Edited upstream (2×)`` for a message's meta line, or ""."""
    parts = []
    if marks.deleted_at is not None:
        parts.append(f"Deleted upstream {local_time(marks.deleted_at, now=now)}")
    if marks.edits:
        count = f" ({len(marks.edits)}×)" if len(marks.edits) > 1 else ""
        parts.append(f"Edited upstream{count}")
    return " · ".join(parts)


def insert_marks(cursor: QTextCursor, marks: MessageMarks | None, now: float, *, after_body: bool) -> None:
    """The meta-line note (``after_body=False``) or the edit history under the text (``after_body=True``)."""
    if marks is None:
        return
    if not after_body:
        note = marks_meta(marks, now)
        if note:
            fmt = QTextCharFormat()
            fmt.setForeground(theme_text(DELETED_COLOUR if marks.deleted_at is not None else EDITED_COLOUR))
            fmt.setFontWeight(QFont.Weight.DemiBold)
            cursor.insertText("  ·  ", fmt)
            cursor.insertText(note, fmt)
        return
    if not marks.edits:
        return
    meta = QTextCharFormat()
    meta.setForeground(QColor(SECONDARY_TEXT))
    old = QTextCharFormat(meta)
    old.setFontItalic(True)
    for edited_at, previous in marks.edits:
        block = QTextBlockFormat()
        block.setTopMargin(6)
        cursor.insertBlock(block, meta)
        cursor.insertText(f"Before the edit seen {local_time(edited_at, now=now)}: ", meta)
        cursor.insertText(previous, old)


class ThreadFetcher(QObject):
    """Runs ``ThreadService.fetch`` as tasks on the qasync loop (never blocking the GUI) and reports the outcome."""

    #: (head id, sentence for the agent; "" when all went well)
    finished = Signal(int, str)

    def __init__(self, source: ThreadExtrasSource, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._source = source
        self._tasks: set[asyncio.Task[None]] = set()
        self._loopless = False  # no asyncio loop ran when one was needed: do not wait for one again

    def ensure(self, head_id: int) -> bool:
        """Start fetching the item's thread when it is needed; returns whether a fetch runs now."""
        if self._source.is_fetching(head_id):
            return True
        if not self._source.needs_fetch(head_id):
            return False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            if self._loopless:
                return False
            # Not yet inside the qasync loop (the window's first item is shown before it starts): try again
            # from the event loop once it runs; with no loop at all the pane shows what is stored.
            QTimer.singleShot(0, self, lambda: self._start_later(head_id))
            return True
        self._start(loop, head_id)
        return True

    def _start(self, loop: asyncio.AbstractEventLoop, head_id: int) -> None:
        task = loop.create_task(self._run(head_id), name=f"fetch-thread-{head_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _start_later(self, head_id: int) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._loopless = True
            self.finished.emit(head_id, "")  # no event loop: nothing is fetched
            return
        if self._source.needs_fetch(head_id):
            self._start(loop, head_id)
        else:
            self.finished.emit(head_id, "")

    @property
    def running(self) -> int:
        return len(self._tasks)

    def cancel(self) -> None:
        """Stop the fetches under way (the window closes: the database and the clients go next; STYLE B2)."""
        for task in list(self._tasks):
            task.cancel()

    async def _run(self, head_id: int) -> None:
        result = await self._source.fetch(head_id)
        log.debug("thread fetch for %s: %s (%d added)", head_id, result.outcome, result.added)
        try:
            self.finished.emit(head_id, result.message)
        except RuntimeError:  # the pane was closed while the channel answered: nothing to show
            log.debug("thread fetch for %s finished after its pane closed", head_id)
