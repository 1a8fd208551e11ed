"""The reply composer: templates by keyboard, [blanks] with Tab, phrase hints, live length, privacy, outbox state."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, QUrl, Signal, Slot
from PySide6.QtGui import (
    QColor,
    QDesktopServices,
    QGuiApplication,
    QHelpEvent,
    QHideEvent,
    QKeyEvent,
    QKeySequence,
    QShortcut,
    QTextCharFormat,
    QTextCursor,
)
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QTextEdit,
    QToolTip,
    QVBoxLayout,
    QWidget,
)
from typing_extensions import override

from console import wording
from console.replies.desk import ReplyChecks, ReplyContext, ReplyDesk, ReplyRow, ReplyState
from console.replies.outbox import HAND_OFF, OutboxError, is_withdrawn, plain_reason
from console.replies.phrases import PhraseHit
from console.replies.templates import Blank, combine
from console.sync.manual import ManualReply
from widgets.claims import (
    CLAIMED_DETAIL,
    OFFLINE_DETAIL,
    OFFLINE_QUESTION,
    TeamPort,
    claimed_question,
    is_offline,
)
from widgets.elided_label import ElidedLabel
from widgets.template_manager import TemplateManager
from widgets.theme import local_time

log = logging.getLogger(__name__)

#: How long typing pauses before the draft is saved.
DRAFT_SAVE_MS = 400
BLANK_BACKGROUND = "#FFF1B8"
PHRASE_UNDERLINE = "#D97706"
_PREVIEW = 70


class ReplyEdit(QPlainTextEdit):
    """Plain-text editor that marks [blanks] and stiff phrases; Tab jumps between blanks, Ctrl+Enter sends."""

    send_requested = Signal()
    #: Ctrl+T: open the template search.
    templates_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("replyEdit")
        self.setPlaceholderText("Write a reply… (Ctrl+T inserts a template, Ctrl+Enter sends)")
        self.setTabChangesFocus(False)
        self._blanks: list[Blank] = []
        self._phrases: list[PhraseHit] = []

    def set_marks(self, blanks: list[Blank], phrases: list[PhraseHit]) -> None:
        """Highlight blanks and underline stiff phrases (extra selections: the text itself is untouched)."""
        self._blanks = blanks
        self._phrases = phrases
        selections: list[QTextEdit.ExtraSelection] = []
        for blank in blanks:
            fmt = QTextCharFormat()
            fmt.setBackground(QColor(BLANK_BACKGROUND))
            selections.append(self._selection(blank.start, blank.end, fmt))
        for hit in phrases:
            fmt = QTextCharFormat()
            fmt.setUnderlineStyle(QTextCharFormat.UnderlineStyle.WaveUnderline)
            fmt.setUnderlineColor(QColor(PHRASE_UNDERLINE))
            fmt.setToolTip(hit.tooltip)
            selections.append(self._selection(hit.start, hit.end, fmt))
        self.setExtraSelections(selections)

    def _selection(self, start: int, end: int, fmt: QTextCharFormat) -> QTextEdit.ExtraSelection:
        selection = QTextEdit.ExtraSelection()
        cursor = QTextCursor(self.document())
        cursor.setPosition(start)
        cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        selection.cursor = cursor
        selection.format = fmt
        return selection

    def marked_ranges(self) -> list[tuple[int, int, str]]:
        """(start, end, "blank"|"phrase") of every mark, for tests and accessibility."""
        marks = [(b.start, b.end, "blank") for b in self._blanks]
        marks += [(h.start, h.end, "phrase") for h in self._phrases]
        return sorted(marks)

    def phrase_tooltip_at(self, position: int) -> str:
        for hit in self._phrases:
            if hit.start <= position < hit.end:
                return hit.tooltip
        return ""

    def select_next_blank(self, *, backwards: bool = False) -> bool:
        """Select the next (or previous) [blank] after the cursor, wrapping around. False when there is none."""
        if not self._blanks:
            return False
        cursor = self.textCursor()
        here = cursor.selectionStart() if backwards else cursor.selectionEnd()
        if backwards:
            candidates = [b for b in self._blanks if b.end <= here and b.start < cursor.selectionStart()]
            blank = candidates[-1] if candidates else self._blanks[-1]
        else:
            candidates = [b for b in self._blanks if b.start >= here]
            blank = candidates[0] if candidates else self._blanks[0]
        cursor.setPosition(blank.start)
        cursor.setPosition(blank.end, QTextCursor.MoveMode.KeepAnchor)
        self.setTextCursor(cursor)
        return True

    @override
    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        mods = event.modifiers()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and mods & Qt.KeyboardModifier.ControlModifier:
            self.send_requested.emit()
            return
        if key == Qt.Key.Key_T and mods & Qt.KeyboardModifier.ControlModifier:
            self.templates_requested.emit()
            return
        if key == Qt.Key.Key_Tab and not mods & Qt.KeyboardModifier.ControlModifier:
            if not self.select_next_blank():
                self.focusNextChild()
            return
        if key == Qt.Key.Key_Backtab:
            if not self.select_next_blank(backwards=True):
                self.focusPreviousChild()
            return
        super().keyPressEvent(event)

    @override
    def viewportEvent(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and isinstance(event, QHelpEvent):
            tip = self.phrase_tooltip_at(self.cursorForPosition(event.pos()).position())
            if tip:
                QToolTip.showText(event.globalPos(), tip, self.viewport())
            else:
                QToolTip.hideText()
                event.ignore()
            return True
        return super().viewportEvent(event)


def reply_state_text(reply: ReplyRow, *, now: float) -> str:
    """One line about a reply in the outbox: its state, why it waits, and the start of its text."""
    preview = reply.text.replace("\n", " ")
    preview = preview if len(preview) <= _PREVIEW else preview[: _PREVIEW - 1] + "…"
    kind = "Correction" if reply.purpose == "correction" else reply.purpose.capitalize()
    if reply.state is ReplyState.SENT:
        when = local_time(reply.sent_at, now=now) if reply.sent_at is not None else ""
        state = f"Sent {when}".strip()
    elif is_withdrawn(reply):
        state = "Withdrawn"
    elif reply.state is ReplyState.FAILED:
        state = f"Not sent – {plain_reason(reply.error)} Retry, or edit it again"
    elif reply.state is ReplyState.SENDING:
        state = "Sending…"
    elif reply.hold_reason:
        state = f"Held – {reply.hold_reason}. Send anyway or withdraw"
    elif reply.error == HAND_OFF:
        state = "To send by hand – copy it, open the post and reply there, then mark it as sent"
    elif reply.error:
        retry = f" (next try {local_time(reply.next_attempt_at, now=now)})" if reply.next_attempt_at else ""
        state = f"Waiting to send – {reply.error}{retry}"
    else:
        state = "Queued – sending shortly"
    return f"{kind} · {state} · “{preview}”"


class Composer(QWidget):
    """Writes replies for the selected item and shows its outbox state; never blocks on the network."""

    #: A reply (or correction) was committed to the outbox.
    reply_queued = Signal(int)
    #: The draft of this queue item was saved (or cleared).
    draft_saved = Signal(int)
    #: Team mode: our claim on this item was asked for, given or let go (the list and banner re-read it).
    claim_changed = Signal(int)

    def __init__(self, desk: ReplyDesk, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("composer")
        self._desk = desk
        #: Opens a hand-added post in the browser (replaceable, e.g. by tests).
        self.open_url: Callable[[QUrl], object] = QDesktopServices.openUrl
        self._context: ReplyContext | None = None
        self._seen_at = 0
        self._template_ids: list[int] = []
        self._correcting: ReplyRow | None = None
        self._loading = False
        self._checks: ReplyChecks | None = None
        self._replies: list[ReplyRow] = []
        self._replies_shown: tuple[int | None, int] = (None, 0)  # (mention id, number of replies) last listed
        self._manager: TemplateManager | None = None
        #: Team mode (issue 22): opening the reply box claims the item, typing renews, send/cancel/close releases.
        self._team: TeamPort | None = None
        self._claimed: int | None = None  # the item we asked to claim and have not released
        self._claim_tasks: set[asyncio.Future[None]] = set()
        self._team_question: QMessageBox | None = None
        self._override_reason = ""

        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 8, 16, 12)
        layout.setSpacing(6)

        header = QHBoxLayout()
        self._title = ElidedLabel()  # a long handle is cut, never widening the window (issue 19 §10)
        self._title.setObjectName("composerTitle")
        header.addWidget(self._title, 1)
        self._visibility = QComboBox()
        self._visibility.setObjectName("replyVisibility")
        self._visibility.setToolTip("Public or private follows the customer's message")
        self._visibility.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self._visibility.currentIndexChanged.connect(self._on_visibility_current_index_changed)
        header.addWidget(self._visibility)
        self._template_button = QPushButton("Templates (Ctrl+T)")
        self._template_button.setObjectName("templateButton")
        self._template_button.clicked.connect(self.open_picker)
        header.addWidget(self._template_button)
        layout.addLayout(header)

        self._correction_bar = QFrame()
        self._correction_bar.setObjectName("correctionBar")
        bar = QHBoxLayout(self._correction_bar)
        bar.setContentsMargins(8, 4, 8, 4)
        self._correction_label = QLabel()
        self._correction_label.setTextFormat(Qt.TextFormat.PlainText)
        self._correction_label.setWordWrap(True)
        bar.addWidget(self._correction_label, 1)
        cancel_correction = QPushButton("Cancel correction")
        cancel_correction.clicked.connect(self._on_cancel_correction_clicked)
        bar.addWidget(cancel_correction)
        self._correction_bar.hide()
        layout.addWidget(self._correction_bar)

        self._picker = QFrame()
        self._picker.setObjectName("templatePicker")
        picker = QVBoxLayout(self._picker)
        picker.setContentsMargins(0, 0, 0, 0)
        picker.setSpacing(2)
        self._search = QLineEdit()
        self._search.setObjectName("templateSearch")
        self._search.setPlaceholderText("Search templates by name, tag or text — ↑↓ to choose, Enter to insert")
        self._search.setClearButtonEnabled(True)
        self._search.textChanged.connect(self._on_search_text_changed)
        self._search.installEventFilter(self)
        search_row = QHBoxLayout()
        search_row.addWidget(self._search, 1)
        manage = QPushButton("Manage…")
        manage.setObjectName("manageTemplates")
        manage.setToolTip("Create, edit and tag templates, with per-channel wording")
        manage.clicked.connect(self.open_manager)
        search_row.addWidget(manage)
        picker.addLayout(search_row)
        self._results = QListWidget()
        self._results.setObjectName("templateResults")
        self._results.setMaximumHeight(150)
        self._results.itemActivated.connect(self._on_results_item_activated)
        picker.addWidget(self._results)
        self._picker.hide()
        layout.addWidget(self._picker)

        self._edit = ReplyEdit()
        self._edit.setMinimumHeight(90)
        self._edit.installEventFilter(self)  # focus in: the agent opens the reply box (team mode claims the item)
        self._edit.textChanged.connect(self._on_edit_text_changed)
        self._edit.send_requested.connect(self._on_send_requested)
        self._edit.templates_requested.connect(self.open_picker)
        layout.addWidget(self._edit, 1)

        self._privacy_bar = QFrame()
        self._privacy_bar.setObjectName("privacyBar")
        privacy_box = QVBoxLayout(self._privacy_bar)
        privacy_box.setContentsMargins(8, 6, 8, 6)
        self._privacy_label = QLabel()
        self._privacy_label.setTextFormat(Qt.TextFormat.PlainText)
        self._privacy_label.setWordWrap(True)
        privacy_box.addWidget(self._privacy_label)
        privacy = QHBoxLayout()
        privacy.addStretch(1)
        privacy_box.addLayout(privacy)
        self._as_dm_button = QPushButton("Send as direct message")
        self._as_dm_button.clicked.connect(self._on_as_dm_clicked)
        self._public_button = QPushButton("Send publicly")
        self._public_button.clicked.connect(self._on_send_public_clicked)
        keep = QPushButton("Keep editing")
        keep.clicked.connect(self._privacy_bar.hide)
        for button in (self._as_dm_button, self._public_button, keep):
            privacy.addWidget(button)
        self._privacy_bar.hide()
        layout.addWidget(self._privacy_bar)

        footer = QHBoxLayout()
        self._hints = QLabel()
        self._hints.setObjectName("composerHints")
        self._hints.setTextFormat(Qt.TextFormat.PlainText)
        self._hints.setWordWrap(True)
        footer.addWidget(self._hints, 1)
        self._counter = QLabel()
        self._counter.setObjectName("lengthCounter")
        footer.addWidget(self._counter)
        self._send_button = QPushButton("Send")
        self._send_button.setObjectName("sendButton")
        self._send_button.setToolTip("Send (Ctrl+Enter)")
        self._send_button.clicked.connect(self._on_send_requested)
        footer.addWidget(self._send_button)
        layout.addLayout(footer)

        self._outbox_list = QListWidget()
        self._outbox_list.setObjectName("replyStates")
        self._outbox_list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self._outbox_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._outbox_list.setUniformItemSizes(True)
        self._outbox_list.currentRowChanged.connect(self._on_outbox_current_row_changed)
        actions = QHBoxLayout()
        actions.addStretch(1)
        self._confirm_button = QPushButton("Send anyway")
        self._confirm_button.clicked.connect(self._on_confirm_clicked)
        self._withdraw_button = QPushButton("Withdraw")
        self._withdraw_button.clicked.connect(self._on_withdraw_clicked)
        self._correct_button = QPushButton("Correct…")
        self._correct_button.setToolTip("Edit the sent reply where the channel allows it, else post a correction")
        self._correct_button.clicked.connect(self._on_correct_clicked)
        # A post added by hand has no API: the agent copies the reply, posts it there, then marks it sent.
        self._copy_button = QPushButton("Copy reply")
        self._copy_button.setObjectName("handOffCopy")
        self._copy_button.clicked.connect(self._on_copy_clicked)
        self._open_post_button = QPushButton("Open post")
        self._open_post_button.setObjectName("handOffOpen")
        self._open_post_button.setToolTip("Open the original post in the browser to paste the reply there")
        self._open_post_button.clicked.connect(self._on_open_post_clicked)
        self._mark_sent_button = QPushButton("Mark as sent")
        self._mark_sent_button.setObjectName("handOffSent")
        self._mark_sent_button.setToolTip("You posted the reply yourself: it counts as sent now")
        self._mark_sent_button.clicked.connect(self._on_mark_sent_clicked)
        hand_off = (self._copy_button, self._open_post_button, self._mark_sent_button)
        # A reply that did not leave: send it again, or take its text back into the editor (issue 19 #6).
        self._retry_button = QPushButton("Retry")
        self._retry_button.setObjectName("retryReply")
        self._retry_button.setToolTip("Send this reply again")
        self._retry_button.clicked.connect(self._on_retry_clicked)
        self._edit_again_button = QPushButton("Edit again")
        self._edit_again_button.setObjectName("editReplyAgain")
        self._edit_again_button.setToolTip("Put this reply's text back into the editor")
        self._edit_again_button.clicked.connect(self._on_edit_again_clicked)
        again = (self._retry_button, self._edit_again_button)
        # Team mode: a reply the team refused (a colleague answered) or that waits for the team server can still go,
        # by the agent's explicit choice; it is marked for review (issue 22 item 4).
        self._team_send_button = QPushButton("Send anyway")
        self._team_send_button.setObjectName("teamSendAnyway")
        self._team_send_button.setToolTip(
            "Send it although a colleague answered or the team cannot be asked now; it is marked for review"
        )
        self._team_send_button.clicked.connect(self._on_team_send_clicked)
        for button in (
            *hand_off,
            *again,
            self._team_send_button,
            self._confirm_button,
            self._withdraw_button,
            self._correct_button,
        ):
            actions.addWidget(button)
        # The selected reply's buttons sit above the reply strip, right under Send: below a strip of three rows
        # they fell out of the composer's scroll area at about 1400x815 (found walking the shift).
        layout.addLayout(actions)
        layout.addWidget(self._outbox_list)

        self._draft_timer = QTimer(self)
        self._draft_timer.setSingleShot(True)
        self._draft_timer.setInterval(DRAFT_SAVE_MS)
        self._draft_timer.timeout.connect(self._on_draft_timer_timeout)

        shortcut = QShortcut(QKeySequence("Ctrl+T"), self, context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        shortcut.activated.connect(self.open_picker)
        # Escape leaves correction mode (issue 19 §2); enabled only while correcting, so it takes no other Escape.
        self._escape_correction = QShortcut(
            QKeySequence(Qt.Key.Key_Escape), self, context=Qt.ShortcutContext.WidgetWithChildrenShortcut
        )
        self._escape_correction.setEnabled(False)
        self._escape_correction.activated.connect(self._on_escape_correction_activated)

        me = weakref.ref(self)

        def limits_known(account_id: int) -> None:
            composer = me()
            if composer is not None:
                with contextlib.suppress(RuntimeError):  # the widget was deleted meanwhile
                    composer.on_limits_known(account_id)

        desk.limits.subscribe(limits_known)

        self.set_mention(None)

    # ------------------------------------------------------------------ public API
    @property
    def editor(self) -> ReplyEdit:
        return self._edit

    @property
    def mention_id(self) -> int | None:
        return self._context.mention_id if self._context else None

    def text(self) -> str:
        return self._edit.toPlainText()

    # ------------------------------------------------------------------ team mode (issue 22 item 4)
    def set_team(self, team: TeamPort | None) -> None:
        """Work in a team: the reply box claims its item, and Send asks before answering over a colleague."""
        self._team = team

    @property
    def claimed(self) -> int | None:
        """The item whose claim we hold (or asked for), if any."""
        return self._claimed

    def claims_pending(self) -> int:
        """Claims asked of the team server and not answered yet."""
        return len(self._claim_tasks)

    def team_question(self) -> QMessageBox | None:
        """The open "Send anyway?" question (offline, or a colleague replying), if Send asked one."""
        box = self._team_question
        return box if box is not None and box.isVisible() else None

    def claim_current(self) -> None:
        """Claim the item shown (the agent opened the reply box on it); once per item until released."""
        team, context = self._team, self._context
        if team is None or context is None or self._claimed == context.mention_id:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop runs (a test without one): the claim is advice, Send still asks
            log.warning("no event loop runs: item %s is not claimed", context.mention_id)
            return
        self._release_claim()
        mention_id = context.mention_id
        self._claimed = mention_id
        self._track(loop.create_task(self._claim(team, mention_id), name=f"claim-{mention_id}"))

    def adopt_claim(self, mention_id: int) -> None:
        """Take next claimed this item for us: hold it as if the reply box had claimed it (released alike)."""
        if self._claimed != mention_id:
            self._release_claim()
        self._claimed = mention_id

    def release_claim(self) -> None:
        """Let go of our claim (sent, cancelled, the window closes); fire and forget, fine offline."""
        self._release_claim()

    def _release_claim(self) -> None:
        mention_id, self._claimed = self._claimed, None
        if self._team is not None and mention_id is not None:
            try:
                self._team.claims.release(mention_id)
            except Exception:  # the team may be gone (left meanwhile): a claim expires on its own
                log.exception("could not release the claim on item %s", mention_id)
            self.claim_changed.emit(mention_id)

    async def _claim(self, team: TeamPort, mention_id: int) -> None:
        try:
            await team.claims.claim(mention_id)
        except Exception:  # offline or refused: the claim is only advice; Send asks when it matters
            log.warning("could not claim item %s", mention_id, exc_info=True)
        with contextlib.suppress(RuntimeError):  # the widget was deleted meanwhile
            self.claim_changed.emit(mention_id)

    def _track(self, task: asyncio.Future[None]) -> None:
        self._claim_tasks.add(task)
        task.add_done_callback(self._claim_tasks.discard)

    def _question_for(self, mention_id: int) -> tuple[str, str, str] | None:
        """What Send must ask first in team mode (question, detail, the review reason if sent anyway): offline
        from the team, or a colleague holds the item."""
        team = self._team
        if team is None:
            return None
        advice = team.claims.advice(mention_id)  # the claims service knows whether its last call reached the server
        if advice.kind == "offline" or is_offline(team.status()):
            return OFFLINE_QUESTION, OFFLINE_DETAIL, "Sent while offline from the team"
        if advice.kind == "claimed":
            question = claimed_question(advice.holder, advice.since, self._desk.clock.now())
            return question, CLAIMED_DETAIL, f"Sent while {advice.holder} was replying"
        return None

    def _ask_send_anyway(self, question: tuple[str, str, str], *, visibility: str) -> None:
        """Ask (non-modal, never exec()); "Send anyway" queues with override, Cancel keeps the draft."""
        if self._team_question is not None:
            self._team_question.close()
        box = QMessageBox(self)
        box.setObjectName("sendAnywayQuestion")
        box.setIcon(QMessageBox.Icon.Warning)
        box.setWindowTitle("Send anyway?")
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setText(question[0])
        box.setInformativeText(question[1])
        send_button = box.addButton("Send anyway", QMessageBox.ButtonRole.AcceptRole)
        cancel = box.addButton("Cancel", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(cancel)
        box.setEscapeButton(cancel)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        mention_id = self.mention_id

        def answered(_result: int) -> None:
            self._team_question = None
            if box.clickedButton() is send_button and self.mention_id == mention_id:
                self._override_reason = question[2]
                self.send(visibility=visibility, confirmed=True, override=True)
            else:
                self._edit.setFocus(Qt.FocusReason.OtherFocusReason)

        box.finished.connect(answered)
        self._team_question = box
        box.open()

    def counter_text(self) -> str:
        return self._counter.text()

    def counter_tooltip(self) -> str:
        return self._counter.toolTip()

    def hints_text(self) -> str:
        return self._hints.text()

    def can_send(self) -> bool:
        return self._send_button.isEnabled()

    def privacy_prompt(self) -> str:
        return "" if self._privacy_bar.isHidden() else self._privacy_label.text()

    def visibility(self) -> str:
        return str(self._visibility.currentData() or "public")

    def is_correcting(self) -> bool:
        """Whether the editor holds a correction of a sent reply (the correction bar shows)."""
        return self._correcting is not None

    def template_results(self) -> list[str]:
        return [self._results.item(i).text() for i in range(self._results.count())]

    def reply_state_texts(self) -> list[str]:
        return [self._outbox_list.item(i).text() for i in range(self._outbox_list.count())]

    @Slot(object)
    def set_mention(self, mention_id: int | None) -> None:
        """Show the composer for this item (loading its draft), or disable it for None."""
        self._flush_draft()
        if self._claimed is not None and self._claimed != mention_id:
            self._release_claim()  # the agent moved on without sending: cancel (the draft stays)
        self._context = None if mention_id is None else self._desk.context(mention_id)
        self._correcting = None
        self._correction_bar.hide()
        self._privacy_bar.hide()
        self._picker.hide()
        self._template_ids = []
        self._seen_at = int(self._desk.clock.now())
        context = self._context
        self.setEnabled(context is not None)
        self._loading = True
        try:
            self._edit.setPlainText(self._desk.outbox.draft(context.mention_id) if context else "")
            self._visibility.clear()
            if context is None:
                self._title.setText("Select an item to reply")
            else:
                self._title.setText(f"Reply to @{context.handle}")
                if context.direct:
                    self._visibility.addItem("Direct message", "direct")
                else:
                    public = context.visibility if context.visibility != "direct" else "public"
                    self._visibility.addItem("Public reply" if public == "public" else f"Reply ({public})", public)
                    self._visibility.addItem("Direct message", "direct")
                self._visibility.setEnabled(not context.direct)
        finally:
            self._loading = False
        self._update_checks()
        self.refresh_replies()
        if context is not None:
            self._desk.request_limits(context)  # the server's own limit, read once per account in the background

    def on_limits_known(self, account_id: int) -> None:
        """An account's real limit arrived: recount when this item is answered from that account."""
        if self._context is not None and self._context.account_id == account_id:
            self._update_checks()

    @Slot()
    def refresh_replies(self) -> None:
        """Re-read this item's outbox rows (called when the outbox changes)."""
        self._replies = [] if self._context is None else self._desk.outbox.replies(self._context.mention_id)
        now = self._desk.clock.now()
        current = self._outbox_list.currentRow()
        shown = (None if self._context is None else self._context.mention_id, len(self._replies))
        same_list, self._replies_shown = shown == self._replies_shown, shown
        self._outbox_list.clear()
        for reply in self._replies:
            item = QListWidgetItem(reply_state_text(reply, now=now))
            item.setToolTip(reply.text)
            self._outbox_list.addItem(item)
        self._outbox_list.setVisible(bool(self._replies))
        if self._replies:
            rows = min(len(self._replies), 3)
            row_height = max(self._outbox_list.sizeHintForRow(0), self.fontMetrics().height() + 4)
            self._outbox_list.setFixedHeight(row_height * rows + 2 * self._outbox_list.frameWidth() + 2)
        # A reply that waits for the agent (held, or to send by hand) is selected, so its buttons show; else
        # the row the agent had, unless the list is another item's or grew: then the newest (found walking the
        # shift: after "Edit again" and Send, the withdrawn row stayed selected and hid "Mark as sent").
        held = [
            i
            for i, r in enumerate(self._replies)
            if r.state is ReplyState.QUEUED and (r.hold_reason or r.error == HAND_OFF)
        ]
        if held:
            self._outbox_list.setCurrentRow(held[0])
        elif same_list and 0 <= current < len(self._replies):
            self._outbox_list.setCurrentRow(current)
        elif self._replies:
            self._outbox_list.setCurrentRow(len(self._replies) - 1)
        self._update_reply_actions()

    @Slot()
    def open_picker(self) -> None:
        """Show the template search (Ctrl+T) with every template for this channel."""
        if self._context is None:
            return
        self._picker.show()
        self._search.selectAll()
        self._search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self._on_search_text_changed(self._search.text())

    @Slot()
    def open_manager(self) -> TemplateManager:
        """Show the template manager (non-modal); the search sees its changes at once."""
        if self._manager is None:
            self._manager = TemplateManager(self._desk.templates, self)
            self._manager.templates_changed.connect(self._on_manager_templates_changed)
        self._manager.reload()
        self._manager.open()
        return self._manager

    def insert_template(self, template_id: int) -> None:
        """Add the template (filled for this item) to the reply: a new paragraph when text is already there."""
        context = self._context
        template = self._desk.templates.get(template_id)
        if context is None or template is None:
            return
        filled = self._desk.render_template(template, context)
        self._edit.setPlainText(combine([self._edit.toPlainText(), filled]))
        self._template_ids.append(template_id)
        self._picker.hide()
        self._edit.setFocus(Qt.FocusReason.OtherFocusReason)
        cursor = self._edit.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        self._edit.setTextCursor(cursor)
        if not self._edit.select_next_blank():
            self._edit.moveCursor(QTextCursor.MoveOperation.End)

    def send(self, *, visibility: str | None = None, confirmed: bool = False, override: bool = False) -> int | None:
        """Queue the reply if nothing blocks it; a public reply with personal data asks first.

        In team mode, Send asks first while a colleague replies to the item or the team server is unreachable;
        ``override`` is the agent's "Send anyway" (the reply passes the team's check and is marked for review).

        Returns:
            The reply id, or None when it was not queued (blocked, or waiting for the privacy answer).
        """
        context = self._context
        checks = self._checks
        text = self._edit.toPlainText()
        if context is None or checks is None or not text.strip() or checks.blocking:
            return None
        chosen = visibility or self.visibility()
        if chosen != "direct" and checks.privacy and not confirmed and self._correcting is None:
            kinds = sorted({f.kind.value for f in checks.privacy})
            named = [("an " if kind[0] in "aeiou" else "a ") + kind for kind in kinds]
            self._privacy_label.setText(
                f"This public reply contains {' and '.join(named)} ({checks.privacy[0].text}). "
                "Anyone can read it. Send it as a direct message instead?"
            )
            self._privacy_bar.show()
            self._as_dm_button.setFocus(Qt.FocusReason.OtherFocusReason)
            return None
        if not override and self._correcting is None:
            question = self._question_for(context.mention_id)
            if question is not None:
                self._ask_send_anyway(question, visibility=chosen)
                return None
        try:
            if self._correcting is not None:
                reply_id = self._desk.correct(self._correcting.id, text)
            else:
                reply_id = self._desk.send(
                    context,
                    text,
                    visibility=chosen,
                    seen_at=self._seen_at,
                    template_ids=self._template_ids,
                    override=override,
                    override_reason=self._override_reason if override else "",
                )
        except OutboxError as exc:
            self._hints.setText(str(exc))
            return None
        self._draft_timer.stop()
        self._privacy_bar.hide()
        self._correcting = None
        self._correction_bar.hide()
        self._template_ids = []
        self._loading = True
        try:
            self._edit.clear()
        finally:
            self._loading = False
        self._update_checks()
        self.refresh_replies()
        if self._claimed == context.mention_id:
            self._release_claim()  # sent: the item is free again (the server records the send itself)
        self.reply_queued.emit(reply_id)
        return reply_id

    # ------------------------------------------------------------------ internals
    def _flush_draft(self) -> None:
        if self._draft_timer.isActive():
            self._draft_timer.stop()
            self._on_draft_timer_timeout()

    def _update_checks(self) -> None:
        context = self._context
        text = self._edit.toPlainText()
        if context is None:
            self._checks = None
            self._edit.set_marks([], [])
            self._counter.setText("")
            self._hints.setText("")
            self._send_button.setEnabled(False)
            return
        checks = self._desk.check(context, text, visibility=self.visibility())
        self._checks = checks
        self._edit.set_marks(checks.blanks, checks.phrases)
        length = checks.length
        self._counter.setText(
            f"{length.count:,} / {length.limit:,}" if length.bounded else wording.count(length.count, "character")
        )
        self._counter.setToolTip(self._counter_tip(context, checks))
        self._set_state(
            self._counter, "over" if checks.length.over else "near" if checks.length.remaining < 20 else "ok"
        )
        hints = list(checks.blocking)
        if checks.phrases:
            count = len(checks.phrases)
            hints.append(f"{count} stiff phrase{'s' if count > 1 else ''} underlined — hover for a friendlier wording.")
        self._hints.setText(" ".join(hints))
        self._set_state(self._hints, "blocked" if checks.blocking else "ok")
        self._send_button.setEnabled(bool(text.strip()) and not checks.blocking)
        self._send_button.setText("Send correction" if self._correcting is not None else "Send")
        self._escape_correction.setEnabled(self._correcting is not None)

    def _counter_tip(self, context: ReplyContext, checks: ReplyChecks) -> str:
        tip = f"Counted as {context.channel.capitalize()} does, with @{context.handle} included"
        if context.channel != "mastodon":
            return tip + "."
        limits = self._desk.limits.limits(context.account_id)
        source = (
            "this server's limit"
            if self._desk.limits.known(context.account_id) is not None
            else "Mastodon's default until the server's own limit is read"
        )
        return (
            f"{tip}; each link counts {limits.characters_reserved_per_url}. "
            f"{checks.length.limit:,} characters is {source}."
        )

    @staticmethod
    def _set_state(widget: QWidget, state: str) -> None:
        if widget.property("state") == state:
            return
        widget.setProperty("state", state)
        widget.style().unpolish(widget)
        widget.style().polish(widget)

    def _selected_reply(self) -> ReplyRow | None:
        row = self._outbox_list.currentRow()
        return self._replies[row] if 0 <= row < len(self._replies) else None

    def _update_reply_actions(self) -> None:
        reply = self._selected_reply()
        queued = reply is not None and reply.state is ReplyState.QUEUED
        self._confirm_button.setVisible(queued and bool(reply and reply.hold_reason))
        self._withdraw_button.setVisible(queued)
        self._correct_button.setVisible(reply is not None and reply.state is ReplyState.SENT)
        failed = reply is not None and reply.state is ReplyState.FAILED
        self._retry_button.setVisible(failed and reply is not None and not is_withdrawn(reply))
        self._edit_again_button.setVisible(failed)
        by_hand = queued and reply is not None and reply.error == HAND_OFF
        for button in (self._copy_button, self._open_post_button, self._mark_sent_button):
            button.setVisible(by_hand)
        waiting = queued and reply is not None and bool(reply.error) and not by_hand and not reply.hold_reason
        stopped = waiting or (failed and reply is not None and not is_withdrawn(reply))
        self._team_send_button.setVisible(self._team is not None and stopped)

    @override
    def hideEvent(self, event: QHideEvent) -> None:
        # The draft is saved now, not by a timer that could fire after the window closed the database at quit.
        self._flush_draft()
        if not event.spontaneous():  # closed (not minimised): colleagues need not wait for the claim to expire
            self._release_claim()
        super().hideEvent(event)

    @override
    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if isinstance(watched, ReplyEdit) and event.type() == QEvent.Type.FocusIn and self._correcting is None:
            self.claim_current()  # (the search box's filter runs before the editor exists: no self._edit here)
        if watched is self._search and event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent):
            key = event.key()
            if key in (Qt.Key.Key_Down, Qt.Key.Key_Up) and self._results.count():
                step = 1 if key == Qt.Key.Key_Down else -1
                row = max(0, min(self._results.count() - 1, self._results.currentRow() + step))
                self._results.setCurrentRow(row)
                return True
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                item = self._results.currentItem()
                if item is not None:
                    self.insert_template(int(item.data(Qt.ItemDataRole.UserRole)))
                return True
            if key == Qt.Key.Key_Escape:
                self._picker.hide()
                self._edit.setFocus(Qt.FocusReason.OtherFocusReason)
                return True
        return super().eventFilter(watched, event)

    # ------------------------------------------------------------------ slots
    @Slot(str)
    def _on_search_text_changed(self, query: str) -> None:
        self._results.clear()
        for template in self._desk.search_templates(query, self._context)[:30]:
            tags = f"  · {', '.join(template.tags)}" if template.tags else ""
            item = QListWidgetItem(f"{template.name}{tags}")
            item.setData(Qt.ItemDataRole.UserRole, template.id)
            item.setToolTip(template.body)
            self._results.addItem(item)
        if self._results.count():
            self._results.setCurrentRow(0)

    @Slot()
    def _on_manager_templates_changed(self) -> None:
        if not self._picker.isHidden():
            self._on_search_text_changed(self._search.text())

    @Slot(QListWidgetItem)
    def _on_results_item_activated(self, item: QListWidgetItem) -> None:
        self.insert_template(int(item.data(Qt.ItemDataRole.UserRole)))

    @Slot()
    def _on_edit_text_changed(self) -> None:
        self._privacy_bar.hide()
        self._update_checks()
        if not self._loading and self._context is not None and self._correcting is None:
            self._draft_timer.start()
            if self._team is not None:
                if self._claimed != self._context.mention_id:
                    self.claim_current()
                else:
                    self._team.claims.typing(self._context.mention_id)  # renews (rate-limited by the service)

    @Slot()
    def _on_draft_timer_timeout(self) -> None:
        if self._context is not None:
            self._desk.outbox.save_draft(self._context.mention_id, self._edit.toPlainText())
            self.draft_saved.emit(self._context.mention_id)

    @Slot(int)
    def _on_visibility_current_index_changed(self, _index: int) -> None:
        if not self._loading:
            self._update_checks()

    @Slot()
    def _on_send_requested(self) -> None:
        self.send()

    @Slot()
    def _on_as_dm_clicked(self) -> None:
        index = self._visibility.findData("direct")
        if index >= 0:
            self._visibility.setCurrentIndex(index)
        self.send(visibility="direct", confirmed=True)

    @Slot()
    def _on_send_public_clicked(self) -> None:
        self.send(confirmed=True)

    @Slot(int)
    def _on_outbox_current_row_changed(self, _row: int) -> None:
        self._update_reply_actions()

    @Slot()
    def _on_confirm_clicked(self) -> None:
        reply = self._selected_reply()
        if reply is not None:
            self._desk.outbox.confirm(reply.id)
            self._desk.outbox.wake()
            self.refresh_replies()

    def _run_outbox_action(self, action: Callable[[int], object], reply_id: int) -> None:
        """Run ``action`` on the reply; the outbox's refusal (OutboxError) shows in the hints. The list refreshes."""
        try:
            action(reply_id)
        except OutboxError as exc:
            self._hints.setText(str(exc))
        self.refresh_replies()

    def _selected_hand_off(self) -> tuple[ReplyRow, ManualReply] | None:
        reply = self._selected_reply()
        handoff = self._desk.outbox.hand_off(reply.id) if reply is not None else None
        return None if reply is None or handoff is None else (reply, handoff)

    @Slot()
    def _on_copy_clicked(self) -> None:
        selected = self._selected_hand_off()
        if selected is not None:
            QGuiApplication.clipboard().setText(selected[1].clipboard_text)
            self._hints.setText("The reply is on the clipboard: paste it at the post, then mark it as sent.")

    @Slot()
    def _on_open_post_clicked(self) -> None:
        selected = self._selected_hand_off()
        if selected is None:
            return
        QGuiApplication.clipboard().setText(selected[1].clipboard_text)  # ready to paste once the page opens
        if self.open_url(QUrl(selected[1].open_url)) is False:
            self._hints.setText(f"No browser opened. The post is at {selected[1].open_url}")
        else:
            self._hints.setText("The post is open and the reply is on the clipboard; mark it as sent once posted.")

    @Slot()
    def _on_mark_sent_clicked(self) -> None:
        selected = self._selected_hand_off()
        if selected is not None:
            self._run_outbox_action(self._desk.outbox.mark_sent_by_hand, selected[0].id)

    @Slot()
    def _on_retry_clicked(self) -> None:
        reply = self._selected_reply()
        if reply is not None:
            self._run_outbox_action(self._desk.outbox.retry, reply.id)

    @Slot()
    def _on_team_send_clicked(self) -> None:
        reply = self._selected_reply()
        if reply is None:
            return
        reason = f"Sent anyway after: {plain_reason(reply.error)}" if reply.error else ""
        self._run_outbox_action(lambda reply_id: self._desk.outbox.send_anyway(reply_id, reason=reason), reply.id)

    @Slot()
    def _on_edit_again_clicked(self) -> None:
        """The reply's text goes back into the editor (after what is there), to change and send anew."""
        reply = self._selected_reply()
        if reply is None or self._context is None:
            return
        self._correcting = None
        self._correction_bar.hide()
        self._edit.setPlainText(combine([self._edit.toPlainText(), reply.text]))
        self._edit.setFocus(Qt.FocusReason.OtherFocusReason)
        self._edit.moveCursor(QTextCursor.MoveOperation.End)

    @Slot()
    def _on_withdraw_clicked(self) -> None:
        reply = self._selected_reply()
        if reply is not None:
            self._run_outbox_action(self._desk.outbox.withdraw, reply.id)

    @Slot()
    def _on_correct_clicked(self) -> None:
        reply = self._selected_reply()
        if reply is None or reply.state is not ReplyState.SENT:
            return
        self._flush_draft()
        self._correcting = reply
        sent = local_time(reply.sent_at, now=self._desk.clock.now()) if reply.sent_at else ""
        self._correction_label.setText(
            f"Correcting the reply sent {sent}: it is edited in place where the channel allows it, "
            "otherwise posted as a follow-up. Both are logged."
        )
        self._correction_bar.show()
        self._loading = True
        try:
            self._edit.setPlainText(reply.text)
        finally:
            self._loading = False
        self._update_checks()
        self._edit.setFocus(Qt.FocusReason.OtherFocusReason)

    @Slot()
    def _on_escape_correction_activated(self) -> None:
        if self._correcting is not None:
            self._on_cancel_correction_clicked()
        self._escape_correction.setEnabled(False)

    @Slot()
    def _on_cancel_correction_clicked(self) -> None:
        self._correcting = None
        self._correction_bar.hide()
        context = self._context
        self._loading = True
        try:
            self._edit.setPlainText(self._desk.outbox.draft(context.mention_id) if context else "")
        finally:
            self._loading = False
        self._update_checks()
