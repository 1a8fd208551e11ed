"""The conversation pane: the selected item's thread as plain text, its deadlines and its event history."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Protocol, runtime_checkable

from PySide6.QtCore import Qt, QUrl, Signal, Slot
from PySide6.QtGui import (
    QColor,
    QDesktopServices,
    QFont,
    QTextCharFormat,
    QTextCursor,
)
from PySide6.QtWidgets import (
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from console.model import DeadlineKind, DeadlineRow, EventRow, MentionKind, MentionRow, event_data
from console.ports import Clock
from console.replies.our_replies import OurReply, ReplyRow, our_replies
from console.sla.bands import Band, band, format_countdown
from console.sync.manual import MANUAL_ACTOR
from console.sync.threads import ContextMessage
from console.triage import PRIORITY_LABELS, Priority
from console.wording import team_action
from widgets.conversation_extras import LinkGuard, insert_card, insert_card_body, triage_detail
from widgets.dark import text as theme_text
from widgets.theme import DIRECT_PILL, SECONDARY_TEXT, channel_label, local_time
from widgets.thread_extras import (
    QuotaLike,
    ThreadExtrasSource,
    ThreadFetcher,
    channel_note,
    context_meta,
    insert_marks,
)
from widgets.thread_replies import insert_our_reply

EMPTY_TEXT = "Select an item to see the conversation"
SAFE_SCHEMES = frozenset({"http", "https"})

_KIND_LABELS: dict[DeadlineKind, str] = {
    DeadlineKind.FIRST_RESPONSE: "First response",
    DeadlineKind.NEXT_RESPONSE: "Next response",
    DeadlineKind.FOLLOW_UP: "Follow-up commitment",
    DeadlineKind.RESOLUTION: "Resolution",
}

_EVENT_LABELS: dict[str, str] = {
    "received": "Received",
    "follow_up": "Customer follow-up",
    "reopened": "Reopened by the customer",
    "breached": "SLA breached",
    "survey_sent": "Net Easy survey sent",
    "survey_answered": "Net Easy answer",
    "reply_queued": "Reply queued",
    "reply_sent": "Reply sent",
    "reply_failed": "Reply not sent",
    "reply_corrected": "Reply corrected",
    "edited_upstream": "Edited by the customer on the channel",
    "deleted_upstream": "Deleted by the customer on the channel",
}


class DeadlineState(StrEnum):
    RUNNING = "running"
    WARNING = "warning"
    BREACHED = "breached"
    MET = "met"
    PAUSED = "paused"
    CANCELLED = "cancelled"


class ConversationSource(Protocol):
    """What the pane reads (QueueService)."""

    def thread(self, head_id: int) -> list[MentionRow]: ...

    def deadlines(self, mention_id: int) -> list[DeadlineRow]: ...

    def history(self, mention_id: int) -> list[EventRow]: ...


@runtime_checkable
class DeadlineNotesSource(Protocol):
    """Optional: why a running deadline's clock stands still (QueueService.deadline_notes, from the SLA engine)."""

    def deadline_notes(self, head_id: int, deadlines: list[DeadlineRow], now: float) -> dict[int, str]: ...


#: The thread never gets fewer lines than this (the customer's message must stay readable).
THREAD_MIN_LINES = 5

#: Notes ("resumes Mon 09:00") change only at calendar boundaries: re-read them this often while ticking.
NOTES_REFRESH_SECONDS = 30.0


def deadline_state(deadline: DeadlineRow, now: float) -> DeadlineState:
    if deadline.cancelled_at is not None:
        return DeadlineState.CANCELLED
    if deadline.met_at is not None:
        return DeadlineState.MET
    if deadline.paused_at is not None:
        return DeadlineState.PAUSED
    match band(deadline.due_at, deadline.warn_at, now):
        case Band.BREACHED:
            return DeadlineState.BREACHED
        case Band.WARNING:
            return DeadlineState.WARNING
        case _:
            return DeadlineState.RUNNING


def deadline_status(deadline: DeadlineRow, now: float) -> str:
    """``"Running · 29:59 left"``, ``"Breached · +04:12"``, ``"Met at 14:05"``..."""
    state = deadline_state(deadline, now)
    match state:
        case DeadlineState.CANCELLED:
            return "Cancelled"
        case DeadlineState.MET:
            met_at = deadline.met_at if deadline.met_at is not None else deadline.due_at
            late = " (late)" if met_at > deadline.due_at else ""
            return f"Met at {local_time(met_at, now=now)}{late}"
        case DeadlineState.PAUSED:
            return "Paused (waiting on customer)"
        case DeadlineState.BREACHED:
            return f"Breached · {format_countdown(deadline.due_at, now)}"
        case _:
            return f"Running · {format_countdown(deadline.due_at, now)} left"


def event_text(event: EventRow, now: float) -> str:
    data = event_data(event.data)
    team = team_action(event.kind, data)  # claims, reassignments, hand-overs, send anyway (issue 23 audit)
    if team is not None:
        return f"{local_time(event.at, now=now)}   {team} · {event.actor}"
    label = _EVENT_LABELS.get(event.kind, event.kind.replace("_", " ").capitalize())
    if event.kind == "reply_failed" and data.get("error") == "withdrawn":
        label = "Reply withdrawn"  # the agent took it back: nothing failed (issue 19 §6)
    deadline = data.get("deadline")
    if isinstance(deadline, str):
        try:
            label += f": {_KIND_LABELS[DeadlineKind(deadline)].lower()}"
        except ValueError:
            label += f": {deadline}"
    label += triage_detail(event.kind, data)  # status, priority, tags (issue 7)
    if event.kind == "survey_answered":
        score = data.get("score")
        label += f": {score}" if isinstance(score, int) else (" to score by hand" if data.get("needs_review") else "")
    if event.kind == "reply_corrected":
        label += {"edit": ": edited in place", "follow_up": ": posted as a follow-up"}.get(str(data.get("mode")), "")
    if event.actor == MANUAL_ACTOR:  # a post the agent pasted in, not a sync (issue 19)
        if event.kind == "received":
            return f"{local_time(event.at, now=now)}   Added by hand"
        return f"{local_time(event.at, now=now)}   {label} · added by hand"
    return f"{local_time(event.at, now=now)}   {label} · {event.actor}"


def priority_text(priority: int) -> str:
    """``"Urgent"``, ``"Normal"``, ``"Low"`` (the triage labels); an unknown level shows as its number."""
    try:
        return PRIORITY_LABELS[Priority(priority)]
    except ValueError:
        return str(priority)


def is_safe_url(url: str) -> bool:
    """Only web links open in the browser: never ``file:``, ``javascript:`` or custom schemes."""
    parsed = QUrl(url, QUrl.ParsingMode.StrictMode)
    return parsed.isValid() and parsed.scheme().lower() in SAFE_SCHEMES and bool(parsed.host())


class ConversationPane(QWidget):
    """Read-only: customer text is plain text and is never rendered as HTML; remote content never loads."""

    #: The "Open on the channel" button opened this URL.
    url_opened = Signal(str)

    def __init__(
        self,
        source: ConversationSource,
        clock: Clock,
        parent: QWidget | None = None,
        *,
        open_url: Callable[[QUrl], object] | None = None,
        extras: ThreadExtrasSource | None = None,
        replies: Callable[[int], Sequence[ReplyRow]] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("conversationPane")
        self._source = source
        self._replies_of = replies  # our own replies, shown inline in the thread (Outbox.replies)
        # The whole thread from the channel, upstream edits/deletions, channel notes (issues 6 and 7).
        self._extras = extras
        self._fetcher = ThreadFetcher(extras, self) if extras is not None else None
        if self._fetcher is not None:
            self._fetcher.finished.connect(self._on_fetcher_finished)
        self._fetch_message = ""
        self._channel = ""
        self._window_closes_at: int | None = None
        self._quota: QuotaLike | None = None
        self._clock = clock
        self._open_url: Callable[[QUrl], object] = open_url or QDesktopServices.openUrl
        self._mention_id: int | None = None
        self._url = ""
        self._deadlines: list[DeadlineRow] = []
        self._deadline_labels: list[QLabel] = []
        self._notes: dict[int, str] = {}  # deadline id -> "resumes Mon 09:00", "42:00 left when paused"
        self._note_labels: list[QLabel] = []  # one per deadline, under its row; hidden without a note
        self._notes_at = 0.0

        self._stack = QStackedWidget(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._stack)

        self._empty = QLabel(EMPTY_TEXT)
        self._empty.setObjectName("emptyState")
        self._empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._empty.setTextFormat(Qt.TextFormat.PlainText)
        self._stack.addWidget(self._empty)

        self._page = QWidget()
        self._page.setObjectName("conversationPage")
        self._stack.addWidget(self._page)
        content = QVBoxLayout(self._page)
        content.setContentsMargins(16, 14, 16, 12)
        content.setSpacing(10)

        header = QHBoxLayout()
        titles = QVBoxLayout()
        titles.setSpacing(2)
        self._title = self._plain_label("conversationTitle")
        self._subtitle = self._plain_label("conversationSubtitle")
        # Long names and handles wrap instead of widening the pane (and squeezing the queue beside it).
        for label in (self._title, self._subtitle):
            label.setWordWrap(True)
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        titles.addWidget(self._title)
        titles.addWidget(self._subtitle)
        header.addLayout(titles, 1)
        self._open_button = QPushButton("Open on the channel")
        self._open_button.setObjectName("openOnChannel")
        self._open_button.setAccessibleDescription("Opens this item on its channel in your web browser")
        self._open_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self._open_button.clicked.connect(self._on_open_button_clicked)
        header.addWidget(self._open_button, 0, Qt.AlignmentFlag.AlignTop)
        content.addLayout(header)
        self._note = self._plain_label("threadNote")  # fetching / offline, Messenger window, YouTube quota
        self._note.setWordWrap(True)
        self._note.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._note.hide()
        self._note.setAccessibleName("Conversation note")
        content.addWidget(self._note)

        self._deadline_box = QFrame()
        self._deadline_box.setObjectName("deadlineBox")
        self._deadline_box.setAccessibleName("Deadlines")
        self._deadline_grid = QGridLayout(self._deadline_box)
        self._deadline_grid.setContentsMargins(12, 8, 12, 8)
        self._deadline_grid.setHorizontalSpacing(16)
        self._deadline_grid.setVerticalSpacing(4)
        self._deadline_grid.setColumnStretch(2, 1)
        content.addWidget(self._deadline_box)

        self._thread = QTextBrowser()
        self._thread.setObjectName("threadView")
        self._thread.setAccessibleName("Conversation thread")
        self._thread.setAccessibleDescription("The messages of this item, oldest first, as plain text")
        self._thread.setOpenLinks(False)
        self._thread.setOpenExternalLinks(False)
        # Links: a hover shows the real target, a click opens only http(s) in the system browser (issue 7).
        self._links = LinkGuard(self._thread, self._open_url, is_safe_url)
        self._thread.highlighted.connect(self._on_thread_highlighted)
        self._thread.anchorClicked.connect(self._on_thread_anchor_clicked)
        self._thread.setReadOnly(True)
        self._thread.setUndoRedoEnabled(False)
        self._thread.setFrameShape(QFrame.Shape.NoFrame)
        self._thread.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        # The customer's message keeps room for a few lines whatever opens in the composer below (issue 19 §10);
        # when the window is too short for that, the pane scrolls (MainWindow puts it in a scroll area).
        self._thread.setMinimumHeight(THREAD_MIN_LINES * self._thread.fontMetrics().lineSpacing() + 24)
        content.addWidget(self._thread, 1)

        history_title = self._history_title = self._plain_label("sectionTitle")
        history_title.setText("History")
        self._content = content
        content.addWidget(history_title)
        self._history = QListWidget()
        self._history.setObjectName("historyList")
        self._history.setAccessibleName("Item history")
        # Four events show (the list scrolls); the customer's thread above takes the rest of the height.
        self._history.setFixedHeight(4 * max(self._history.fontMetrics().lineSpacing(), 20) + 8)
        self._history.setSelectionMode(QListWidget.SelectionMode.NoSelection)
        self._history.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        content.addWidget(self._history)

        self._stack.setCurrentWidget(self._empty)

    # ------------------------------------------------------------------ public API
    @property
    def mention_id(self) -> int | None:
        return self._mention_id

    def page(self) -> QWidget:
        """The item's page (header, deadlines, thread, sections, history), for measuring; hidden when empty."""
        return self._page

    def add_banner(self, widget: QWidget) -> None:
        """Show ``widget`` right under the header, above the deadlines (e.g. team mode's "Sam is replying")."""
        self._content.insertWidget(self._content.indexOf(self._deadline_box), widget)

    def add_section(self, widget: QWidget) -> None:
        """Show ``widget`` between the thread and the history (e.g. the customer panel)."""
        self._content.insertWidget(self._content.indexOf(self._history_title), widget)

    def hovered_link(self) -> str:
        """The link target the pointer is on (shown in a tooltip before any click), or ""."""
        return self._links.hovered

    def is_empty(self) -> bool:
        return self._stack.currentWidget() is self._empty

    def thread_text(self) -> str:
        return self._thread.toPlainText()

    def deadline_texts(self) -> list[str]:
        return [
            f"{label.text()} · {note.text()}" if note.text() else label.text()
            for label, note in zip(self._deadline_labels, self._note_labels, strict=True)
        ]

    def header_text(self) -> str:
        """The header as read: the customer's name, then the line under it (handle, channel, kind, priority)."""
        return f"{self._title.text()}\n{self._subtitle.text()}" if not self.is_empty() else ""

    def history_texts(self) -> list[str]:
        return [self._history.item(i).text() for i in range(self._history.count())]

    def note_text(self) -> str:
        """The line under the header (fetching the thread, offline, Messenger window, quota), or ""."""
        return self._note.text() if not self._note.isHidden() else ""

    def open_button(self) -> QPushButton:
        return self._open_button

    def cancel_fetches(self) -> None:
        """Stop fetching threads from the channel (the window is closing)."""
        if self._fetcher is not None:
            self._fetcher.cancel()

    def focus_thread(self) -> None:
        if not self.is_empty():
            self._thread.setFocus(Qt.FocusReason.OtherFocusReason)

    @Slot(object)
    def show_mention(self, mention_id: int | None) -> None:
        """Show this queue item (a thread head), or the empty state for None."""
        if mention_id != self._mention_id:
            self._fetch_message = ""
        self._mention_id = mention_id
        self.refresh()

    @Slot()
    def refresh(self) -> None:
        """Re-read the current item (new follow-ups, deadlines met, events)."""
        thread = [] if self._mention_id is None else self._source.thread(self._mention_id)
        if not thread or self._mention_id is None:
            self._mention_id = None
            self._url = ""
            # The deadlines, their labels and notes go together: the countdown zips them (issue 19 §1).
            self._show_deadlines([], self._clock.now())
            self._stack.setCurrentWidget(self._empty)
            return
        now = self._clock.now()
        head = thread[0]
        self._show_header(head, len(thread))
        self._show_thread(thread, now)
        self._show_deadlines(self._source.deadlines(self._mention_id), now)
        self._history.clear()
        self._history.addItems([event_text(e, now) for e in self._source.history(self._mention_id)])
        self._stack.setCurrentWidget(self._page)
        self._channel = head.channel
        extras = self._extras
        self._window_closes_at = extras.window_closes_at(self._mention_id) if extras is not None else None
        self._quota = extras.quota(self._mention_id) if extras is not None else None
        if self._fetcher is not None and self._fetcher.ensure(self._mention_id):
            self._fetch_message = f"Fetching the whole conversation from {channel_label(head.channel)}…"
        self._update_note(now)

    @Slot(float)
    def on_tick(self, now: float) -> None:
        """Update the deadline countdowns (driven by the queue view's one timer)."""
        if self._deadlines and now - self._notes_at >= NOTES_REFRESH_SECONDS:
            self._read_notes(now)
        for deadline, label, note in zip(self._deadlines, self._deadline_labels, self._note_labels, strict=True):
            self._set_deadline_label(label, deadline, now)
            self._set_note(note, self._notes.get(deadline.id, ""))
        if self._window_closes_at is not None:
            self._update_note(now)  # the Messenger window counts down

    def _update_note(self, now: float) -> None:
        note = channel_note(self._channel, self._window_closes_at, self._quota, now) if self._mention_id else ""
        text = " · ".join(part for part in (self._fetch_message, note) if part)
        if text != self._note.text():
            self._note.setText(text)
        self._note.setVisible(bool(text))

    # ------------------------------------------------------------------ building
    def _plain_label(self, name: str) -> QLabel:
        label = QLabel()
        label.setObjectName(name)
        label.setTextFormat(Qt.TextFormat.PlainText)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        return label

    def _show_header(self, head: MentionRow, messages: int) -> None:
        name = head.author_name.strip() or head.author_handle
        self._title.setText(name)
        parts = [f"@{head.author_handle}", channel_label(head.channel)]
        parts.append("Direct message" if head.kind is MentionKind.DIRECT else "Public mention")
        if messages > 1:
            parts.append(f"{messages} messages")
        if head.is_first_contact:
            parts.append("First contact")
        parts.append(f"Priority: {priority_text(head.priority)}")  # issue 19 §16: shown nowhere before
        self._subtitle.setText(" · ".join(parts))
        self._url = head.url
        safe = is_safe_url(head.url)
        self._open_button.setEnabled(safe)
        self._open_button.setToolTip(head.url if safe else "This item has no web link")

    def _show_thread(self, thread: list[MentionRow], now: float) -> None:
        """Build the document with a cursor: text goes in as text, so markup in it shows literally."""
        self._thread.clear()
        document = self._thread.document()
        document.setDocumentMargin(4)
        cursor = QTextCursor(document)
        base = self._thread.font()
        name_format = QTextCharFormat()
        name_format.setFontWeight(QFont.Weight.DemiBold)
        meta_format = QTextCharFormat()
        meta_format.setForeground(QColor(SECONDARY_TEXT))
        direct_format = QTextCharFormat()
        direct_format.setForeground(theme_text(DIRECT_PILL.text))
        direct_format.setFontWeight(QFont.Weight.DemiBold)
        body_format = QTextCharFormat()
        body_format.setFont(base)
        head_id = thread[0].id
        extras = self._extras
        marks = extras.marks(head_id) if extras is not None else {}
        links = extras.links(head_id) if extras is not None else {}  # shortened links' real targets
        ours = self._our_replies(head_id)
        posted = {r.external_id for r in ours if r.external_id}  # shown once, as ours
        entries: list[MentionRow | ContextMessage | OurReply] = [*thread, *(extras.context(head_id) if extras else [])]
        entries = [m for m in entries if isinstance(m, OurReply) or m.external_id not in posted] + list(ours)
        entries.sort(key=lambda m: (m.posted_at, 2 if isinstance(m, OurReply) else int(isinstance(m, MentionRow))))
        for position, message in enumerate(entries):
            if isinstance(message, OurReply):
                insert_our_reply(cursor, message, now, base=base, first=position == 0)
                continue
            if isinstance(message, ContextMessage):
                self._insert_context(cursor, message, position, now, name_format, meta_format, body_format)
                continue
            direct = message.kind is MentionKind.DIRECT
            insert_card(cursor, first=position == 0, border="#E1E4E8", background="#F8F5FE" if direct else "#FFFFFF")
            cursor.insertText(message.author_name.strip() or message.author_handle, name_format)
            cursor.insertText(f"  @{message.author_handle}  ·  {local_time(message.posted_at, now=now)}", meta_format)
            if direct:
                cursor.insertText("  ·  ", meta_format)
                cursor.insertText("Direct message", direct_format)
            insert_marks(cursor, marks.get(message.id), now, after_body=False)
            insert_card_body(cursor, message.text, body_format, links.get(message.id, ()))
            insert_marks(cursor, marks.get(message.id), now, after_body=True)
        self._thread.moveCursor(QTextCursor.MoveOperation.Start)

    def _our_replies(self, head_id: int) -> list[OurReply]:
        if self._replies_of is None:
            return []
        return our_replies(self._replies_of(head_id), self._source.history(head_id))

    @staticmethod
    def _insert_context(
        cursor: QTextCursor,
        message: ContextMessage,
        position: int,
        now: float,
        name_format: QTextCharFormat,
        meta_format: QTextCharFormat,
        body_format: QTextCharFormat,
    ) -> None:
        """A message read from the channel (not in the queue): a grey card, labelled "from the channel"."""
        insert_card(cursor, first=position == 0, border="#E1E4E8", background="#F4F5F7", dashed=True)
        cursor.insertText(message.author_name.strip() or message.author_handle, name_format)
        cursor.insertText(context_meta(message, now), meta_format)
        insert_card_body(cursor, message.text, body_format)

    def _show_deadlines(self, deadlines: list[DeadlineRow], now: float) -> None:
        while (item := self._deadline_grid.takeAt(0)) is not None:
            widget = item.widget()
            if widget is not None:
                widget.deleteLater()
        self._deadlines = deadlines
        self._deadline_labels = []
        self._note_labels = []
        self._read_notes(now)
        title = self._plain_label("sectionTitle")
        title.setText("Deadlines")
        self._deadline_grid.addWidget(title, 0, 0, 1, 3)
        if not deadlines:
            none = self._plain_label("deadlineNone")
            none.setText("No deadlines")
            self._deadline_grid.addWidget(none, 1, 0, 1, 3)
        for index, deadline in enumerate(deadlines):
            row = 1 + 2 * index  # the note ("resumes Mon 09:00") goes in the row under it
            kind = self._plain_label("deadlineKind")
            kind.setText(_KIND_LABELS.get(deadline.kind, str(deadline.kind)))
            due = self._plain_label("deadlineDue")
            due.setText(f"due {local_time(deadline.due_at, now=now)}")
            state = self._plain_label("deadlineState")
            self._set_deadline_label(state, deadline, now)
            for label in (kind, due):  # a narrow pane wraps them rather than widening the window (§10)
                label.setWordWrap(True)
            note = self._plain_label("deadlineNote")
            note.setWordWrap(True)
            self._set_note(note, self._notes.get(deadline.id, ""))
            self._deadline_grid.addWidget(kind, row, 0)
            self._deadline_grid.addWidget(due, row, 1)
            self._deadline_grid.addWidget(state, row, 2, Qt.AlignmentFlag.AlignLeft)
            self._deadline_grid.addWidget(note, row + 1, 1, 1, 2)
            self._deadline_labels.append(state)
            self._note_labels.append(note)

    def _read_notes(self, now: float) -> None:
        self._notes_at = now
        source = self._source
        if self._mention_id is None or not isinstance(source, DeadlineNotesSource):
            self._notes = {}
            return
        self._notes = source.deadline_notes(self._mention_id, self._deadlines, now)

    @staticmethod
    def _set_note(label: QLabel, note: str) -> None:
        if label.text() != note:
            label.setText(note)
        label.setVisible(bool(note))

    @staticmethod
    def _set_deadline_label(label: QLabel, deadline: DeadlineRow, now: float) -> None:
        state = deadline_state(deadline, now)
        label.setText(deadline_status(deadline, now))
        if label.property("state") != state.value:
            label.setProperty("state", state.value)
            style = label.style()
            style.unpolish(label)
            style.polish(label)

    # ------------------------------------------------------------------ slots
    @Slot(QUrl)
    def _on_thread_highlighted(self, url: QUrl) -> None:
        self._links.on_highlighted(url)

    @Slot(QUrl)
    def _on_thread_anchor_clicked(self, url: QUrl) -> None:
        if self._links.on_anchor_clicked(url):
            self.url_opened.emit(url.toString())

    @Slot()
    def _on_open_button_clicked(self) -> None:
        if is_safe_url(self._url):
            self._open_url(QUrl(self._url))
            self.url_opened.emit(self._url)

    @Slot(int, str)
    def _on_fetcher_finished(self, head_id: int, message: str) -> None:
        if head_id != self._mention_id:
            return
        self._fetch_message = message
        self.refresh()
